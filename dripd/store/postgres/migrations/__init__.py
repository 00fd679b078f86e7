"""PostgreSQL schema migrations: numbered, applied in order, recorded in ``schema_migrations``.

The same shape as SQLite's runner (``dripd.store.sqlite.migrations``): a list of functions,
``LATEST`` its length, a database from a newer dripd refused and never touched. Differences
that PostgreSQL allows or needs: every pending migration and its record are applied in ONE
transaction (PostgreSQL's DDL is transactional, so a failure leaves the schema as it was), and
the transaction first takes a transaction-level advisory lock, so two nodes starting at once
run the migrations one after the other: the second finds them applied and does nothing.
Adding a migration: append a function to ``MIGRATIONS``; never edit one that has shipped.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Callable

import psycopg

from dripd.errors import StoreError

# Any constant both nodes agree on: pg_advisory_xact_lock takes a bigint key ("dripdmig" in ASCII).
MIGRATION_LOCK = 0x647269706D6967


def _initial(db: psycopg.Connection[Any]) -> None:
    """1: SQLite's schema at its migration 7, and the cluster's node and lease tables."""
    # No parameters: psycopg sends the script as one simple query (several statements, and the
    # trigger function's body with its own semicolons).
    db.execute(resources.files(__package__).joinpath("0001_initial.sql").read_text().encode())


MIGRATIONS: list[Callable[[psycopg.Connection[Any]], None]] = [_initial]
LATEST = len(MIGRATIONS)


def current_version(db: psycopg.Connection[Any]) -> int:
    row = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def migrate(db: psycopg.Connection[Any], now: float) -> int:
    """Bring the database to ``LATEST`` in one transaction; returns the version it was at.
    ``db`` is in autocommit mode (the store's connections are); the transaction is this one's."""
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations"
                   " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)")
        found = current_version(db)
        if found > LATEST:
            raise StoreError(
                f"database schema version {found} is newer than this dripd supports ({LATEST}):"
                " run the dripd that wrote it, or restore a backup",
                details={"schemaVersion": found, "supported": LATEST})
        for version in range(found + 1, LATEST + 1):
            try:
                with db.transaction():  # a savepoint: the failing migration is named, all roll back
                    MIGRATIONS[version - 1](db)
                    db.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (%s, %s)", (version, now))
            except psycopg.Error as exc:
                raise StoreError(f"schema migration {version} failed: {exc}",
                                 details={"migration": version, "postgresql": str(exc)}) from exc
    return found
