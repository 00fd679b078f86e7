"""The PostgreSQL backend's connections: the driver, the hand-off to worker threads, errors.

Driver: psycopg 3's sync API, each operation run whole on a worker thread
(``trio.to_thread.run_sync``) in one transaction on a pooled connection. Chosen over psycopg's
``AsyncConnection`` through ``trio_asyncio.aio_as_trio`` because the operations stay plain
functions of a connection, the shape of the SQLite backend's (one thread hop per operation,
whatever its statements), and because it measured faster on the ledger claim
(bench/bench_pg_driver.py, 2,000 claims, a loaded 2-CPU machine): 6.1 ms against 8.2 ms mean
one at a time, and 788 against 195 claims/s eight at once (the bridge serialises on the asyncio
loop; threads overlap their round trips). Every call is counted in ``dripd.clock.offloaded`` so
a simulated clock never jumps while a query is in flight.

Durability: a ledger claim is durable when its COMMIT returns: PostgreSQL's own WAL flush at
commit (``synchronous_commit`` on, its default; this backend sets it on for its sessions), so a
claim outlives a crash of dripd or of the database's machine. There is no group commit here:
several nodes write at once, and PostgreSQL batches WAL flushes of concurrent commits itself.

Events written by an operation (``journal.write_event``) are handed to the ``EventSink`` on the
trio side after its COMMIT returned, never for a rolled-back one.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Concatenate, Coroutine, Iterable, ParamSpec, Sequence, TypeVar

import psycopg
import psycopg.errors
import trio

from dripd.clock import offloaded
from dripd.errors import Conflict, DripdError, StoreError
from dripd.events import Event, EventSink
from dripd.store.api import LeaseFence
from dripd.store.postgres import journal
from dripd.store.postgres.migrations import migrate
from dripd.store.postgres.sql import Conn, pg_rows

log = logging.getLogger("dripd.store")

P = ParamSpec("P")
R = TypeVar("R")


def map_error(exc: psycopg.Error) -> DripdError:
    """Driver errors become one StoreError at the edge, with the cause in words (never the
    password: libpq's messages do not carry it, and the URL given has none); a unique row
    another session kept winning after the retries is a Conflict, not an outage."""
    text = str(exc).strip()
    if isinstance(exc, psycopg.errors.UniqueViolation):
        constraint = exc.diag.constraint_name or ""
        return Conflict(f"the row exists already ({constraint or 'a unique key'})",
                        details={"constraint": constraint})
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        reason = "the database is read-only (a standby, or default_transaction_read_only)"
    elif isinstance(exc, psycopg.errors.DiskFull):
        reason = "the database's disk is full"
    elif isinstance(exc, psycopg.errors.InvalidPassword) or "password authentication failed" in text:
        reason = "the password was refused (check [store] password_file or PGPASSWORD)"
    elif isinstance(exc, (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected,
                          psycopg.errors.SerializationFailure)):
        reason = "the database is busy (a lock conflict persisted)"
    elif isinstance(exc, psycopg.OperationalError):
        reason = f"cannot reach PostgreSQL ({text.splitlines()[0] if text else 'connection lost'})"
    else:
        reason = text
    return StoreError(f"database unavailable: {reason}", details={"postgresql": text})


# A transaction that lost a deadlock or a serialization check did nothing: it is run again, a
# few times, before the caller is told. So does one that lost a race to insert a unique row
# (two nodes creating one contact or list, enrolling one contact): run again, it reads the row
# the other committed and answers as if it had come second (an existing contact, a Conflict).
_RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure,
              psycopg.errors.UniqueViolation)
_ATTEMPTS = 4
# A ledger write key-share-locks its mailbox's lease row until COMMIT (fencing.py), so a takeover
# waits for it. A node cut off inside such a transaction (a half-open TCP session, for hours, as
# the server sees it) would hold that lock, and every other row it wrote, with nobody to release
# it: the mailbox could never move. The server ends a transaction left idle this long; a
# healthy one runs its statements back to back.
IDLE_IN_TRANSACTION_SECONDS = 10

Operation = Callable[Concatenate[Any, Conn, P], R]
Bridged = Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]


def operation(fn: Operation[P, R]) -> Bridged[P, R]:
    """Turn ``def op(self, db, ...)`` (plain psycopg) into a trio method whose whole body runs on
    a worker thread in one transaction on a pooled connection; its events are published after
    the COMMIT."""

    @functools.wraps(fn)
    async def bridged(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = await self._run(functools.partial(fn, self), args, kwargs)
        return result

    return bridged


class NoSink:
    """The sink of a store opened without one: events are stored all the same, nobody is told."""

    def publish(self, events: Iterable[Event]) -> None:
        pass


class _Outcome:
    """What a worker thread hands back: the session it used, and the result or the error."""

    __slots__ = ("conn", "result", "error", "events")

    def __init__(self) -> None:
        self.conn: Conn | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.events: list[Event] = []


class PgConnection:
    """Owns the pooled psycopg connections; subclasses add operations with ``@operation``."""

    def __init__(self, url: str, *, password: str | None = None, events: EventSink | None = None,
                 fence: LeaseFence | None = None, node_id: str | None = None, pool_size: int = 8) -> None:
        self.url = url
        self._password = password
        self.events: EventSink = events if events is not None else NoSink()
        self.fence = fence
        self.node_id = node_id
        self._idle: list[Conn] = []
        self._slots = trio.Semaphore(pool_size)  # connections (and worker threads) in use at once
        self._open = False

    def connect(self) -> Conn:
        """A new session (worker thread): autocommit, so each operation's ``transaction()`` is
        its whole transaction; synchronous_commit on, so every COMMIT is durable."""
        kwargs: dict[str, Any] = {
            "autocommit": True, "row_factory": pg_rows, "connect_timeout": 10,
            "application_name": f"dripd {self.node_id}" if self.node_id else "dripd",
            # A silent network loss (a partition, a server's machine gone) fails the session's
            # next statement within about half a minute instead of TCP's retransmission limit
            # (~15 min); ignored on a Unix socket.
            "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
            "tcp_user_timeout": 30_000,
            "options": f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_SECONDS * 1000}",
        }
        if self._password is not None:
            kwargs["password"] = self._password
        conn: Conn = psycopg.connect(self.url, **kwargs)
        conn.execute("SET synchronous_commit = on")
        return conn

    def _transact(self, conn: Conn | None, call: Callable[..., Any], args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> _Outcome:
        """Worker thread: run ``call(db, *args)`` in one transaction on ``conn`` (a new session
        when None). A pooled session found dead at BEGIN (the server restarted since) is replaced
        once: nothing was done on it, so that retry is safe; a failure after BEGIN is not retried
        (a lost COMMIT may have committed)."""
        outcome = _Outcome()
        reused = conn is not None
        try:
            outcome.conn = conn = conn if conn is not None else self.connect()
            attempt = 0
            while True:
                began = False
                outcome.events = []
                journal.collect_into(outcome.events)
                try:
                    with conn.transaction():
                        began = True
                        outcome.result = call(conn, *args, **kwargs)
                    return outcome
                except _RETRYABLE:
                    attempt += 1
                    if attempt == _ATTEMPTS:
                        raise
                except psycopg.OperationalError:
                    if began or not reused:
                        raise
                    conn.close()
                    reused = False
                    outcome.conn = conn = self.connect()
                finally:
                    journal.collect_into(None)
        except BaseException as exc:
            outcome.error = exc
            outcome.events = []
            return outcome

    async def _run(self, call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not self._open:
            raise StoreError("database unavailable: the connection is closed")
        async with self._slots:
            # The pool is handled here, on the trio thread: no two workers race for a session.
            conn = self._idle.pop() if self._idle else None
            # Not cancellable: once on the thread the transaction runs to its end anyway, and its
            # outcome (and events) must reach this caller.
            with offloaded:
                outcome = await trio.to_thread.run_sync(self._transact, conn, call, args, kwargs)
            session = outcome.conn
            lost = session is None or session.closed or session.broken
            if lost and isinstance(outcome.error, psycopg.OperationalError):
                # The server went away (or restarted): the other idle sessions are as dead as
                # this one; drop them rather than fail one caller per session.
                idle, self._idle = self._idle, []
                for dead in [session, *idle]:
                    if dead is not None:
                        dead.close()
            elif session is not None:
                if self._open and not lost:
                    self._idle.append(session)
                else:
                    session.close()
        if outcome.error is not None:
            if isinstance(outcome.error, psycopg.Error):
                raise map_error(outcome.error) from outcome.error
            raise outcome.error
        if outcome.events:
            try:
                self.events.publish(outcome.events)
            except Exception:
                log.exception("the event sink failed on %d committed event(s)", len(outcome.events))
        return outcome.result

    async def open(self, now: float = 0.0) -> None:
        def first() -> None:
            conn = self.connect()
            try:
                migrate(conn, now)
            except BaseException:
                conn.close()
                raise
            self._idle.append(conn)

        try:
            with offloaded:
                await trio.to_thread.run_sync(first)
        except psycopg.Error as exc:
            raise map_error(exc) from exc
        self._open = True

    async def close(self) -> None:
        self._open = False
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
