"""A model of a batched lane: what a step would cost if a lane ran its sends in batches.

Not dripd's send path, and not a design: a measurement for a decision (issue 14). The engine runs
each due enrollment in a task of its own, through the send slots' two stages, with three store
operations (its read, its claim, its result) that group commits then gather. This model replaces
``Lane.run`` with a loop that takes up to ``batch`` due enrollments at once, in bench_dispatch.py's
child (a null transport) and in one dripd process of bench_send.py (the SMTP transport, installed
by bench/_model_site/sitecustomize.py), and, per batch:

- one read operation for every context (the store's own ``run_context`` statements, in a loop),
- the engine's own plan, render and build of each message (``Engine._prepare``), a token from the
  lane's limiter for each, the ending watch and the wire journal's claim line,
- one claim operation for the batch (the store's ``claim_send`` statements; durable, as dripd's),
- each message handed to the transport (``HandOver.send``) in a task of its own, as a transport
  that keeps several conversations would need, then the result decided (``policy.send_decision``),
- one operation recording every result (the store's ``record_sent`` statements: events included).

Left out, because a batched design would have to rebuild them: the send slots (dispatch order and
the wire places' accounting), withdrawals, pauses, retries and every other outcome but 'sent',
the lane's per-enrollment bookkeeping beyond the in-flight set. So the figure is a bound for a
batched path, not its cost. Up to ``pipeline`` batches are in flight, so one batch's claim commit
overlaps the next batch's reads: up to ``2 * batch`` enrollments are in flight.

``ledger`` says how the batch's claims and results are written:

- ``"per-row"`` (the default): the store's own ``claim_send`` and ``record_sent``, once per row,
  inside the batch's one operation each;
- ``"multi-row"``: the same rows written by the store's own multi-row forms
  (dripd/store/sqlite/multi_row.py), one statement per table for the whole batch, inside the
  batch's one operation each: the same claims, made durable the same way, the same events;
- ``"none"``, for one question only (what the ledger's writes cost a batched path): the claims are
  made up in memory and the results are not recorded, so nothing is durable, no 'sent' row or
  event is written and a crash would resend everything. Never a design, only the difference
  between two bounds.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import trio

from dripd import cadence, policy
from dripd.scheduler import Lane
from dripd.store.api import Claim
from dripd.store.sqlite import journal, multi_row
from dripd.store.sqlite.connection import claim_operation, read_operation, send_operation
from dripd.store.sqlite.runs import RunOps
from dripd.store.sqlite.transaction import MultiRow, Pending

# The store's send-path operations, unwrapped and run in a loop inside one group-committed operation.
_contexts = read_operation(lambda self, db, ids: [RunOps.run_context.__wrapped__(self, db, i) for i in ids])
_claims = claim_operation(lambda self, db, rows: [RunOps.claim_send.__wrapped__(self, db, *r) for r in rows])
_records = send_operation(lambda self, db, rows: [RunOps.record_sent.__wrapped__(self, db, *r) for r in rows])


def _all_at_once(form: MultiRow, operation: Any) -> Any:
    """``ledger="multi-row"``: the batch's rows written by the store's own multi-row ``form``
    (dripd/store/sqlite/multi_row.py), as a group of ``operation`` calls would be; their events go
    to the batch's one operation, published after its commit."""

    def run(self: Any, db: Any, rows: list[tuple[Any, ...]]) -> list[Any]:
        collected = journal._collected()  # the batch operation's; the form sets its own and clears it
        items = [Pending(functools.partial(operation, self, db, *row), True, False) for row in rows]
        try:
            outcomes = form(db, items)
        finally:
            journal.collect_into(collected)
        collected.extend(event for _, events in outcomes for event in events)
        return [result for result, _ in outcomes]

    return run


async def _claims_in_memory(store: Any, rows: list[tuple[Any, ...]]) -> list[Claim]:
    """``ledger="none"``: the claims a first attempt would get, made up without the store."""
    first = _claims_in_memory.__dict__.setdefault("next_id", 1)
    _claims_in_memory.next_id = first + len(rows)  # type: ignore[attr-defined]
    return [Claim(first + k, row[3], 1, row[5], row[6]) for k, row in enumerate(rows)]


async def _no_records(store: Any, rows: list[tuple[Any, ...]]) -> None:
    """``ledger="none"``: the results are not recorded."""


_LEDGERS = {
    "per-row": (_claims, _records),
    "multi-row": (claim_operation(_all_at_once(multi_row.claim_sends, RunOps.claim_send.__wrapped__)),
                  send_operation(_all_at_once(multi_row.record_sents, RunOps.record_sent.__wrapped__))),
    "none": (_claims_in_memory, _no_records),
}


async def _batch(engine: Any, lane: Lane, ids: list[int], done: trio.Semaphore) -> None:
    try:
        now = engine.clock.now()
        prepared = []
        for ctx in await _contexts(engine.store, ids):
            enrollment = ctx.enrollment
            mailbox = engine.config.current.mailbox(enrollment.mailbox_id)
            anchor = enrollment.anchor_at if enrollment.anchor_at is not None else enrollment.enrolled_at
            plan = cadence.plan(ctx.steps, enrollment.cursor_ord, anchor, now, engine.window(ctx), ctx.signals)
            if not isinstance(plan, cadence.SendStep) or engine.recipient_problem(ctx) is not None:
                raise RuntimeError(f"the model only sends: enrollment {enrollment.id} has {plan}")
            ready = await engine._prepare(ctx, mailbox, plan.step, now)
            due_at = enrollment.due_at if enrollment.due_at is not None else now
            if lane.take_token(enrollment.sent_count > 0, due_at) is None:
                if lane.stopping:
                    return  # the measurement is over (the child stops the daemon after its K sends)
                raise RuntimeError("the model needs the caps lifted")
            engine.metrics.observe_lateness(mailbox.id, max(0.0, now - due_at))
            engine.endings.watch(enrollment.id, ctx.sequence.id)
            engine.wire_journal.claiming((enrollment.id, plan.step.id))
            prepared.append((ctx, mailbox, plan.step, ready))
        claims = await _claims(engine.store, [(ctx.enrollment.id, step.id, mailbox.id, ready.message_id, ready.subject,
                                               now, ready.variant) for ctx, mailbox, step, ready in prepared])
        settings = engine.config.current.daemon
        rules = policy.RetryRules(settings.retry_max_attempts, settings.retry_max_age_hours * 3600,
                                  settings.retry_base_seconds)
        records: list[tuple[Any, ...]] = []

        async def send(ctx: Any, mailbox: Any, step: Any, ready: Any, claim: Claim) -> None:
            enrollment_id = ctx.enrollment.id
            rendered, data = engine._build(ctx, mailbox, step, claim, now, ready.built)
            result = await engine.hand_over.send(mailbox.id, ctx.contact.email, mailbox.address, claim.message_id,
                                                 data, (enrollment_id, step.id), lambda: False)
            engine.endings.forget(enrollment_id)
            claim = dataclasses.replace(claim, content=(rendered.subject, rendered.html, rendered.text))
            engine.metrics.sent(mailbox.id, ctx.sequence.id, step.id, result.outcome.value)
            decision = policy.send_decision(result, attempts=claim.attempts, first_attempt_at=claim.first_attempt_at,
                                            now=now, rules=rules, jitter=0.5)
            if not isinstance(decision, policy.Sent):
                raise RuntimeError(f"the model only records sends: {decision}")
            cursor_ord, anchor, due = engine.next_after(ctx, step, now)
            records.append((claim, enrollment_id, step.id, cursor_ord, anchor, due, now))

        async with trio.open_nursery() as nursery:
            for (ctx, mailbox, step, ready), claim in zip(prepared, claims):
                if not isinstance(claim, Claim):
                    raise RuntimeError(f"the model's claim was refused: {claim}")
                nursery.start_soon(send, ctx, mailbox, step, ready, claim)
        await _records(engine.store, records)
        for _, enrollment_id, step_id, *_ in records:
            engine.counters.sent += 1
            engine.wire_journal.settled((enrollment_id, step_id))
    finally:
        # Out of the lane's in-flight set however the batch ended: the daemon's graceful stop
        # waits for that set to empty.
        lane._inflight.difference_update(ids)
        done.release()


def install(batch: int, pipeline: int = 2, ledger: str = "per-row") -> None:
    """Make every lane of this process run the model instead of its workers, writing the ledger
    as ``ledger`` says (the module's docstring)."""
    global _claims, _records
    _claims, _records = _LEDGERS[ledger]

    async def run(self: Lane, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        engine = self._run.__self__  # type: ignore[attr-defined]  # the lane's runner is Engine.run
        task_status.started()
        if self._dispatch_after is not None:
            await self._dispatch_after.wait()
        in_flight = trio.Semaphore(pipeline)
        async with trio.open_nursery() as nursery:
            while not self.stopping:
                now = self._clock.now()
                if self._needs_refill(now):
                    await self._refill(now)
                ids: list[int] = []
                while len(ids) < batch and (enrollment_id := self._next_due(now)) is not None:
                    self._inflight.add(enrollment_id)
                    ids.append(enrollment_id)
                if not ids:
                    await self._sleep(now)
                    continue
                await in_flight.acquire()
                if self.stopping:
                    self._inflight.difference_update(ids)
                    in_flight.release()
                    break
                nursery.start_soon(_batch, engine, self, ids, in_flight)

    Lane.run = run  # type: ignore[method-assign]
