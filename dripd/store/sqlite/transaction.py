"""A group's transaction on the store's sqlite3 connection: its operations, each in a savepoint
(a read in none), and its COMMIT, durable or not; which thread runs which part is the caller's
choice (``connection.SqliteConnection._lead``): these functions only run statements.

An operation marked ``batched_by(form)`` runs with the others of its kind in the group through
``form``, in one savepoint (dripd/store/sqlite/multi_row.py: the send path's claims and results,
a statement per table for the group). Should the form fail, it is rolled back and each of them
runs alone, so an error stays the one operation's own.

A ledger claim is committed before the transport is called and must survive a power cut, or the
restarted daemon sends the step again: a group holding a claim commits with synchronous=FULL
(the WAL fsynced at its COMMIT), the others with NORMAL (``commit_group``).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import trio

from dripd.events import Event
from dripd.store.sqlite import journal

# How long a group waits for another process's write lock before the store reports it locked.
BUSY_TIMEOUT_MS = 5000

F = TypeVar("F", bound=Callable[..., Any])


Outcome = tuple[Any, list[Event]]
"""What one operation of a multi-row form came to: its result and the events it wrote."""
MultiRow = Callable[[sqlite3.Connection, list["Pending"]], list[Outcome]]


def batched_by(form: MultiRow) -> Callable[[F], F]:
    """Mark a one-row operation (``def op(self, conn, ...)``, under its store decorator) as one
    that ``form`` runs for every such operation of a group at once."""

    def mark(fn: F) -> F:
        fn.multi_row = form  # type: ignore[attr-defined]  # read by _run_operations
        return fn

    return mark


class Pending:
    """One caller's operation waiting for a group commit."""

    __slots__ = ("call", "urgent", "durable", "reads_only", "brief", "done", "result", "error", "wake",
                 "events")

    def __init__(self, call: Callable[[], Any], urgent: bool, durable: bool, reads_only: bool = False,
                 brief: bool = False) -> None:
        self.call = call
        self.urgent = urgent
        self.durable = durable
        self.reads_only = reads_only
        self.brief = brief
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.wake: trio.Event | None = None  # set when served, or when it is this one's turn to lead
        self.events: list[Event] = []  # written by this operation; published after the commit


@dataclass
class CommitStats:
    """What the group commits cost so far (written on the connection's thread only): how often
    and how long COMMIT took, durable (synchronous=FULL: the WAL fsynced) and not. Read by
    bench/bench_dispatch.py to say how much of a step's time is the claim's durable commit."""

    groups: int = 0
    operations: int = 0
    durable_commits: int = 0
    durable_seconds: float = 0.0  # inside COMMIT of the durable groups: the fsync
    normal_commits: int = 0
    normal_seconds: float = 0.0


def run_group(conn: sqlite3.Connection, group: list[Pending], stats: CommitStats) -> None:
    """Run a group of operations in one transaction and commit it (on the connection thread).
    Each runs in its own savepoint, so one failing operation is rolled back alone (with its
    events); all commit together (``commit_group`` says how durably)."""
    start_group(conn, group, wait=True)
    commit_group(conn, group, stats)


def _run_operations(conn: sqlite3.Connection, group: list[Pending]) -> None:
    """The body of a group's transaction, once BEGIN IMMEDIATE holds the write lock. The
    operations of a multi-row form run together where the first of them stands in the group."""
    together: dict[MultiRow, list[Pending]] = {}
    units: list[Pending | list[Pending]] = []
    for item in group:
        form: MultiRow | None = getattr(getattr(item.call, "func", None), "multi_row", None)
        if form is None:
            units.append(item)
        elif form in together:
            together[form].append(item)
        else:
            units.append(together.setdefault(form, [item]))
    for unit in units:
        if isinstance(unit, list):
            if not _run_together(conn, unit):
                for item in unit:
                    _run_one(conn, item)
        elif unit.reads_only:
            _run_read(conn, unit)
        else:
            _run_one(conn, unit)


def _run_one(conn: sqlite3.Connection, item: Pending) -> None:
    conn.execute("SAVEPOINT op")
    journal.collect_into(item.events)
    try:
        item.result = item.call()
    except Exception as exc:
        conn.execute("ROLLBACK TO op")
        item.error = exc
        item.events.clear()  # rolled back: these never happened
    finally:
        journal.collect_into(None)
    conn.execute("RELEASE op")


def _run_together(conn: sqlite3.Connection, items: list[Pending]) -> bool:
    """Run operations of one multi-row form in one savepoint; False, with nothing done, when the
    form failed (each then runs alone and meets its own error, if any)."""
    form: MultiRow = items[0].call.func.multi_row  # type: ignore[attr-defined]
    conn.execute("SAVEPOINT op")
    try:
        outcomes = form(conn, items)
        if len(outcomes) != len(items):
            raise RuntimeError(f"{form.__name__} answered {len(outcomes)} of {len(items)} operations")
    except Exception:
        conn.execute("ROLLBACK TO op")
        conn.execute("RELEASE op")
        return False
    conn.execute("RELEASE op")
    for item, (result, events) in zip(items, outcomes):
        item.result = result
        item.events.extend(events)
    return True


def commit_group(conn: sqlite3.Connection, group: list[Pending], stats: CommitStats) -> None:
    """COMMIT the open transaction of a group (on the connection thread: the COMMIT writes the
    WAL and, when durable, fsyncs it). A group holding a ledger claim commits with
    synchronous=FULL: the claim is committed before the transport is called and must survive a
    power cut, or the restarted daemon sends the step again. WAL is sequential, so that fsync
    also covers every earlier NORMAL commit; groups without a claim (API work, results) keep
    NORMAL, where losing the last commits to a power cut leaves a 'sending' row that recovery
    resolves, never a resend. A failed COMMIT rolls the group back."""
    durable = any(item.durable for item in group)
    try:
        started = time.perf_counter()
        conn.execute("COMMIT")
        took = time.perf_counter() - started
    except BaseException:
        _abandon(conn, durable)
        raise
    if durable:
        conn.execute("PRAGMA synchronous=NORMAL")
        stats.durable_commits += 1
        stats.durable_seconds += took
    else:
        stats.normal_commits += 1
        stats.normal_seconds += took
    stats.groups += 1
    stats.operations += len(group)


def _abandon(conn: sqlite3.Connection, durable: bool) -> None:
    """Roll back a group's transaction, if one is open, and restore the normal sync level."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    finally:
        if durable:
            conn.execute("PRAGMA synchronous=NORMAL")


def start_group(conn: sqlite3.Connection, group: list[Pending], *, wait: bool) -> bool:
    """Begin a group's transaction and run its operations, up to its COMMIT, on the calling
    thread. ``wait=False`` is for the event loop (see ``connection.SqliteConnection._lead``): the
    write lock is asked for without waiting, and False, with nothing done, says another
    connection holds it; the group then waits for it on the connection thread (``run_group``)."""
    durable = any(item.durable for item in group)
    if durable:
        conn.execute("PRAGMA synchronous=FULL")
    try:
        if wait:
            conn.execute("BEGIN IMMEDIATE")
        elif not _begin_without_waiting(conn):
            _abandon(conn, durable)
            return False
        _run_operations(conn, group)
    except BaseException:
        _abandon(conn, durable)
        raise
    return True


def _begin_without_waiting(conn: sqlite3.Connection) -> bool:
    """BEGIN IMMEDIATE with SQLite's busy handler (which sleeps on the calling thread) off."""
    conn.execute("PRAGMA busy_timeout=0")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:  # SQLITE_BUSY or an extended BUSY_* code
            return False
        raise
    finally:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return True


def run_reads(conn: sqlite3.Connection, group: list[Pending]) -> None:
    """Run a group of read-only operations on the calling thread (the event loop's), in one
    read transaction: one snapshot, no write lock, nothing to commit (the COMMIT only ends the
    snapshot), so no hop to the connection thread. In WAL a reader never waits for the writer."""
    conn.execute("BEGIN")
    try:
        for item in group:
            _run_read(conn, item)
        conn.execute("COMMIT")
    except BaseException:
        _abandon(conn, durable=False)
        raise


def _run_read(conn: sqlite3.Connection, item: Pending) -> None:
    """Run a read-only operation of a group. It writes nothing, so it needs no savepoint to roll
    back to (two statements fewer per send: the run context is read before every one). A
    read that wrote would be a bug: it fails the whole group, rolled back, rather than commit."""
    changes = conn.total_changes
    try:
        item.result = item.call()
    except Exception as exc:
        item.error = exc
    if conn.total_changes != changes:
        raise RuntimeError(f"a read-only store operation wrote to the database: {item.call}")
