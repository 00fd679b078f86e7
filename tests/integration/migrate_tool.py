"""Running ``dripd migrate`` as the real command, and reading both sides of a migration."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from tests.postgres_server import PASSWORD

DRIPD = Path(sys.executable).parent / "dripd"


def run_migrate(*args: str, env: dict[str, str] | None = None, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``dripd migrate ARGS`` in a process of its own; PGPASSWORD only when ``env`` gives it."""
    base = {key: value for key, value in os.environ.items() if key != "PGPASSWORD"}
    return subprocess.run([str(DRIPD), "migrate", *args], capture_output=True, text=True, timeout=timeout,
                          env={**base, **(env or {})})


def password_file(root: Path) -> Path:
    path = root / "pgpass.txt"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


def sqlite_counts(path: Path) -> dict[str, int]:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                          " AND name NOT LIKE 'sqlite_%'")]
        return {name: int(db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]) for name in names}
    finally:
        db.close()


def pg_query(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, password=PASSWORD, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description is not None else []


def printed_counts(stdout: str) -> dict[str, tuple[int, int]]:
    """The command's per-table lines: table -> (sqlite, postgresql)."""
    found = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit() and parts[0] != "total":
            found[parts[0]] = (int(parts[1]), int(parts[2]))
    return found
