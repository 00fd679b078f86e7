"""The PostgreSQL side of a migration: an empty database, the schema made by the PostgreSQL
backend's own runner, then every table copied in one transaction.

The copy is driven by the target's catalog, not by a list kept here: each SQLite table goes to
the PostgreSQL table of the same name, column by column, converted to the column's type there
(SQLite's 0/1 to boolean, say). So a table added by a later migration on both sides is copied
without touching this module, and a table only one side has stops the copy by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import psycopg
from psycopg import sql

from dripd.store.transfer import EX_CANTCREAT, EX_SOFTWARE, EX_UNAVAILABLE, TransferFailure
from dripd.store.transfer.source import SourceTable, SqliteSnapshot

_INTEGER_TYPES = {"smallint", "integer", "bigint"}
_FLOAT_TYPES = {"real", "double precision", "numeric"}


@dataclass(frozen=True)
class TargetTable:
    name: str
    types: dict[str, str]  # column -> information_schema data_type
    parents: frozenset[str]  # tables its foreign keys point at


@dataclass(frozen=True)
class Copied:
    table: str
    source_rows: int
    target_rows: int


def target_tables(conn: psycopg.Connection[Any]) -> dict[str, TargetTable]:
    """The base tables of the current schema, their column types and foreign-key parents."""
    types: dict[str, dict[str, str]] = {}
    for table, column, data_type in conn.execute(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c"
            " JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
            " WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'"
            " ORDER BY c.table_name, c.ordinal_position"):
        types.setdefault(table, {})[column] = data_type
    parents: dict[str, set[str]] = {}
    for child, parent in conn.execute(
            "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c"
            " WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace"):
        parents.setdefault(_bare(child), set()).add(_bare(parent))
    return {name: TargetTable(name, columns, frozenset(parents.get(name, set()) - {name}))
            for name, columns in types.items()}


def _bare(regclass: str) -> str:
    return regclass.rsplit(".", 1)[-1].strip('"')


def rows_present(conn: psycopg.Connection[Any], tables: Iterable[str]) -> dict[str, int]:
    """Tables holding at least one row (EXISTS, not count: a big table answers at once)."""
    found = {}
    for name in tables:
        row = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(name))).fetchone()
        if row and row[0]:
            found[name] = 1
    return found


def refuse_non_empty(conn: psycopg.Connection[Any], tables: dict[str, TargetTable], bookkeeping: set[str]) -> None:
    """Only an empty target is written: merging two installations' ids is not a migration."""
    occupied = sorted(rows_present(conn, [name for name in tables if name not in bookkeeping]))
    if occupied:
        raise TransferFailure(
            f"--to: the target database is not empty (rows in {', '.join(occupied)}); dripd migrate copies only "
            "into an empty database: create a new one (createdb) or drop these rows", EX_CANTCREAT)


def copy_order(tables: dict[str, TargetTable], wanted: Iterable[str]) -> list[str]:
    """``wanted`` with every table after the tables its foreign keys point at."""
    remaining = sorted(wanted)
    done: list[str] = []
    while remaining:
        ready = [name for name in remaining if tables[name].parents <= set(done) | (tables[name].parents - set(remaining))]
        if not ready:  # a cycle of foreign keys: keep the rest in name order, the database will say
            ready = remaining[:1]
        for name in ready:
            remaining.remove(name)
            done.append(name)
    return done


def _converter(data_type: str, where: str) -> Callable[[Any], Any]:
    """SQLite keeps booleans as 0/1 and lets any column hold any type: convert each value to
    what the PostgreSQL column holds, and name the column when a value cannot be."""
    def convert(value: Any) -> Any:
        if value is None:
            return None
        try:
            if data_type == "boolean":
                return bool(int(value))
            if data_type in _INTEGER_TYPES:
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError(f"{value!r} is not a whole number")
                return int(value)
            if data_type in _FLOAT_TYPES:
                return float(value)
            if data_type == "bytea":
                return bytes(value) if not isinstance(value, str) else value.encode()
            if isinstance(value, bytes):
                return value.decode()
            return value if isinstance(value, str) else str(value)
        except (TypeError, ValueError) as exc:
            raise TransferFailure(f"{where}: cannot store {value!r} as {data_type}: {exc}", EX_SOFTWARE) from exc
    return convert


def copy_table(conn: psycopg.Connection[Any], snapshot: SqliteSnapshot, source: SourceTable,
               target: TargetTable) -> Copied:
    """COPY one table's rows in; count them on the target inside the same transaction."""
    missing = [column for column in source.columns if column not in target.types]
    if missing:
        raise TransferFailure(
            f"table {source.name}: the PostgreSQL schema has no column {', '.join(missing)}; this dripd's two "
            "schemas disagree (a bug: report it), nothing was copied", EX_SOFTWARE)
    converters = [_converter(target.types[column], f"{source.name}.{column}") for column in source.columns]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(source.name), sql.SQL(", ").join(sql.Identifier(column) for column in source.columns))
    with conn.cursor() as cursor:
        with cursor.copy(statement) as copy:
            for row in _converted(snapshot.rows(source, source.columns), converters):
                copy.write_row(row)
        counted = cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(source.name))).fetchone()
    return Copied(source.name, source.rows, int(counted[0]) if counted else -1)


def _converted(rows: Iterator[tuple[Any, ...]], converters: list[Callable[[Any], Any]]) -> Iterator[tuple[Any, ...]]:
    for row in rows:
        yield tuple(convert(value) for convert, value in zip(converters, row))


def reset_sequences(conn: psycopg.Connection[Any], tables: Iterable[str], floors: dict[str, int]) -> None:
    """Move each serial/identity sequence past the ids copied in (and past the highest id an
    AUTOINCREMENT table ever gave out), so the next row PostgreSQL numbers is new."""
    for name in tables:
        for column, sequence in conn.execute(
                "SELECT a.attname, pg_get_serial_sequence(quote_ident(%s), a.attname) FROM pg_attribute a"
                " WHERE a.attrelid = quote_ident(%s)::regclass AND a.attnum > 0 AND NOT a.attisdropped"
                " AND pg_get_serial_sequence(quote_ident(%s), a.attname) IS NOT NULL", (name, name, name)).fetchall():
            found = conn.execute(sql.SQL("SELECT max({}) FROM {}").format(
                sql.Identifier(column), sql.Identifier(name))).fetchone()
            highest = max(int(found[0]) if found and found[0] is not None else 0, floors.get(name, 0))
            if highest > 0:
                conn.execute("SELECT setval(%s, %s, true)", (sequence, highest))
            else:
                conn.execute("SELECT setval(%s, 1, false)", (sequence,))


def set_user_triggers(conn: psycopg.Connection[Any], tables: Iterable[str], enabled: bool) -> None:
    """Copied rows are history, not new events: a trigger (the webhook outbox filled on every
    event insert) must not fire for them, or every old event would be delivered again. Foreign
    keys stay checked (they are system triggers, not user ones). Inside the copy's transaction."""
    action = sql.SQL("ENABLE" if enabled else "DISABLE")
    for name in tables:
        conn.execute(sql.SQL("ALTER TABLE {} {} TRIGGER USER").format(sql.Identifier(name), action))


def database_error(exc: psycopg.Error, doing: str) -> TransferFailure:
    """A driver error as one line naming what was being done (never the password: libpq's
    messages do not carry it, and the URL printed is the one given, which has none)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return TransferFailure(f"--to: {doing}: {text}", EX_UNAVAILABLE)
