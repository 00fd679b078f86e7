"""The SQLite backend's connection: opening, tuning, group commit and the hand-off to its thread.

aiosqlite owns the sqlite3 connection and its thread; the connection is created and closed
inside the asyncio context through ``trio_asyncio.aio_as_trio`` (DESIGN.md). Store operations
are plain sqlite3 functions, group-committed and handed to that thread directly from trio
(``_ThreadReply``): 79 us for a no-op operation, against 142 us through ``aio_as_trio`` and an
asyncio future (BENCHMARKS.md, "what was changed"). This is the one place the store does not
cross the bridge DESIGN.md describes, and it is measured for it.

A group made only of brief send-path operations (a few statements on rows found by key:
``send_operation``, ``read_operation``, ``claim_operation``) runs its statements on the event
loop's thread and hands only its COMMIT (the WAL write and fsync) to the connection thread. On
that thread the statements' Python work waited for the GIL behind the event loop, and the loop
behind it: at ``connections = 4`` the connection thread used 0.66 ms of CPU per message; with
the statements on the loop it uses 0.20 ms (the COMMIT) and the loop 0.28 ms more (issue 14;
BENCHMARKS.md). A group of reads only runs whole on the loop: it has nothing to commit; a read
that finds the connection free and nobody waiting runs at once, in its caller's turn, without a
group (``_read_now``). The connection is used by one thread at a time: a group's statements and
its COMMIT never overlap another group's, and a read never runs beside either.

Events written by the operations of a group (``journal.write_event``) are handed to the
``EventSink`` on the trio side once the group's COMMIT returned, never for a rolled-back one.

A ledger claim is committed before the transport is called and must survive a power cut, or the
restarted daemon sends the step again: a group holding a claim commits with synchronous=FULL
(the WAL fsynced at its COMMIT), the others with NORMAL (``transaction.commit_group``). Tried
and measured against it: the same fsync on a worker thread after a NORMAL commit, the connection
running the next group meanwhile and one fsync shared by every group before it. It cost more,
not less (per send at one lane of concurrency 1: 0.64 ms against 0.25-0.52 ms; 33-37 % of the
rate at 32 concurrent sends against 14-19 %): the thread hop and the smaller groups it made
outweighed the overlap.
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any, Callable, Concatenate, Coroutine, Iterable, ParamSpec, TypeVar

import aiosqlite
import trio
import trio_asyncio

from dripd.clock import offloaded
from dripd.errors import StoreError
from dripd.events import Event, EventSink
from dripd.store.sqlite.migrations import migrate
from dripd.store.sqlite.transaction import (
    BUSY_TIMEOUT_MS,
    CommitStats,
    Pending,
    commit_group,
    run_group,
    run_reads,
    start_group,
)

log = logging.getLogger("dripd.store")

P = ParamSpec("P")
R = TypeVar("R")

Db = aiosqlite.Connection
Conn = sqlite3.Connection


def map_error(exc: sqlite3.Error) -> StoreError:
    """Backend errors become one StoreError at the edge, with the cause in words."""
    text = str(exc)
    if "readonly" in text:
        reason = "the database is read-only"
    elif "disk" in text and "full" in text or "SQLITE_FULL" in text:
        reason = "the disk is full"
    elif "locked" in text or "busy" in text:
        reason = "the database is locked by another process"
    elif "unable to open" in text:
        reason = "cannot open the database file (is its directory writable?)"
    else:
        reason = text
    return StoreError(f"database unavailable: {reason}", details={"sqlite": text})


class NoSink:
    """The sink of a store opened without one (tools, tests of other things): events are written
    to the table all the same, and nobody in the process is told."""

    def publish(self, events: Iterable[Event]) -> None:
        pass


# A group takes every queued send-path operation but at most this many control-plane ones, so a
# burst of API requests cannot make each send wait behind hundreds of enrollments.
CONTROL_OPERATIONS_PER_GROUP = 8

Operation = Callable[Concatenate[Any, sqlite3.Connection, P], R]
Bridged = Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]


def _operation(urgent: bool, durable: bool = False, reads_only: bool = False, brief: bool = False,
               ) -> Callable[[Operation[P, R]], Bridged[P, R]]:
    def decorate(fn: Operation[P, R]) -> Bridged[P, R]:
        @functools.wraps(fn)
        async def bridged(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
            if self._db is None:
                raise StoreError("database unavailable: the connection is closed")
            pending = Pending(functools.partial(fn, self, self._db._conn, *args, **kwargs), urgent, durable,
                              reads_only, brief)
            if reads_only and not self._leading and not self._queue:
                # The connection is free and nobody waits: the read runs now, on the event loop,
                # in a read transaction of its own. A group would only have added a scheduler
                # pass, a cancel scope and a wake-up to it (it has nothing to commit).
                self._read_now(pending)
            else:
                self._queue.append(pending)
            try:
                while not pending.done:
                    if self._leading:
                        pending.wake = trio.Event()
                        await pending.wake.wait()  # then: served, or lead the next group
                    else:
                        await self._lead()
            except trio.Cancelled:
                if pending in self._queue:
                    self._queue.remove(pending)  # never run an operation whose caller has gone
                    self._hand_on_lead()  # it may have been the one woken to lead
                raise
            if pending.error is not None:
                error = pending.error
                raise map_error(error) if isinstance(error, sqlite3.Error) else error
            result: R = pending.result
            return result

        bridged.durable = durable  # type: ignore[attr-defined]  # read by the contract tests
        return bridged

    return decorate


thread_operation = _operation(urgent=True)
thread_operation.__doc__ = """Turn ``def op(self, conn, ...)`` (plain sqlite3) into a trio method whose whole body runs
on aiosqlite's connection thread, group-committed (see ``SqliteConnection._lead``). For the
send path and what comes back (replies, bounces): every queued one joins the next group."""
send_operation = _operation(urgent=True, brief=True)
send_operation.__doc__ = """Like ``thread_operation``, for a brief send-path write: a few statements
on rows found by key, never a scan. A group of only such operations runs them on the event
loop's thread and hands only its COMMIT to the connection thread (see ``SqliteConnection._lead``)."""
read_operation = _operation(urgent=True, reads_only=True, brief=True)
read_operation.__doc__ = """A brief send-path operation that only reads: it runs in the group without a
savepoint of its own (a write from it fails the group)."""
claim_operation = _operation(urgent=True, durable=True, brief=True)
claim_operation.__doc__ = """A brief send-path operation whose commit must be durable before it returns
(the ledger claim): its group commits with synchronous=FULL."""
control_operation = _operation(urgent=False)
control_operation.__doc__ = """Like ``thread_operation``, for control-plane and reporting work: a
group takes only a few of these, so API load cannot starve the sends."""


def fetch_all(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    return conn.execute(sql, params).fetchall()


def fetch_one(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(sql, params).fetchone()
    return row


class _ThreadReply:
    """Stands in for the asyncio future aiosqlite's worker thread answers. That thread calls
    ``future.get_loop().call_soon_threadsafe(set_result, future, value)`` (aiosqlite.core
    ``_connection_worker_thread``); answering it with ``TrioToken.run_sync_soon`` wakes the
    trio caller straight away instead of through the asyncio loop and trio-asyncio's relay.
    aiosqlite is pinned to the versions whose worker keeps that contract (pyproject.toml)."""

    __slots__ = ("_token", "event", "error")

    def __init__(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self.event = trio.Event()
        self.error: BaseException | None = None

    # the asyncio.Future / AbstractEventLoop surface the worker thread uses
    def get_loop(self) -> "_ThreadReply":
        return self

    def call_soon_threadsafe(self, callback: Callable[..., None], *args: Any) -> None:
        self._token.run_sync_soon(callback, *args)

    def done(self) -> bool:
        return self.event.is_set()

    def set_result(self, _value: Any) -> None:
        self.event.set()

    def set_exception(self, exc: BaseException) -> None:
        self.error = exc
        self.event.set()


async def _on_connection_thread(db: Db, function: Callable[[], Any]) -> None:
    """Run ``function`` on the thread that owns the connection and wait for it to finish."""
    if not db._running or db._connection is None:
        raise StoreError("database unavailable: the connection is closed")
    reply = _ThreadReply()
    db._tx.put_nowait((reply, function))  # type: ignore[arg-type]
    await reply.event.wait()
    if reply.error is not None:
        raise reply.error


class SqliteConnection:
    """Owns the aiosqlite connection; subclasses add operations with ``@thread_operation``."""

    def __init__(self, path: Path, events: EventSink | None = None) -> None:
        self.path = path
        self.events: EventSink = events if events is not None else NoSink()
        self._db: Db = None  # type: ignore[assignment]
        self._queue: list[Pending] = []  # operations waiting for a group commit
        self._leading = False  # a group is running now (on the loop or the connection thread)
        self.caches: list[dict[Any, Any]] = []  # cleared when a group fails to commit
        self.commit_stats = CommitStats()

    async def _lead(self) -> None:
        """Group commit: take the queued operations (all urgent ones, a few control ones) as one
        transaction: one thread hop for the lot, and one commit. A group of brief operations
        only runs them here, on the event loop, up to its COMMIT, which the connection thread
        runs (a group of reads only has nothing to commit and needs no hop). Any other group
        runs whole on that thread, so a long operation (an import, a report) never stalls the
        loop; so does a brief group that would have to wait for another process's write lock.
        Callers get results only after the COMMIT, so "committed before the transport is
        called" still holds."""
        # One scheduler pass first: operations other tasks issue in this same pass (a lane's
        # record of one send and the claim of its next, which follow each other) join this group
        # instead of waiting behind it for a commit of their own.
        self._leading = True
        try:
            await trio.lowlevel.cancel_shielded_checkpoint()
        finally:
            self._leading = False
        urgent = [item for item in self._queue if item.urgent]
        control = [item for item in self._queue if not item.urgent][:CONTROL_OPERATIONS_PER_GROUP]
        group = urgent + control
        taken = set(map(id, group))
        self._queue = [item for item in self._queue if id(item) not in taken]
        db = self._db
        self._leading = True

        committed = False
        try:
            # Shielded: the group holds other callers' work, and once started it runs anyway;
            # its outcome must reach every caller.
            with offloaded, trio.CancelScope(shield=True):
                try:
                    if all(item.reads_only for item in group):
                        run_reads(db._conn, group)  # nothing to commit: no thread hop at all
                    elif all(item.brief for item in group) and start_group(db._conn, group, wait=False):
                        commit = functools.partial(commit_group, db._conn, group, self.commit_stats)
                        await _on_connection_thread(db, commit)
                    else:
                        await _on_connection_thread(db, functools.partial(run_group, db._conn, group,
                                                                          self.commit_stats))
                except sqlite3.Error as exc:
                    raise map_error(exc) from exc
            committed = True
        except Exception as exc:
            self._failed(group, exc)
        finally:
            if committed:
                self._publish(group)
            # Wake exactly the callers served and the one that leads next: waking every waiter
            # on each group (one shared event) was ~4 % of the event loop with 50 lanes.
            for item in group:
                item.done = True
                if item.wake is not None:
                    item.wake.set()
            self._leading = False
            self._hand_on_lead()

    def _read_now(self, pending: Pending) -> None:
        """Run a read-only operation at once on the calling (event loop) thread, as a group of one."""
        try:
            run_reads(self._db._conn, [pending])
        except Exception as exc:  # the read transaction itself failed
            self._failed([pending], exc)
        pending.done = True

    def _failed(self, group: list[Pending], exc: Exception) -> None:
        """A group's transaction failed: each operation gets ``exc`` (an operation's own error is
        kept), and the caches are emptied: rolled back, anything cached inside may be unreal."""
        for item in group:
            item.error = item.error or exc
        for cache in self.caches:
            cache.clear()

    def _publish(self, group: list[Pending]) -> None:
        """Hand the committed group's events to the sink, in the order they were written (their
        ids: operations of a multi-row form run together, and a sequence's completion is written
        after the group's results, ``transaction._run_operations``)."""
        events = [event for item in group for event in item.events]
        if not events:
            return
        events.sort(key=lambda event: event.id or 0)
        try:
            self.events.publish(events)
        except Exception:
            # A sink must not block or raise; if it does anyway, the commit stands.
            log.exception("the event sink failed on %d committed event(s)", len(events))

    def _hand_on_lead(self) -> None:
        """Nobody is leading and operations wait: wake the oldest, it runs the next group."""
        if not self._leading and self._queue:
            first = self._queue[0]
            if first.wake is not None:
                first.wake.set()

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)

        async def connect() -> Db:
            # Used from two threads, never at once (see _lead): brief groups run their
            # statements on the event loop's thread, everything else on aiosqlite's.
            db = await aiosqlite.connect(str(self.path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                                         check_same_thread=False)
            try:
                return await prepare(db)
            except BaseException:
                await db.close()  # an unclosed connection's thread would hang process exit
                raise

        async def prepare(db: Db) -> Db:
            db.row_factory = sqlite3.Row
            # WAL lets API reads run beside the writer. NORMAL: a commit survives a process
            # crash, and groups holding a ledger claim switch to FULL (see run_group).
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # Each operation of a group runs in a savepoint, whose sub-journal (the pages'
            # first images) went to a temporary file: ~29 writes per send. In memory instead:
            # the store's statements took 17 % less CPU replaying a send run's trace. Temporary
            # tables live there too; the largest, a CSV enrollment's rows, is a few MB per 100k.
            await db.execute("PRAGMA temp_store=MEMORY")
            # Checkpoint the WAL every ~40 MB instead of SQLite's ~4 MB: a group commit with 50
            # mailboxes dirties ~100 pages, so the default copied pages back (and fsynced) every
            # ~10 commits, inside the send path's commit. Measured: 50 mailboxes, 100,000 due,
            # 3,663 -> 4,422 steps/s (bench/bench_dispatch.py); a restart after a crash replays
            # at most that much WAL.
            await db.execute("PRAGMA wal_autocheckpoint=10000")
            return db

        try:
            self._db = await trio_asyncio.aio_as_trio(connect)()
        except sqlite3.Error as exc:
            raise map_error(exc) from exc
        try:
            await _on_connection_thread(self._db, functools.partial(migrate, self._db._conn))
        except BaseException as exc:
            await self.close()
            if isinstance(exc, sqlite3.Error):
                raise map_error(exc) from exc
            raise
        # The WAL file exists now; its directory entry must survive a power cut too, or the
        # commits synchronous=FULL made durable go with it (SQLite does not sync the directory).
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None  # type: ignore[assignment]
            await trio_asyncio.aio_as_trio(db.close)()
