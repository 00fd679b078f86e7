"""SQL helpers of the PostgreSQL backend: rows read by name or position, and the few ways an
operation runs a statement on its transaction's connection."""

from __future__ import annotations

import functools
from typing import Any, Iterable, Sequence

import psycopg
from psycopg.rows import RowMaker


class PgRow:
    """A row readable by column name and by position, like ``sqlite3.Row`` (``dripd.store.rows``
    reads both backends' rows by name; ``dict(row)`` gives the columns)."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: dict[str, int], values: Sequence[Any]) -> None:
        self._names = names
        self._values = values

    def __getitem__(self, key: int | str | slice) -> Any:
        return self._values[self._names[key] if isinstance(key, str) else key]

    def keys(self) -> list[str]:
        return list(self._names)

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def pg_rows(cursor: "psycopg.Cursor[Any]") -> RowMaker[PgRow]:
    names: dict[str, int] = {}
    for index, column in enumerate(cursor.description or ()):
        names.setdefault(column.name, index)  # a repeated name reads as its first column (sqlite3.Row's rule)
    return functools.partial(PgRow, names)


Conn = psycopg.Connection[PgRow]


def fetch_all(db: Conn, sql: str, params: Sequence[Any] = ()) -> list[PgRow]:
    return db.execute(sql.encode(), params).fetchall()


def fetch_one(db: Conn, sql: str, params: Sequence[Any] = ()) -> PgRow | None:
    return db.execute(sql.encode(), params).fetchone()


def run(db: Conn, sql: str, params: Sequence[Any] = ()) -> "psycopg.Cursor[PgRow]":
    """Execute one statement (SQL built at run time from this package's own fragments)."""
    return db.execute(sql.encode(), params)


def run_many(db: Conn, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    with db.cursor() as cursor:
        cursor.executemany(sql.encode(), list(rows))


def db_now(db: Conn) -> float:
    """The database's clock (epoch seconds): what lease expiry is compared with, on every node."""
    row = db.execute("SELECT extract(epoch from clock_timestamp())::float8").fetchone()
    assert row is not None
    return float(row[0])




def notify_due(db: Conn, mailbox_ids: Iterable[str]) -> None:
    """Wake the nodes whose lanes hold these mailboxes: enrollments there became due sooner.
    ``NOTIFY dripd_due, '<mailbox_id>'`` in the caller's transaction, so it is delivered at its
    COMMIT (and never for a rollback); a listener that missed it still finds the work by polling."""
    wanted = sorted(set(mailbox_ids))
    if wanted:
        db.execute("SELECT pg_notify('dripd_due', m) FROM unnest(%s::text[]) AS m", (wanted,))
