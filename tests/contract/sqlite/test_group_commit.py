"""Group commit in the SQLite backend (dripd/store/sqlite/connection.py) against a real file:
many callers, callers cancelled while they wait or while they lead, and failing operations, with
nothing lost, nothing run twice and nobody left waiting; events published only after a group
committed; and the durable commit of a group that holds a ledger claim."""

from __future__ import annotations

import random
import sqlite3
import threading
from pathlib import Path

import pytest
import trio
import trio.testing
import trio_asyncio

from dripd.errors import StoreError
from dripd.events import Event, EventKind
from dripd.model import Action, SequenceSettings, Step, StepType
from dripd.store import Claim, ContactInput, Store
from dripd.store.sqlite import control_operation, read_operation, send_operation, thread_operation
from dripd.store.sqlite.transaction import BUSY_TIMEOUT_MS


class CountingStore(Store):
    @thread_operation
    def mark(self, db: sqlite3.Connection, key: int) -> int:
        db.execute("INSERT INTO marks (key) VALUES (?)", (key,))
        return key * 2

    @control_operation
    def mark_control(self, db: sqlite3.Connection, key: int) -> int:
        db.execute("INSERT INTO marks (key) VALUES (?)", (key,))
        return key * 2

    @thread_operation
    def mark_then_fail(self, db: sqlite3.Connection, key: int) -> None:
        db.execute("INSERT INTO marks (key) VALUES (?)", (key,))
        raise ValueError(f"operation {key} refuses")

    @thread_operation
    def mark_and_call(self, db: sqlite3.Connection, key: int, go: threading.Event, call_in_trio, token) -> None:  # type: ignore[no-untyped-def]
        db.execute("INSERT INTO marks (key) VALUES (?)", (key,))
        go.wait(10)  # until the test has the other callers waiting behind this group
        # Queued just before this group's own completion, so trio handles both in one batch.
        token.run_sync_soon(call_in_trio)  # runs in trio while this group is still on the thread

    @thread_operation
    def break_at_commit(self, db: sqlite3.Connection) -> None:
        """Leaves a foreign-key violation that SQLite checks only at COMMIT: the whole group fails."""
        db.execute("PRAGMA defer_foreign_keys=ON")
        db.execute("INSERT INTO list_members (list_id, contact_id) VALUES (424242, 424242)")

    @thread_operation
    def wait_for(self, db: sqlite3.Connection, go: threading.Event) -> None:
        go.wait(10)  # holds the connection thread until the test has queued the next group

    @read_operation
    def read_marks(self, db: sqlite3.Connection, fail: bool = False) -> set[int]:
        if fail:
            raise LookupError("a read that finds nothing")
        return {row[0] for row in db.execute("SELECT key FROM marks")}

    @read_operation
    def read_that_writes(self, db: sqlite3.Connection, key: int) -> None:
        db.execute("INSERT INTO marks (key) VALUES (?)", (key,))  # a bug the group must not commit

    @thread_operation
    def setup(self, db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE IF NOT EXISTS marks (key INTEGER PRIMARY KEY)")

    @thread_operation
    def trace(self, db: sqlite3.Connection, callback) -> None:  # type: ignore[no-untyped-def]
        db.set_trace_callback(callback)  # on the connection's own thread, as sqlite3 requires

    @thread_operation
    def synchronous_level(self, db: sqlite3.Connection) -> int:
        return int(db.execute("PRAGMA synchronous").fetchone()[0])

    @thread_operation
    def busy_timeout(self, db: sqlite3.Connection) -> int:
        return int(db.execute("PRAGMA busy_timeout").fetchone()[0])

    @send_operation
    def mark_brief(self, db: sqlite3.Connection, key: int) -> int:
        db.execute("INSERT INTO marks (key) VALUES (?)", (key,))
        return key * 2

    @thread_operation
    def marks(self, db: sqlite3.Connection) -> set[int]:
        return {row[0] for row in db.execute("SELECT key FROM marks")}


def run_store(path: Path, body, events=None) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with trio_asyncio.open_loop():
            store = CountingStore(path, events)
            await store.open()
            try:
                await store.setup()
                with trio.fail_after(60):  # a lost wake-up would hang here
                    await body(store)
            finally:
                await store.close()

    trio.run(main)  # real clock: the work is on a real thread


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_many_callers_with_cancellations_lose_nothing_and_nobody_hangs(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    returned: dict[int, int] = {}
    cancelled: set[int] = set()

    async def body(store: CountingStore) -> None:
        async def caller(key: int, scope_box: list[trio.CancelScope]) -> None:
            with trio.CancelScope() as scope:
                scope_box.append(scope)
                # Brief, threaded and control operations mixed: groups of brief ones only run on
                # the event loop up to their COMMIT, the others whole on the connection thread.
                op = (store.mark_control, store.mark, store.mark_brief)[key % 3]
                returned[key] = await op(key)
            if scope.cancelled_caught:
                cancelled.add(key)

        scopes: list[trio.CancelScope] = []
        async with trio.open_nursery() as nursery:
            for key in range(1, 1201):
                nursery.start_soon(caller, key, scopes)
                if key % 40 == 0:
                    await trio.sleep(0)
                    # Cancel a few callers at random: some are waiting, some are leading.
                    for scope in rng.sample(scopes, min(5, len(scopes))):
                        scope.cancel()
        marks = await store.marks()
        # Every caller that got a result had its operation committed, with the right result.
        assert all(value == key * 2 for key, value in returned.items())
        assert set(returned) <= marks
        # A cancelled caller's operation either ran whole (its group was already on the thread)
        # or not at all; nothing else was written.
        assert marks - set(returned) <= cancelled
        assert len(returned) + len(cancelled) == 1200
        assert cancelled, "the test must actually cancel some callers"

    run_store(tmp_path / "groups.sqlite3", body)


def test_the_caller_next_in_line_cancelled_as_the_group_ends_hands_the_lead_on(tmp_path: Path) -> None:
    # A leads; B and C wait, B first in line. B is cancelled from inside A's group, so B's
    # Cancelled and A's completion reach trio in the same batch, in either order (trio shuffles
    # batches). When A finishes first it wakes B to lead the next group; B, cancelled, must pass
    # the lead on to C, or C waits forever (no later caller would come to lead).
    async def body(store: CountingStore) -> None:
        for round_ in range(20):
            base = round_ * 10
            b_scope = trio.CancelScope()
            results: list[int] = []

            async def waiter(key: int, scope: trio.CancelScope | None = None) -> None:
                with scope or trio.CancelScope():
                    results.append(await store.mark(key))

            go = threading.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.mark_and_call, base + 1, go, b_scope.cancel, trio.lowlevel.current_trio_token())
                await trio.testing.wait_all_tasks_blocked()  # A is on the thread, leading
                nursery.start_soon(waiter, base + 2, b_scope)
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(waiter, base + 3)
                await trio.testing.wait_all_tasks_blocked()
                go.set()
            assert 2 * (base + 3) in results  # C was served (B may or may not have been)

    run_store(tmp_path / "handoff.sqlite3", body)


def test_a_failing_operation_rolls_back_alone(tmp_path: Path) -> None:
    async def body(store: CountingStore) -> None:
        errors: list[BaseException] = []

        async def failing(key: int) -> None:
            try:
                await store.mark_then_fail(key)
            except ValueError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            for key in range(1, 101):
                nursery.start_soon(failing if key % 10 == 0 else store.mark, key)
        marks = await store.marks()
        assert marks == {key for key in range(1, 101) if key % 10}
        assert len(errors) == 10

    run_store(tmp_path / "fail.sqlite3", body)


def test_reads_share_a_group_without_savepoints_and_a_read_that_writes_fails_it(tmp_path: Path) -> None:
    async def body(store: CountingStore) -> None:
        statements: list[str] = []
        await store.trace(statements.append)
        read_errors: list[BaseException] = []
        group_errors: list[BaseException] = []

        async def failing_read() -> None:
            try:
                await store.read_marks(fail=True)
            except LookupError as exc:
                read_errors.append(exc)

        go = threading.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.wait_for, go)  # holds the thread: the next callers form one group
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(store.mark, 1)
            nursery.start_soon(failing_read)
            nursery.start_soon(store.read_marks)
            nursery.start_soon(store.mark, 2)
            await trio.testing.wait_all_tasks_blocked()
            go.set()
        # The failing read cost its group nothing: both marks committed, each in its savepoint,
        # and the reads ran in none of their own.
        assert await store.marks() == {1, 2}
        assert len(read_errors) == 1
        group = statements[statements.index("BEGIN IMMEDIATE", statements.index("BEGIN IMMEDIATE") + 1):]
        group = group[:group.index("COMMIT") + 1]
        assert group.count("SAVEPOINT op") == 2 and group.count("SELECT key FROM marks") == 1

        async def expect_failure(call) -> None:  # type: ignore[no-untyped-def]
            try:
                await call()
            except RuntimeError as exc:
                group_errors.append(exc)

        go = threading.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.wait_for, go)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(expect_failure, lambda: store.mark(3))
            nursery.start_soon(expect_failure, lambda: store.read_that_writes(4))
            await trio.testing.wait_all_tasks_blocked()
            go.set()
        # A write from a read-only operation is a bug: the whole group is rolled back, loudly.
        assert len(group_errors) == 2 and "read-only" in str(group_errors[0])
        assert await store.marks() == {1, 2}

    run_store(tmp_path / "reads.sqlite3", body)


def test_a_read_with_the_connection_free_runs_at_once(tmp_path: Path) -> None:
    # No group to join and nothing to commit: the read runs in the caller's turn, without a pass of
    # trio's scheduler (Python work on the event loop's thread, per send: issue 14).
    async def body(store: CountingStore) -> None:
        await store.mark(1)
        with trio.testing.assert_no_checkpoints():
            assert await store.read_marks() == {1}  # what was committed before
            with pytest.raises(LookupError):
                await store.read_marks(fail=True)
            with pytest.raises(RuntimeError, match="read-only"):
                await store.read_that_writes(2)
        assert await store.marks() == {1}  # the read that wrote was rolled back
        go = threading.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.wait_for, go)  # a group holds the connection
            await trio.testing.wait_all_tasks_blocked()
            reads: list[set[int]] = []

            async def read() -> None:
                reads.append(await store.read_marks())

            nursery.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()
            assert reads == []  # it waits for the group, never runs beside it
            go.set()
        assert reads == [{1}]

    run_store(tmp_path / "read-now.sqlite3", body)


def test_operations_after_close_fail_cleanly(tmp_path: Path) -> None:
    async def main() -> None:
        async with trio_asyncio.open_loop():
            store = CountingStore(tmp_path / "closed.sqlite3")
            await store.open()
            await store.setup()
            await store.close()
            with trio.fail_after(10), pytest.raises(StoreError, match="closed"):
                await store.mark(1)

    trio.run(main)


class CommittedCheckingSink:
    """Checks, from a second connection, that every event it is handed is already committed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[Event] = []

    def publish(self, events: list[Event]) -> None:
        reader = sqlite3.connect(self.path)
        try:
            ids = {row[0] for row in reader.execute("SELECT id FROM events")}
        finally:
            reader.close()
        assert all(event.id in ids for event in events), "published before its commit"
        self.events.extend(events)


def test_events_are_published_after_the_commit_and_never_for_a_failed_group(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    sink = CommittedCheckingSink(path)

    async def body(store: CountingStore) -> None:
        await store.set_mailbox_paused("sales", "first", 1.0)
        assert [e.kind for e in sink.events] == [EventKind.MAILBOX_PAUSED]
        # A group whose COMMIT fails: the pause written in it is rolled back and never published.
        go = threading.Event()
        failures: list[BaseException] = []

        async def expect_failure(call) -> None:  # type: ignore[no-untyped-def]
            try:
                await call()
            except StoreError as exc:
                failures.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.wait_for, go)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(expect_failure, lambda: store.set_mailbox_paused("support", "second", 2.0))
            nursery.start_soon(expect_failure, store.break_at_commit)
            await trio.testing.wait_all_tasks_blocked()
            go.set()
        assert len(failures) == 2  # both operations of the failed group
        assert [e.kind for e in sink.events] == [EventKind.MAILBOX_PAUSED]
        assert await store.mailbox_paused("support") is None
        await store.set_mailbox_paused("support", "third", 3.0)
        assert [(e.kind, e.mailbox_id) for e in sink.events][-1] == (EventKind.MAILBOX_PAUSED, "support")

    run_store(path, body, sink)


def test_a_group_holding_a_claim_commits_with_synchronous_full(tmp_path: Path) -> None:
    # A claim is committed before the transport is called; in WAL with synchronous=NORMAL that
    # commit is not fsynced and a power cut loses it, so the restarted daemon sends again.
    async def body(store: CountingStore) -> None:
        sequence = await store.create_sequence(SequenceSettings(name="s", mailbox_id="m"),
                                               [Step(type=StepType.EMAIL, subject="s", body="b")], 1.0)
        _, steps = await store.get_sequence(sequence.id)
        [enrollment] = (await store.enroll(sequence.id, [ContactInput("a@example.org")], None, 1.0, strict=True)).enrolled
        await store.transition_sequence(sequence.id, Action.START, 1.0)  # a claim refuses a draft's contacts
        statements: list[str] = []
        await store.trace(statements.append)
        statements.clear()  # the end of the group that set the trace
        try:
            assert isinstance(await store.claim_send(enrollment, steps[0].id, "m", "<m@example.com>", "s", 2.0), Claim)
            claim_group = list(statements)
            statements.clear()
            await store.mark(7)
            plain_group = list(statements)
        finally:
            await store.trace(None)
        # A brief group (a claim is one) takes the write lock without waiting for another
        # process's, then restores the wait for the statements after it (start_group).
        assert claim_group[:4] == ["PRAGMA synchronous=FULL", "PRAGMA busy_timeout=0", "BEGIN IMMEDIATE",
                                   f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}"]
        assert any(s.startswith("INSERT INTO outbox") for s in claim_group)
        assert claim_group[-2:] == ["COMMIT", "PRAGMA synchronous=NORMAL"]
        assert not any("synchronous" in s for s in plain_group)  # other groups stay NORMAL
        level = await store.synchronous_level()
        assert level == 1  # NORMAL between groups

    run_store(tmp_path / "durable.sqlite3", body)


def test_brief_operations_run_on_the_event_loop_and_commit_on_the_connection_thread(tmp_path: Path) -> None:
    # A group of send-path operations runs its statements where its callers are (no wait for
    # the GIL behind the loop); its COMMIT, the WAL write and fsync, goes to the connection
    # thread. A group with any other operation runs whole on that thread, so a long
    # operation never stalls the loop.
    async def body(store: CountingStore) -> None:
        loop_thread = threading.get_ident()
        seen: list[tuple[str, int]] = []
        await store.trace(lambda sql: seen.append((sql, threading.get_ident())))
        try:
            seen.clear()
            async with trio.open_nursery() as nursery:
                for key in (1, 2, 3):
                    nursery.start_soon(store.mark_brief, key)
            brief = list(seen)
            seen.clear()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.mark_brief, 4)
                nursery.start_soon(store.mark, 5)
            mixed = list(seen)
            seen.clear()
            async with trio.open_nursery() as nursery:
                for _ in range(2):
                    nursery.start_soon(store.read_marks)
            reads = list(seen)
        finally:
            await store.trace(None)
        # Reads have nothing to commit: they run whole on the loop, no hop (with the connection
        # free, each at once in a read transaction of its own).
        assert [sql for sql, _ in reads if not sql.startswith("SELECT")] == ["BEGIN", "COMMIT"] * 2
        assert {thread for _, thread in reads} == {loop_thread}
        inserts = [thread for sql, thread in brief if sql.startswith("INSERT INTO marks")]
        commits = [thread for sql, thread in brief if sql == "COMMIT"]
        assert len(inserts) == 3 and set(inserts) == {loop_thread}
        assert commits and loop_thread not in commits
        assert [sql for sql, _ in mixed].count("COMMIT") == 1  # one group
        assert {thread for _, thread in mixed} != {loop_thread} and loop_thread not in {t for _, t in mixed}
        assert await store.marks() == {1, 2, 3, 4, 5}

    run_store(tmp_path / "brief.sqlite3", body)


def test_a_brief_group_waits_for_another_process_lock_off_the_event_loop(tmp_path: Path) -> None:
    # Another process holds the write lock: BEGIN IMMEDIATE on the event loop would stall every
    # task for up to the busy timeout. The group notices at once and waits on the connection
    # thread instead; once the lock is gone it commits, and the connection is as before.
    path = tmp_path / "locked.sqlite3"

    async def body(store: CountingStore) -> None:
        other = sqlite3.connect(path, isolation_level=None)
        results: list[int] = []

        async def brief() -> None:
            results.append(await store.mark_brief(9))

        loop_thread = threading.get_ident()
        seen: list[tuple[str, int]] = []
        await store.trace(lambda sql: seen.append((sql, threading.get_ident())))
        seen.clear()  # the end of the group that set the trace
        try:
            other.execute("BEGIN IMMEDIATE")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(brief)
                await trio.testing.wait_all_tasks_blocked()  # the loop is free while the group waits
                assert results == []
                other.execute("ROLLBACK")
        finally:
            other.close()
            await store.trace(None)
        assert results == [18]
        # On the loop, the lock was asked for without waiting (SQLite's busy handler sleeps on
        # the calling thread), and the whole group then ran on the connection thread.
        on_loop = [sql for sql, thread in seen if thread == loop_thread]
        assert on_loop == ["PRAGMA busy_timeout=0", "BEGIN IMMEDIATE", f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}"]
        assert [sql for sql, thread in seen if thread != loop_thread][:2] == ["BEGIN IMMEDIATE", "SAVEPOINT op"]
        assert 9 in await store.marks()
        assert await store.busy_timeout() == BUSY_TIMEOUT_MS

    run_store(path, body)
