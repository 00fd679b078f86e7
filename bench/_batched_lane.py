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
- ``"multi-row"``: the same rows written by one statement per table for the whole batch
  (``INSERT ... SELECT FROM (VALUES ...) RETURNING``, ``UPDATE ... FROM (VALUES ...)``): the same
  claims, made durable the same way, the same 'sent' and 'completed' events (published after the
  commit), the sequence's auto-complete checked once per batch. What a store API taking batches
  could save. Only a first attempt of a last step (the benchmarks' one-step sequences) is
  modelled; anything else stops the model;
- ``"none"``, for one question only (what the ledger's writes cost a batched path): the claims are
  made up in memory and the results are not recorded, so nothing is durable, no 'sent' row or
  event is written and a crash would resend everything. Never a design, only the difference
  between two bounds.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import trio

from dripd import cadence, policy
from dripd.events import Event, EventKind, NoData
from dripd.scheduler import Lane
from dripd.store.api import Claim
from dripd.store.sqlite import journal
from dripd.store.sqlite.connection import claim_operation, read_operation, send_operation
from dripd.store.sqlite.runs import RunOps

# The store's send-path operations, unwrapped and run in a loop inside one group-committed operation.
_contexts = read_operation(lambda self, db, ids: [RunOps.run_context.__wrapped__(self, db, i) for i in ids])
_claims = claim_operation(lambda self, db, rows: [RunOps.claim_send.__wrapped__(self, db, *r) for r in rows])
_records = send_operation(lambda self, db, rows: [RunOps.record_sent.__wrapped__(self, db, *r) for r in rows])


def _values(rows: int, columns: int) -> str:
    return ",".join(["(" + ",".join("?" * columns) + ")"] * rows)


def _claim_rows(self: Any, db: Any, rows: list[tuple[Any, ...]]) -> list[Claim]:
    """``ledger="multi-row"``: ``claim_send``'s first attempt for every row at once."""
    params = [value for row in rows for value in (*row[:6], row[5], row[6])]
    inserted = db.execute(
        "INSERT INTO outbox (enrollment_id, step_id, mailbox_id, message_id, subject, status, attempts, created_at,"
        " attempted_at, variant) SELECT v.column1, v.column2, v.column3, v.column4, v.column5, 'sending', 1,"
        f" v.column6, v.column7, v.column8 FROM (VALUES {_values(len(rows), 8)}) v WHERE EXISTS (SELECT 1 FROM"
        " enrollments e JOIN sequences s ON s.id = e.sequence_id WHERE e.id = v.column1 AND e.status = 'active'"
        " AND s.status = 'active') ON CONFLICT (enrollment_id, step_id) DO NOTHING RETURNING id, enrollment_id",
        params).fetchall()
    ids = {enrollment_id: outbox_id for outbox_id, enrollment_id in inserted}
    if len(ids) != len(rows):
        raise RuntimeError("the model only makes first claims of runnable enrollments")
    db.execute("INSERT INTO send_log (mailbox_id, at, first_email) SELECT v.column1, v.column2, (SELECT sent_count = 0"
               f" FROM enrollments WHERE id = v.column3) FROM (VALUES {_values(len(rows), 3)}) v",
               [value for row in rows for value in (row[2], row[5], row[0])])
    return [Claim(ids[row[0]], row[3], 1, row[5], row[6]) for row in rows]


def _record_rows(self: Any, db: Any, rows: list[tuple[Any, ...]]) -> None:
    """``ledger="multi-row"``: ``record_sent`` of a last step for every row at once, its events
    written and handed to the store to publish after the commit."""
    if any(due is not None or claim.content is None for claim, *_, due, _now in rows):
        raise RuntimeError("the model only records last steps, with what was handed over")
    db.execute("UPDATE outbox SET status = 'sent', resolved_at = v.column2, detail = NULL, subject = v.column3,"
               f" body = v.column4, text_body = v.column5 FROM (VALUES {_values(len(rows), 5)}) v"
               " WHERE outbox.id = v.column1",
               [value for claim, *_, now in rows for value in (claim.outbox_id, now, *claim.content)])
    places = db.execute(
        "UPDATE enrollments SET sent_count = sent_count + 1, cursor_ord = v.column2, anchor_at = v.column3,"
        " status = 'completed', end_reason = NULL, ended_at = v.column4, updated_at = v.column4,"
        f" last_event_at = v.column4, next_run_at = NULL, due_at = NULL FROM (VALUES {_values(len(rows), 4)}) v"
        " WHERE enrollments.id = v.column1 AND enrollments.status = 'active'"
        " RETURNING id, sequence_id, contact_id, mailbox_id",
        [value for _, enrollment_id, _, cursor, anchor, _, now in rows for value in (enrollment_id, cursor, anchor, now)],
    ).fetchall()
    place = {enrollment_id: (sequence_id, contact_id, mailbox_id)
             for enrollment_id, sequence_id, contact_id, mailbox_id in places}
    events = []
    for claim, enrollment_id, step_id, *_, now in rows:
        sequence_id, contact_id, mailbox_id = place[enrollment_id]
        events.append(Event(EventKind.SENT, now, NoData(), mailbox_id=mailbox_id, sequence_id=sequence_id,
                            enrollment_id=enrollment_id, contact_id=contact_id, step_id=step_id,
                            outbox_id=claim.outbox_id))
        events.append(Event(EventKind.COMPLETED, now, NoData(), mailbox_id=mailbox_id, sequence_id=sequence_id,
                            enrollment_id=enrollment_id, contact_id=contact_id))
    numbers = db.execute(
        "INSERT INTO events (at, kind, mailbox_id, sequence_id, enrollment_id, contact_id, step_id, outbox_id, flagged,"
        f" data) VALUES {_values(len(events), 10)} RETURNING id",
        [value for event in events for value in journal.event_columns(event)]).fetchall()
    # RETURNING gives the rows in no promised order: the ids are the sequence's next ones, in order.
    journal._collected().extend(event.numbered(number) for event, number in zip(events, sorted(r[0] for r in numbers)))
    for sequence_id in {sequence_id for sequence_id, _, _ in place.values()}:
        journal.autocomplete(db, sequence_id, rows[0][-1])


async def _claims_in_memory(store: Any, rows: list[tuple[Any, ...]]) -> list[Claim]:
    """``ledger="none"``: the claims a first attempt would get, made up without the store."""
    first = _claims_in_memory.__dict__.setdefault("next_id", 1)
    _claims_in_memory.next_id = first + len(rows)  # type: ignore[attr-defined]
    return [Claim(first + k, row[3], 1, row[5], row[6]) for k, row in enumerate(rows)]


async def _no_records(store: Any, rows: list[tuple[Any, ...]]) -> None:
    """``ledger="none"``: the results are not recorded."""


_LEDGERS = {
    "per-row": (_claims, _records),
    "multi-row": (claim_operation(_claim_rows), send_operation(_record_rows)),
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
