"""The SQLite side of a migration: the installation's file opened read-only, one snapshot.

Everything is read inside one read transaction: under WAL a reader sees the database as of its
first read until it ends, while the daemon keeps committing, so the tables copied agree with each
other (an outbox row and its events, an enrollment and its position) even on a running
installation. What the daemon commits after that first read is not copied.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from dripd.store.sqlite.migrations import LATEST, current_version
from dripd.store.transfer import EX_DATAERR, EX_NOINPUT, TransferFailure

# SQLite's own bookkeeping: sqlite_sequence is read for the AUTOINCREMENT high-water marks
# (``autoincrement_floor``), never copied as a table.
_INTERNAL_PREFIX = "sqlite_"


@dataclass(frozen=True)
class SourceTable:
    name: str
    columns: tuple[str, ...]
    rows: int


class SqliteSnapshot:
    """An open, read-only, consistent view of one dripd SQLite database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            raise TransferFailure(f"--from: {path}: no such file (give the daemon's database, "
                                  "e.g. sqlite:/var/lib/dripd/dripd.sqlite3)", EX_NOINPUT)
        try:
            # mode=ro: this command never writes the installation it reads, whatever happens.
            self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
        except sqlite3.Error as exc:
            raise TransferFailure(f"--from: cannot open {path}: {exc}", EX_NOINPUT) from exc
        try:
            self._db.execute("BEGIN")  # deferred: the snapshot is taken at the first read below
            version = current_version(self._db)
            self.tables = self._tables()
        except sqlite3.Error as exc:
            self.close()
            raise TransferFailure(f"--from: cannot read {path} as a dripd database: {exc}", EX_NOINPUT) from exc
        if version != LATEST:
            self.close()
            hint = ("start this dripd on it once (it migrates the file), then run dripd migrate again"
                    if version < LATEST else "it was written by a newer dripd: migrate with that version")
            raise TransferFailure(f"--from: {path} is at schema version {version}, this dripd copies only version "
                                  f"{LATEST}: {hint}", EX_DATAERR)
        if "sequences" not in {table.name for table in self.tables}:
            self.close()
            raise TransferFailure(f"--from: {path} is not a dripd database (it has no sequences table)", EX_DATAERR)

    def _tables(self) -> list[SourceTable]:
        names = [row[0] for row in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        tables = []
        for name in names:
            if name.startswith(_INTERNAL_PREFIX):
                continue
            columns = tuple(row[1] for row in self._db.execute(f'PRAGMA table_info("{name}")'))
            count = int(self._db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])
            tables.append(SourceTable(name, columns, count))
        return tables

    def rows(self, table: SourceTable, columns: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
        """The table's rows in rowid order (parents before children where ids say so)."""
        listed = ", ".join(f'"{column}"' for column in columns)
        try:
            cursor = self._db.execute(f'SELECT {listed} FROM "{table.name}" ORDER BY rowid')
        except sqlite3.OperationalError:  # a WITHOUT ROWID table: its primary key's order
            cursor = self._db.execute(f'SELECT {listed} FROM "{table.name}"')
        while batch := cursor.fetchmany(2000):
            yield from batch

    def autoincrement_floor(self) -> dict[str, int]:
        """The highest id each AUTOINCREMENT table ever handed out: ids there are never reused
        (a webhook-id names an endpoint), so PostgreSQL's sequence must start past it, not
        merely past the rows that are left."""
        try:
            return {str(name): int(seq) for name, seq in self._db.execute("SELECT name, seq FROM sqlite_sequence")}
        except sqlite3.OperationalError:
            return {}  # no AUTOINCREMENT table in this file

    def close(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        finally:
            self._db.close()
