"""``dripd migrate --from sqlite:PATH --to postgresql://...``: the command line and its run.

The password comes from ``--password-file`` or from ``PGPASSWORD`` (libpq reads it itself),
never from the URL: a URL is shown in shell history, ``ps`` and this command's own output.
Exit statuses are sysexits.h's (``dripd.store.transfer``); 0 only when every table's count on
PostgreSQL equals SQLite's and the transaction committed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn, TextIO

import psycopg
from psycopg.conninfo import conninfo_to_dict

from dripd.store.postgres.migrations import LATEST as PG_LATEST
from dripd.store.postgres.migrations import migrate as migrate_schema
from dripd.store.postgres.settings import SCHEMES, read_password_file, url_problem
from dripd.store.sqlite.migrations import LATEST as SQLITE_LATEST
from dripd.errors import StoreError
from dripd.store.transfer import EX_CANTCREAT, EX_CONFIG, EX_SOFTWARE, TransferFailure
from dripd.store.transfer.source import SqliteSnapshot
from dripd.store.transfer.target import (
    Copied,
    copy_order,
    copy_table,
    database_error,
    refuse_non_empty,
    reset_sequences,
    set_user_triggers,
    target_tables,
)

# The runner's own record of applied migrations: present in an "empty" database it made.
_BOOKKEEPING = {"schema_migrations"}


class _Parser(argparse.ArgumentParser):
    """Usage errors are bad arguments: exit 78 like every other one, not argparse's 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"dripd migrate: {message}", file=sys.stderr)
        sys.exit(EX_CONFIG)


def parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dripd migrate",
        description="Copy a dripd installation's whole state from its SQLite file into an empty PostgreSQL "
                    "database (schema created here), in one transaction, keeping every id; then verify the "
                    "row count of every table and print them. The SQLite file is opened read-only.",
        epilog="Exit status: 0 copied and verified; 65 the SQLite file is at another schema version; 66 it "
               "cannot be read; 69 PostgreSQL cannot be reached or refused; 70 counts differ (rolled back); "
               "73 the target is not empty; 78 bad arguments.")
    parser.add_argument("--from", dest="source", required=True, metavar="sqlite:PATH",
                        help="the installation's SQLite database, e.g. sqlite:/var/lib/dripd/dripd.sqlite3")
    parser.add_argument("--to", dest="target", required=True, metavar="URL",
                        help="an empty PostgreSQL database: postgresql://USER@HOST[:PORT]/DB (no password in it)")
    parser.add_argument("--password-file", type=Path, metavar="PATH",
                        help="a file holding the PostgreSQL password (else PGPASSWORD or ~/.pgpass, as libpq reads)")
    return parser


def source_path(text: str) -> Path:
    """``sqlite:PATH`` (``sqlite://PATH`` too) to the path; anything else is a bad argument."""
    if not text.startswith("sqlite:"):
        raise TransferFailure(f"--from: {text!r} must be sqlite:PATH (the file the daemon's [daemon] database names)",
                              EX_CONFIG)
    path = text.removeprefix("sqlite:")
    path = path.removeprefix("//") if path.startswith("///") else path  # sqlite:///abs/path, URL-style
    if not path:
        raise TransferFailure("--from: sqlite: needs the database file's path after it", EX_CONFIG)
    return Path(path)


def target_url(text: str) -> str:
    """A libpq URL with no password in it (the store's own rule, ``url_problem``), that libpq parses."""
    if url_problem(text) is not None:
        if not text.startswith(tuple(f"{scheme}://" for scheme in SCHEMES)):
            raise TransferFailure(f"--to: {text!r} must be a postgresql:// URL", EX_CONFIG)
        # Not the URL itself in the message: it holds a secret.
        raise TransferFailure("--to: the URL holds a password; put it in --password-file or PGPASSWORD instead "
                              "(a URL shows in shell history, ps and logs)", EX_CONFIG)
    try:
        conninfo_to_dict(text)
    except psycopg.ProgrammingError as exc:
        raise TransferFailure(f"--to: not a valid PostgreSQL URL: {exc}", EX_CONFIG) from None
    return text


def read_password(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return read_password_file(path)  # the daemon's rule for [store] password_file: its first line
    except ValueError as exc:
        raise TransferFailure(f"--password-file: {exc}", EX_CONFIG) from None


def transfer(snapshot: SqliteSnapshot, url: str, password: str | None) -> list[Copied]:
    """Create the schema if absent, then copy every table in one transaction and verify it."""
    try:
        conn = psycopg.connect(url, password=password, autocommit=True, connect_timeout=30)
    except psycopg.Error as exc:
        raise database_error(exc, "cannot connect") from None
    with conn:
        try:
            tables = target_tables(conn)
            # Refused before the schema is made too, so a foreign database is not given dripd's tables.
            refuse_non_empty(conn, tables, _BOOKKEEPING)
            migrate_schema(conn, _database_now(conn))
            tables = target_tables(conn)
            return _copy_all(conn, snapshot, tables)
        except psycopg.Error as exc:
            raise database_error(exc, "the copy failed and was rolled back") from None
        except StoreError as exc:  # the runner's refusal: a schema from a newer dripd
            raise TransferFailure(f"--to: {exc.message}", EX_CANTCREAT) from None


def _database_now(conn: psycopg.Connection[Any]) -> float:
    # This command runs outside the daemon and its one clock: the schema's applied-at comes from
    # the database's clock, the one the cluster's leases are measured by.
    row = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
    if row is None:
        raise TransferFailure("--to: the database did not tell its time", EX_SOFTWARE)
    return float(row[0])


def _copy_all(conn: psycopg.Connection[Any], snapshot: SqliteSnapshot, tables: dict[str, Any]) -> list[Copied]:
    wanted = []
    for source in snapshot.tables:
        if source.name in tables:
            wanted.append(source.name)
        elif source.rows:
            raise TransferFailure(f"table {source.name} ({source.rows} rows) has no PostgreSQL counterpart in this "
                                  "dripd's schema (a bug: report it); nothing was copied", EX_SOFTWARE)
    order = copy_order(tables, wanted)
    by_name = {source.name: source for source in snapshot.tables}
    with conn.transaction():
        # Writers wait from here to the commit; emptiness is checked again under the lock, so a
        # node started on this database meanwhile cannot mix its rows in.
        for name in tables:
            conn.execute(f'LOCK TABLE "{name}" IN EXCLUSIVE MODE')
        refuse_non_empty(conn, tables, _BOOKKEEPING)
        set_user_triggers(conn, order, enabled=False)
        copied = [copy_table(conn, snapshot, by_name[name], tables[name]) for name in order]
        reset_sequences(conn, order, snapshot.autoincrement_floor())
        set_user_triggers(conn, order, enabled=True)
        wrong = [c for c in copied if c.source_rows != c.target_rows]
        if wrong:
            detail = ", ".join(f"{c.table}: {c.source_rows} in SQLite, {c.target_rows} in PostgreSQL" for c in wrong)
            raise TransferFailure(f"the counts differ ({detail}); rolled back, the target is empty again", EX_SOFTWARE)
    return copied


def report(copied: list[Copied], path: Path, url: str, out: TextIO) -> None:
    width = max([len(c.table) for c in copied] + [len("table")])
    print(f"dripd migrate: {path} (SQLite schema {SQLITE_LATEST}) -> {url} (PostgreSQL schema {PG_LATEST}),"
          " one transaction, committed", file=out)
    print(f"{'table':<{width}}  {'sqlite':>10}  {'postgresql':>10}", file=out)
    for c in sorted(copied, key=lambda c: c.table):  # copied parents first; listed by name
        print(f"{c.table:<{width}}  {c.source_rows:>10}  {c.target_rows:>10}", file=out)
    total_source = sum(c.source_rows for c in copied)
    total_target = sum(c.target_rows for c in copied)
    print(f"{'total':<{width}}  {total_source:>10}  {total_target:>10}", file=out)
    print("verified: every table's row count matches", file=out)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)  # argparse's own usage errors exit 2
    try:
        path = source_path(args.source)
        url = target_url(args.target)
        password = read_password(args.password_file)
        snapshot = SqliteSnapshot(path)
        try:
            copied = transfer(snapshot, url, password)
        finally:
            snapshot.close()
    except TransferFailure as exc:
        print(f"dripd migrate: {exc.message}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print("dripd migrate: interrupted; the transaction was rolled back", file=sys.stderr)
        return 130
    report(copied, path, url, sys.stdout)
    return 0


if __name__ == "__main__":  # pragma: no cover - `dripd migrate` is the way in
    sys.exit(main(sys.argv[1:]))
