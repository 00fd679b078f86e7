"""The send path's claims and results written a group at a time (dripd/store/sqlite/multi_row.py)
leave the database, and give each caller, exactly what the one-row operations would have.

One scenario, run three times on fresh databases: with the multi-row forms (each group of claims
and of results written one statement per table), without them (every operation alone, in its
own savepoint), and with forms that fail (rolled back, each operation then run alone). Every case
the forms hand back to the one-row functions is in it: a retry, a step already sent, a step claimed
twice in one group, an enrollment ended before its claim and two ended between their claim and
their result (one at its last step), a result with and without the content handed over, a step
that is not the last, a sequence paused meanwhile, the last contact of a sequence, which completes
it, an operation that fails on its own, and other operations in the same groups (an ending, a read).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
import trio
import trio.testing
import trio_asyncio

from dripd.model import Action, EnrollmentStatus
from dripd.store import Claim, Refused
from dripd.store.sqlite import Store, multi_row, read_operation, thread_operation
from dripd.store.sqlite.runs import RunOps
from tests.contract.support import T0, RecordingSink, active_sequence, enroll_one

HOUR = 3600.0
CONTENT = ("Subject seen", "<p>html seen</p>", "text seen")


class HoldingStore(Store):
    @thread_operation
    def wait_for(self, db: sqlite3.Connection, go: threading.Event) -> None:
        go.wait(10)  # holds the connection: the callers queued meanwhile form one group

    @thread_operation
    def trace(self, db: sqlite3.Connection, callback: Callable[[str], None]) -> None:
        db.set_trace_callback(callback)  # on the connection's own thread, as sqlite3 requires

    @read_operation
    def dump(self, db: sqlite3.Connection) -> tuple[dict[str, list[tuple[Any, ...]]], dict[int, tuple[int, int]]]:
        """Every row the send path writes, with ledger rows named by (enrollment, step) and in no
        order: trio starts the callers of a group in an order of its own, and row and event ids
        show only the order the group's operations took inside it. Also each outbox id's name."""
        named = {r[0]: (r[1], r[2]) for r in db.execute("SELECT id, enrollment_id, step_id FROM outbox")}
        tables = {
            "outbox": [(named[r[0]], *r[1:]) for r in db.execute("SELECT * FROM outbox")],
            "enrollments": db.execute("SELECT * FROM enrollments").fetchall(),
            "send_log": db.execute("SELECT * FROM send_log").fetchall(),
            "sequences": db.execute("SELECT * FROM sequences").fetchall(),
            "events": [(*r[:7], named.get(r[7]), *r[8:]) for r in db.execute(
                "SELECT at, kind, mailbox_id, sequence_id, enrollment_id, contact_id, step_id, outbox_id, flagged, data"
                " FROM events")],
        }
        return {name: sorted((tuple(row) for row in rows), key=repr) for name, rows in tables.items()}, named


async def _in_one_group(store: HoldingStore, calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Each call's result, or the name of the error it raised."""
    results: list[Any] = [None] * len(calls)

    async def run(index: int) -> None:
        try:
            results[index] = await calls[index]()
        except Exception as exc:
            results[index] = type(exc).__name__

    go = threading.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.wait_for, go)
        await trio.testing.wait_all_tasks_blocked()
        for index in range(len(calls)):
            nursery.start_soon(run, index)
        await trio.testing.wait_all_tasks_blocked()
        go.set()
    return results


def _scenario(path: Path) -> tuple[list[Any], list[Any], dict[str, list[tuple[Any, ...]]], list[Any], list[str]]:
    """Returns the claims' results, the records' results, the tables, the events published (by
    content) and the statements the two groups ran."""
    sink = RecordingSink()
    out: list[Any] = []

    async def main() -> None:
        async with trio_asyncio.open_loop():
            store = HoldingStore(path, sink)
            await store.open()
            try:
                with trio.fail_after(60):
                    out.extend(await _body(store, sink))
            finally:
                await store.close()

    trio.run(main)
    for batch in sink.batches:  # each committed group's events, in the order they were written
        assert [event.id for event in batch] == sorted(event.id or 0 for event in batch)
    claims, records, (tables, named), statements = out
    claims = [dataclasses.replace(claim, outbox_id=named[claim.outbox_id]) if isinstance(claim, Claim) else claim
              for claim in claims]
    published = sorted(((e.kind, e.enrollment_id, e.sequence_id, e.step_id, named.get(e.outbox_id or 0))
                        for e in sink.events), key=repr)
    return claims, records, tables, published, statements


async def _body(store: HoldingStore, sink: RecordingSink) -> list[Any]:
    last, last_steps = await active_sequence(store, "one step", steps=1)
    two, two_steps = await active_sequence(store, "two steps", steps=2)
    finishing = [await enroll_one(store, last.id, f"f{k}@example.org") for k in range(4)]  # f3 ends meanwhile
    moving, ends_meanwhile, sent_before, ended_before, retried = [
        await enroll_one(store, two.id, f"{name}@example.org")
        for name in ("moving", "meanwhile", "sent", "ended", "retried")]
    held, held_steps = await active_sequence(store, "paused between", steps=2)
    paused_later = await enroll_one(store, held.id, "paused@example.org")
    first, second = two_steps[0].id, two_steps[1].ord  # the first step's id, the cursor past it
    second_step = two_steps[1].id
    ended_before_too = await enroll_one(store, two.id, "ended-in-group@example.org")
    # Before the groups: one step already sent, one enrollment ended, one row waiting as 'retry'.
    done = await store.claim_send(sent_before, first, "sales", "<sent@x>", "s", T0)
    assert isinstance(done, Claim)
    await store.record_sent(done, sent_before, first, 1, T0, T0 + HOUR, T0)
    await store.finish(ended_before, EnrollmentStatus.CANCELLED, "cancelled", T0)
    tried = await store.claim_send(retried, first, "sales", "<retried@x>", "s", T0)
    assert isinstance(tried, Claim)
    await store.record_retry(tried, retried, first, T0 + 60, "451 later", T0)
    sink.clear()

    statements: list[str] = []
    await store.trace(statements.append)
    now = T0 + 100
    claim_calls: list[Callable[[], Awaitable[Any]]] = [
        *(lambda e=e: store.claim_send(e, last_steps[0].id, "sales", f"<{e}@x>", "s", now) for e in finishing),
        lambda: store.claim_send(moving, first, "sales", "<moving@x>", "s", now, "B"),
        lambda: store.claim_send(ends_meanwhile, first, "sales", "<meanwhile@x>", "s", now),
        lambda: store.claim_send(sent_before, first, "sales", "<again@x>", "s", now),
        lambda: store.claim_send(ended_before, first, "sales", "<ended@x>", "s", now),
        lambda: store.claim_send(retried, first, "sales", "<new-id@x>", "s", now),
        lambda: store.claim_send(paused_later, held_steps[0].id, "sales", "<paused@x>", "s", now),
    ]
    claims = await _in_one_group(store, claim_calls)
    # The same step twice in a group (never made by one lane): one claim, one refusal, either way.
    twice = await _in_one_group(store, [
        lambda: store.claim_send(sent_before, second_step, "sales", "<twice@x>", "s", now),
        lambda: store.claim_send(sent_before, second_step, "sales", "<twice@x>", "s", now),
    ])
    claims += sorted(twice, key=repr)
    await store.finish(ends_meanwhile, EnrollmentStatus.CANCELLED, "replied elsewhere", now)
    await store.finish(finishing[3], EnrollmentStatus.UNSUBSCRIBED, "unsubscribed", now)
    await store.transition_sequence(held.id, Action.PAUSE, now)  # its contact is held, not due
    later = now + 10
    c = dict(zip(("f0", "f1", "f2", "f3", "moving", "meanwhile", "sent", "ended", "retried", "paused"), claims))
    record_calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: store.record_sent(dataclasses.replace(c["f0"], content=CONTENT), finishing[0], last_steps[0].id,
                                  1, now, None, later),
        lambda: store.record_sent(c["f1"], finishing[1], last_steps[0].id, 1, now, None, later),
        lambda: store.record_sent(c["f2"], finishing[2], last_steps[0].id, 1, now, None, later),
        lambda: store.record_sent(dataclasses.replace(c["moving"], content=CONTENT), moving, first, second,
                                  now, later + HOUR, later),
        lambda: store.record_sent(c["meanwhile"], ends_meanwhile, first, second, now, later + HOUR, later),
        lambda: store.record_sent(c["retried"], retried, first, second, now, later + HOUR, later),
        lambda: store.record_sent(c["f3"], finishing[3], last_steps[0].id, 1, now, None, later),
        lambda: store.finish(ended_before_too, EnrollmentStatus.CANCELLED, "cancelled", later),
        lambda: store.run_context(ended_before),
    ]
    records = await _in_one_group(store, record_calls)
    records[-1] = records[-1].enrollment.id  # the read: of a row no operation of the group writes
    # A group whose form fails on one operation's bad argument: that one fails, alone.
    records += await _in_one_group(store, [
        lambda: store.record_sent(c["paused"], paused_later, held_steps[0].id, held_steps[1].ord, now, later + HOUR,
                                  later),
        lambda: store.record_sent(None, moving, second_step, 2, now, None, later),  # type: ignore[arg-type]
    ])
    await store.trace(None)
    return [claims, records, await store.dump(), statements]


def last_sequence_id(tables: dict[str, list[tuple[Any, ...]]]) -> int:
    [completed] = [row[0] for row in tables["sequences"] if row[3] == "completed"]
    return int(completed)


def _alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The scenario with every operation run alone (the multi-row forms' marks taken away, and
    put back after it)."""
    for fn in _forms():
        monkeypatch.delattr(fn, "multi_row")
    alone = _scenario(tmp_path / "alone.sqlite3")
    monkeypatch.undo()
    return alone


def _forms() -> list[Any]:
    return [RunOps.claim_send.__wrapped__, RunOps.record_sent.__wrapped__]  # type: ignore[attr-defined]


def test_groups_written_a_statement_per_table_are_what_one_row_at_a_time_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    together = _scenario(tmp_path / "together.sqlite3")
    alone = _alone(tmp_path, monkeypatch)

    claims, records, tables, published, statements = together
    assert claims == alone[0] and tables == alone[2] and published == alone[3]
    # Which of the one-step sequence's three finishing contacts completed it depends on the
    # order the group's operations took (the last one did): one of them says so either way.
    assert sorted(records[:3], key=repr) == sorted(alone[1][:3], key=repr) and records[3:] == alone[1][3:]
    assert any(s.startswith("INSERT INTO outbox") and "FROM (VALUES" in s for s in statements), "claims together"
    assert any(s.startswith("UPDATE enrollments") and "FROM (VALUES" in s for s in statements), "results together"
    assert "ROLLBACK TO op" in statements, "the last group's form failed and its operations ran alone"
    assert not any("FROM (VALUES" in s for s in alone[4])

    # And what they wrote is what each case calls for.
    f0, f1, f2, f3, moving, meanwhile, sent, ended, retried, paused, *twice = claims
    assert all(isinstance(claim, Claim) and claim.attempts == 1
               for claim in (f0, f1, f2, f3, moving, meanwhile, paused))
    assert twice[0] is Refused.IN_LEDGER and isinstance(twice[1], Claim)  # (sorted by repr)
    assert moving.variant == "B"
    assert sent.name == "IN_LEDGER" and ended.name == "NOT_RUNNABLE"
    assert isinstance(retried, Claim) and retried.attempts == 2 and retried.message_id == "<retried@x>"
    assert records[:3].count(None) == 2 and last_sequence_id(tables) in records[:3], \
        "the last contact of the one-step sequence completes it, and only its result says so"
    assert records[3:8] == [None] * 5 and isinstance(records[8], int) and records[9:] == [None, "AttributeError"]
    kinds = [kind.value for kind, *_ in published]
    assert kinds.count("sent") == 8 and kinds.count("completed") == 3 and kinds.count("sequence_completed") == 1


def test_a_form_that_fails_is_rolled_back_and_each_operation_runs_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alone = _alone(tmp_path, monkeypatch)

    def half_done(form: Callable[..., Any]) -> Callable[..., Any]:
        def fails(db: sqlite3.Connection, items: list[Any]) -> Any:
            form(db, items)  # writes everything, then fails: all of it must be rolled back
            raise sqlite3.OperationalError("disk I/O error")

        return fails

    for fn in _forms():
        monkeypatch.setattr(fn, "multi_row", half_done(fn.multi_row))
    failed = _scenario(tmp_path / "failed.sqlite3")
    assert failed[0] == alone[0] and failed[2:4] == alone[2:4]
    assert sorted(failed[1], key=repr) == sorted(alone[1], key=repr)
    assert any("FROM (VALUES" in s for s in failed[4]) and any("ROLLBACK TO op" in s for s in failed[4])


def test_a_group_larger_than_a_statement_takes_is_written_in_chunks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alone = _alone(tmp_path, monkeypatch)
    monkeypatch.setattr(multi_row, "CHUNK", 2)
    chunked = _scenario(tmp_path / "chunked.sqlite3")
    assert chunked[0] == alone[0] and chunked[2:4] == alone[2:4]
    assert sorted(chunked[1], key=repr) == sorted(alone[1], key=repr)
    assert sum(s.startswith("INSERT INTO outbox") and "FROM (VALUES" in s for s in chunked[4]) >= 4
