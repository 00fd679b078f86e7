"""RunStore and DueSource: due work, the ledger (one claim per step, retries under one Message-ID),
the results of a send, endings and crash-recovery reads."""

from __future__ import annotations

import pytest

from dripd.events import Bounce, Detail, EventKind, NoData
from dripd.model import Action, Enrollment, EnrollmentStatus, SequenceStatus
from dripd.policy import Bounced
from dripd.store import Claim, ContactInput, DueSource, FullStore, Refused, RunStore
from tests.contract.support import T0, RecordingSink, active_sequence, enroll_one


async def test_due_work_by_keyset_followups_flagged_and_send_history(store: FullStore) -> None:
    due: DueSource = store
    run: RunStore = store
    sequence, steps = await active_sequence(store)
    first = await enroll_one(store, sequence.id, "a@example.org", T0)
    second = await enroll_one(store, sequence.id, "b@example.org", T0 + 1)
    rows = await due.due_for_mailbox("sales", (0.0, 0), T0 + 10, 10)
    assert [(r.enrollment_id, r.next_run_at, r.followup) for r in rows] == [(first, T0, False), (second, T0 + 1, False)]
    assert [r.enrollment_id for r in await due.due_for_mailbox("sales", (T0, first), T0 + 10, 10)] == [second]
    assert await due.due_for_mailbox("sales", (0.0, 0), T0 + 0.5, 10) == [r for r in rows if r.next_run_at <= T0 + 0.5]
    assert await due.due_for_mailbox("other", (0.0, 0), T0 + 10, 10) == []

    claim = await run.claim_send(first, steps[0].id, "sales", "<m1@example.com>", "step 0", T0 + 5)
    assert isinstance(claim, Claim)
    assert await due.send_history("sales", T0) == [T0 + 5]
    await due.prune_send_log(T0 + 6)
    assert await due.send_history("sales", 0.0) == []
    assert await due.mailbox_paused("sales") is None


async def test_the_ledger_refuses_a_second_claim_of_a_step(store: FullStore) -> None:
    run: RunStore = store
    sequence, steps = await active_sequence(store, steps=2)
    enrollment = await enroll_one(store, sequence.id)
    claim = await run.claim_send(enrollment, steps[0].id, "sales", "<m1@example.com>", "step 0", T0)
    assert isinstance(claim, Claim)
    assert (claim.message_id, claim.attempts, claim.first_attempt_at) == ("<m1@example.com>", 1, T0)
    # In flight, sent or uncertain: never a second claim, whatever Message-ID is offered.
    assert await run.claim_send(enrollment, steps[0].id, "sales", "<m2@example.com>", "s", T0 + 1) is Refused.IN_LEDGER
    await run.record_sent(claim, enrollment, steps[0].id, steps[1].ord, T0 + 2, T0 + 100, T0 + 2)
    assert await run.claim_send(enrollment, steps[0].id, "sales", "<m3@example.com>", "s", T0 + 3) is Refused.IN_LEDGER
    # The next step is a different ledger row.
    assert isinstance(await run.claim_send(enrollment, steps[1].id, "sales", "<m4@example.com>", "s", T0 + 4), Claim)


async def test_a_claim_is_refused_once_the_enrollment_ended(store: FullStore) -> None:
    """A reply (or any ending) committed between the engine's read of an enrollment and its claim:
    the claim refuses it, writes no row and counts no send against the caps."""
    run: RunStore = store
    sequence, steps = await active_sequence(store, steps=2, auto_complete=False)
    replied = await enroll_one(store, sequence.id, "a@example.org")
    await run.finish(replied, EnrollmentStatus.REPLIED, "a reply", T0 + 1)
    assert await run.claim_send(replied, steps[0].id, "sales", "<a@example.com>", "s", T0 + 2) is Refused.NOT_RUNNABLE
    assert await store.count_outbox("sending") == 0
    assert await run.send_history("sales", 0.0) == []
    # A retry row of an enrollment that ended since: refused, and the row stays as it was.
    retried = await enroll_one(store, sequence.id, "b@example.org")
    claim = await run.claim_send(retried, steps[0].id, "sales", "<b@example.com>", "s", T0 + 3)
    assert isinstance(claim, Claim)
    await run.release_claim(claim.outbox_id, retried, T0 + 4, T0 + 4, "paused before the send")
    await run.finish(retried, EnrollmentStatus.CANCELLED, "cancelled by request", T0 + 5)
    assert await run.claim_send(retried, steps[0].id, "sales", "<b2@example.com>", "s", T0 + 6) is Refused.NOT_RUNNABLE
    [row] = await run.outbox_in_state("retry")
    assert (row.id, row.message_id) == (claim.outbox_id, "<b@example.com>")
    assert await run.send_history("sales", 0.0) == [T0 + 3]  # the first claim's, not the refused one's
    # A paused sequence holds its contacts: a claim made after the pause is refused, first
    # attempt or retry, and goes once it resumes.
    paused, held_steps = await active_sequence(store, "paused", steps=2, auto_complete=False)
    waiting = await enroll_one(store, paused.id, "d@example.org")
    await store.transition_sequence(paused.id, Action.PAUSE, T0 + 10, "by hand")
    assert await run.claim_send(waiting, held_steps[0].id, "sales", "<d@example.com>", "s", T0 + 11) \
        is Refused.NOT_RUNNABLE
    await store.transition_sequence(paused.id, Action.RESUME, T0 + 12)
    assert isinstance(await run.claim_send(waiting, held_steps[0].id, "sales", "<d@example.com>", "s", T0 + 13), Claim)
    # A step the ledger holds is refused as such, ended or not: never a second send.
    held = await enroll_one(store, sequence.id, "c@example.org")
    sent = await run.claim_send(held, steps[0].id, "sales", "<c@example.com>", "s", T0 + 7)
    assert isinstance(sent, Claim)
    await run.finish(held, EnrollmentStatus.UNSUBSCRIBED, "unsubscribed", T0 + 8)
    assert await run.claim_send(held, steps[0].id, "sales", "<c2@example.com>", "s", T0 + 9) is Refused.IN_LEDGER


async def test_a_retry_keeps_its_message_id_and_counts_attempts(store: FullStore, sink: RecordingSink) -> None:
    run: RunStore = store
    sequence, steps = await active_sequence(store)
    enrollment = await enroll_one(store, sequence.id)
    claim = await run.claim_send(enrollment, steps[0].id, "sales", "<m1@example.com>", "step 0", T0)
    assert isinstance(claim, Claim)
    sink.clear()
    await run.record_retry(claim, enrollment, steps[0].id, T0 + 600, "451 try later", T0 + 1)
    [retry] = sink.events
    assert (retry.kind, retry.payload, retry.outbox_id) == (EventKind.RETRY, Detail(detail="451 try later", attempt=1),
                                                           claim.outbox_id)
    rows = await store.due_for_mailbox("sales", (0.0, 0), T0 + 1000, 10)
    assert [(r.enrollment_id, r.next_run_at) for r in rows] == [(enrollment, T0 + 600)]
    again = await run.claim_send(enrollment, steps[0].id, "sales", "<other@example.com>", "step 0", T0 + 600)
    assert isinstance(again, Claim)
    assert (again.outbox_id, again.message_id, again.attempts, again.first_attempt_at) == (
        claim.outbox_id, "<m1@example.com>", 2, T0)


async def test_a_claim_released_untried_gives_back_its_attempt_and_its_place_under_the_caps(store: FullStore) -> None:
    """A claim withdrawn before the wire (or claimed before a crash and never handed over) was
    never tried: releasing it undoes its attempt and its own send_log row (not a follow-up's or
    another mailbox's at the same instant). Claimed again, the row takes the claiming mailbox (the
    enrollment may have moved) and, never tried before, makes its first attempt then. One
    released after a try (a refused sender) keeps both."""
    run: RunStore = store
    sequence, steps = await active_sequence(store, steps=2)
    withdrawn = await enroll_one(store, sequence.id, "a@example.org", T0)
    beside = await enroll_one(store, sequence.id, "b@example.org", T0)
    following = await enroll_one(store, sequence.id, "c@example.org", T0)
    elsewhere = await enroll_one(store, sequence.id, "d@example.org", T0)
    first = await run.claim_send(following, steps[0].id, "sales", "<c0@example.com>", "s", T0)
    assert isinstance(first, Claim)
    await run.record_sent(first, following, steps[0].id, steps[1].ord, T0, T0 + 2, T0)
    # At the instant of the claim to withdraw: a follow-up (logged first), a first email of the
    # same mailbox and one of another mailbox.
    for enrollment, step, mailbox in ((following, steps[1], "sales"), (beside, steps[0], "sales"),
                                      (elsewhere, steps[0], "other")):
        assert isinstance(await run.claim_send(enrollment, step.id, mailbox, f"<{enrollment}@example.com>", "s", T0 + 2),
                          Claim)
    claim = await run.claim_send(withdrawn, steps[0].id, "sales", "<a@example.com>", "s", T0 + 2)
    assert isinstance(claim, Claim)
    await run.release_claim(claim.outbox_id, withdrawn, T0 + 3, T0 + 3, "paused before the send", untried=True)
    assert await run.send_history("sales", 0.0) == [T0, T0 + 2, T0 + 2]  # c's first, b's, c's follow-up
    assert await run.first_email_history("sales", 0.0) == [T0, T0 + 2]
    assert await run.send_history("other", 0.0) == [T0 + 2]
    # Claimed again by the mailbox the enrollment moved to, and withdrawn again.
    again = await run.claim_send(withdrawn, steps[0].id, "moved", "<other@example.com>", "s", T0 + 4)
    assert isinstance(again, Claim)
    assert (again.outbox_id, again.message_id, again.attempts, again.first_attempt_at) == (
        claim.outbox_id, "<a@example.com>", 1, T0 + 4)
    assert {row.id: row.mailbox_id for row in await run.outbox_in_state("sending")}[claim.outbox_id] == "moved"
    assert await run.send_history("moved", 0.0) == [T0 + 4]
    await run.release_claim(again.outbox_id, withdrawn, T0 + 5, T0 + 5, "the enrollment ended", untried=True)
    assert await run.send_history("moved", 0.0) == []
    tried = await run.claim_send(withdrawn, steps[0].id, "moved", "<other@example.com>", "s", T0 + 6)
    assert isinstance(tried, Claim) and (tried.attempts, tried.first_attempt_at) == (1, T0 + 6)
    await run.release_claim(tried.outbox_id, withdrawn, T0 + 7, T0 + 7, "sender refused: 550 not allowed")
    third = await run.claim_send(withdrawn, steps[0].id, "moved", "<other@example.com>", "s", T0 + 8)
    assert isinstance(third, Claim) and (third.attempts, third.first_attempt_at) == (2, T0 + 6)
    assert await run.send_history("moved", 0.0) == [T0 + 6, T0 + 8]


async def test_sent_advances_and_the_last_step_completes_the_enrollment(store: FullStore, sink: RecordingSink) -> None:
    run: RunStore = store
    sequence, steps = await active_sequence(store, steps=2, auto_complete=False)
    enrollment = await enroll_one(store, sequence.id)
    claim = await run.claim_send(enrollment, steps[0].id, "sales", "<m1@example.com>", "Hello", T0)
    assert isinstance(claim, Claim)
    assert await run.record_sent(claim, enrollment, steps[0].id, steps[1].ord, T0, T0 + 86400, T0) is None
    ctx = await run.run_context(enrollment)
    assert ctx is not None
    assert ctx.thread == [("<m1@example.com>", "Hello")]
    assert (ctx.enrollment.cursor_ord, ctx.enrollment.due_at, ctx.enrollment.sent_count) == (steps[1].ord, T0 + 86400, 1)
    assert ctx.contact.email == "ada@example.org" and ctx.suppressed is None
    second = await run.claim_send(enrollment, steps[1].id, "sales", "<m2@example.com>", "Re: Hello", T0 + 86400)
    assert isinstance(second, Claim)
    sink.clear()
    assert await run.record_sent(second, enrollment, steps[1].id, steps[1].ord + 1, T0 + 86400, None, T0 + 86400) is None
    assert sink.kinds() == [EventKind.SENT, EventKind.COMPLETED]
    sent = sink.events[0]
    assert (sent.payload, sent.step_id, sent.outbox_id, sent.sequence_id, sent.mailbox_id) == (
        NoData(), steps[1].id, second.outbox_id, sequence.id, "sales")
    ctx = await run.run_context(enrollment)
    assert ctx is not None and ctx.enrollment.status is EnrollmentStatus.COMPLETED


async def test_the_run_context_carries_every_field_of_the_enrollment(store: FullStore) -> None:
    """Each column of the enrollment and its contact reaches its model (the SQLite store unpacks
    them by position: a column out of place would show here). Every id and number differs."""
    run: RunStore = store
    other, _ = await active_sequence(store, "other")
    await store.create_contact(ContactInput("nobody@example.org"), T0)
    for email in ("zed@example.org", "yan@example.org"):
        await enroll_one(store, other.id, email)
    sequence, steps = await active_sequence(store, steps=3)
    result = await store.enroll(sequence.id, [ContactInput("ada@example.org", first_name="Ada", last_name="Lovelace",
                                                           company="Analytical", fields={"city": "London"})],
                                [{"topic": "a"}], T0, strict=True)
    enrollment = result.enrolled[0]
    contact = await store.find_contact("ada@example.org")
    assert contact is not None
    assert len({enrollment, sequence.id, contact.id}) == 3
    claim = await run.claim_send(enrollment, steps[0].id, "sales", "<m1@example.com>", "Hello", T0 + 5)
    assert isinstance(claim, Claim)
    await run.record_sent(claim, enrollment, steps[0].id, steps[2].ord, T0 + 6, T0 + 86400, T0 + 7)
    ctx = await run.run_context(enrollment)
    assert ctx is not None
    assert steps[2].ord != 1  # not the sent count
    assert ctx.enrollment == Enrollment(
        id=enrollment, sequence_id=sequence.id, contact_id=contact.id, mailbox_id="sales",
        status=EnrollmentStatus.ACTIVE, cursor_ord=steps[2].ord, due_at=T0 + 86400, merge_fields={"topic": "a"},
        sent_count=1, enrolled_at=T0, last_event_at=T0 + 7, anchor_at=T0 + 6)
    assert ctx.contact == contact
    assert (ctx.contact.last_name, ctx.contact.company, ctx.contact.fields) == ("Lovelace", "Analytical",
                                                                                {"city": "London"})


async def test_set_plan_holds_outside_an_active_sequence_and_refuses_ended(store: FullStore) -> None:
    run: RunStore = store
    sequence, steps = await active_sequence(store)
    enrollment = await enroll_one(store, sequence.id)
    assert await run.set_plan(enrollment, steps[0].ord, T0, T0 + 50, T0)
    assert [r.next_run_at for r in await store.due_for_mailbox("sales", (0.0, 0), T0 + 100, 10)] == [T0 + 50]
    await store.transition_sequence(sequence.id, Action.PAUSE, T0 + 1, "by hand")
    assert await run.set_plan(enrollment, steps[0].ord, T0, T0 + 60, T0 + 2)
    assert await store.due_for_mailbox("sales", (0.0, 0), T0 + 100, 10) == []  # held, place kept
    await store.transition_sequence(sequence.id, Action.RESUME, T0 + 3)
    assert [r.next_run_at for r in await store.due_for_mailbox("sales", (0.0, 0), T0 + 100, 10)] == [T0 + 60]
    await run.finish(enrollment, EnrollmentStatus.CANCELLED, "by hand", T0 + 4)
    assert not await run.set_plan(enrollment, steps[0].ord, T0, T0 + 70, T0 + 5)


@pytest.mark.parametrize("bounce_class", ["hard", "soft"])
async def test_a_bounced_send_ends_the_contact_and_a_hard_one_suppresses(
        store: FullStore, sink: RecordingSink, bounce_class: str) -> None:
    run: RunStore = store
    sequence, steps = await active_sequence(store, auto_complete=False)
    enrollment = await enroll_one(store, sequence.id)
    claim = await run.claim_send(enrollment, steps[0].id, "sales", "<m1@example.com>", "s", T0)
    assert isinstance(claim, Claim)
    sink.clear()
    bounce = Bounced(bounce_class, "550 5.1.1 no such user", "5.1.1")
    assert await run.record_bounced(claim, enrollment, steps[0].id, bounce, "ada@example.org", T0 + 1) is None
    [event] = sink.events  # one event says why; the ending writes no second one
    assert (event.kind, event.payload, event.outbox_id) == (
        EventKind.BOUNCED, Bounce(bounce_class, "550 5.1.1 no such user", "5.1.1"), claim.outbox_id)
    ctx = await run.run_context(enrollment)
    assert ctx is not None and ctx.enrollment.status is EnrollmentStatus.BOUNCED
    assert await run.outbox_in_state("failed") == [await _row(store, claim.outbox_id)]
    assert await store.suppression_reason("ada@example.org") == ("bounced" if bounce_class == "hard" else None)
    assert await run.sequence_hard_bounces(sequence.id, 50) == (1 if bounce_class == "hard" else 0, 1)


async def _row(store: FullStore, outbox_id: int) -> object:
    return next(r for r in await store.outbox_in_state("failed") if r.id == outbox_id)


async def test_an_unbuildable_message_resolves_the_row_failed_and_the_enrollment_failed(
        store: FullStore, sink: RecordingSink) -> None:
    """The row is resolved failed with the reason, and the enrollment ends failed. Never handed
    to a transport, it was no attempt and takes no place under the caps (a follow-up of the
    mailbox claimed at the same instant keeps its place)."""
    run: RunStore = store
    sequence, steps = await active_sequence(store, steps=2, auto_complete=False)
    enrollment = await enroll_one(store, sequence.id)
    beside = await enroll_one(store, sequence.id, "bo@example.org", T0)
    first = await run.claim_send(beside, steps[0].id, "sales", "<b0@example.com>", "s", T0 - 10)
    assert isinstance(first, Claim)
    await run.record_sent(first, beside, steps[0].id, steps[1].ord, T0 - 10, T0, T0 - 10)
    other = await run.claim_send(beside, steps[1].id, "sales", "<b1@example.com>", "s", T0)
    assert isinstance(other, Claim)
    claim = await run.claim_send(enrollment, steps[0].id, "sales", "<m1@example.com>", "s", T0)
    assert isinstance(claim, Claim)
    sink.clear()
    reason = "first name holds a control character"
    assert await run.record_unbuildable(claim, enrollment, steps[0].id, reason, T0 + 1) is None
    assert await run.send_history("sales", 0.0) == [T0 - 10, T0]
    assert await run.first_email_history("sales", 0.0) == [T0 - 10]  # its own row went, not the follow-up's
    assert sink.kinds() == [EventKind.FAILED]
    assert sink.events[0].payload == Detail(detail=reason)
    assert [row.id for row in await run.outbox_in_state("sending")] == [other.outbox_id]
    [row] = await run.outbox_in_state("failed")
    assert row.id == claim.outbox_id
    ctx = await run.run_context(enrollment)
    assert ctx is not None and ctx.enrollment.status is EnrollmentStatus.FAILED
    history = await store.contact_history(sequence.id, ctx.contact.id)
    assert history["enrollments"][0]["end_reason"] == reason
    assert history["messages"][0]["detail"] == reason
    assert history["messages"][0]["attempts"] == 0
    # The ledger still refuses the step: failed is resolved, not retried.
    assert await run.claim_send(enrollment, steps[0].id, "sales", "<m2@example.com>", "s", T0 + 2) is Refused.IN_LEDGER


async def test_recovery_reads_and_resolutions(store: FullStore, sink: RecordingSink) -> None:
    run: RunStore = store
    sequence, steps = await active_sequence(store, steps=2, auto_complete=False)
    kept = await enroll_one(store, sequence.id, "a@example.org")
    released = await enroll_one(store, sequence.id, "b@example.org")
    resolved = await enroll_one(store, sequence.id, "c@example.org")
    claims = {}
    for enrollment in (kept, released, resolved):
        claim = await run.claim_send(enrollment, steps[0].id, "sales", f"<{enrollment}@example.com>", "s", T0)
        assert isinstance(claim, Claim)
        claims[enrollment] = claim
    sending = await run.outbox_in_state("sending")
    assert [(r.enrollment_id, r.step_id, r.mailbox_id, r.message_id, r.status, r.attempted_at) for r in sending] == [
        (e, steps[0].id, "sales", f"<{e}@example.com>", "sending", T0) for e in (kept, released, resolved)]
    assert await store.count_outbox("sending") == 3
    # Found not delivered: released, due again under the same Message-ID.
    await run.release_claim(claims[released].outbox_id, released, T0 + 10, T0 + 10, "not delivered before a crash")
    again = await run.claim_send(released, steps[0].id, "sales", "<new@example.com>", "s", T0 + 10)
    assert isinstance(again, Claim) and again.message_id == f"<{released}@example.com>"
    # Unknown: uncertain, never resent by default; the contact moves on.
    sink.clear()
    await run.record_uncertain(claims[kept].outbox_id, kept, steps[0].id, steps[1].ord, T0 + 11, T0 + 500,
                               "interrupted by a crash; not resent", T0 + 11)
    assert sink.kinds() == [EventKind.UNCERTAIN]
    assert await run.claim_send(kept, steps[0].id, "sales", "<x@example.com>", "s", T0 + 12) is Refused.IN_LEDGER
    await run.resolve_outbox(claims[resolved].outbox_id, "uncertain", "step since deleted", T0 + 13)
    assert {r.id for r in await run.outbox_in_state("uncertain")} == {claims[kept].outbox_id, claims[resolved].outbox_id}
    ctx = await run.run_context(kept)
    assert ctx is not None and ctx.thread == [(f"<{kept}@example.com>", "s")]  # uncertain threads like sent


@pytest.mark.parametrize("status,kind", [
    (EnrollmentStatus.COMPLETED, EventKind.COMPLETED),
    (EnrollmentStatus.REPLIED, EventKind.REPLIED),
    (EnrollmentStatus.BOUNCED, EventKind.BOUNCED),
    (EnrollmentStatus.UNSUBSCRIBED, EventKind.UNSUBSCRIBED),
    (EnrollmentStatus.CANCELLED, EventKind.CANCELLED),
    (EnrollmentStatus.FAILED, EventKind.FAILED),
])
async def test_finish_writes_the_event_of_its_end_status(
        store: FullStore, sink: RecordingSink, status: EnrollmentStatus, kind: EventKind) -> None:
    run: RunStore = store
    sequence, _ = await active_sequence(store, auto_complete=False)
    enrollment = await enroll_one(store, sequence.id)
    sink.clear()
    assert await run.finish(enrollment, status, "why", T0 + 1) is None
    assert sink.kinds() == [kind]
    assert (sink.events[0].enrollment_id, sink.events[0].sequence_id) == (enrollment, sequence.id)
    sink.clear()
    assert await run.finish(enrollment, EnrollmentStatus.CANCELLED, "again", T0 + 2) is None  # ended: no-op
    assert sink.events == []


async def test_auto_complete_when_the_last_active_contact_finishes(store: FullStore, sink: RecordingSink) -> None:
    run: RunStore = store
    sequence, steps = await active_sequence(store, auto_complete=True)
    first = await enroll_one(store, sequence.id, "a@example.org")
    second = await enroll_one(store, sequence.id, "b@example.org")
    assert await run.finish(first, EnrollmentStatus.REPLIED, None, T0 + 1) is None  # one still active
    claim = await run.claim_send(second, steps[0].id, "sales", "<m@example.com>", "s", T0 + 2)
    assert isinstance(claim, Claim)
    sink.clear()
    assert await run.record_sent(claim, second, steps[0].id, steps[0].ord + 1, T0 + 2, None, T0 + 2) == sequence.id
    assert sink.kinds() == [EventKind.SENT, EventKind.COMPLETED, EventKind.SEQUENCE_COMPLETED]
    assert sink.events[-1].sequence_id == sequence.id
    completed, _ = await run.get_sequence(sequence.id)
    assert completed.status is SequenceStatus.COMPLETED


async def test_no_auto_complete_without_the_setting(store: FullStore) -> None:
    run: RunStore = store
    sequence, _ = await active_sequence(store, auto_complete=False)
    enrollment = await enroll_one(store, sequence.id)
    assert await run.finish(enrollment, EnrollmentStatus.COMPLETED, None, T0 + 1) is None
    assert (await run.get_sequence(sequence.id))[0].status is SequenceStatus.ACTIVE


async def test_mailbox_pause_and_resume_are_kept_and_written_once(store: FullStore, sink: RecordingSink) -> None:
    run: RunStore = store
    await run.set_mailbox_paused("sales", "auto-paused: bounces", T0)
    await run.set_mailbox_paused("sales", "auto-paused: bounces", T0 + 1)  # no change, no event
    assert await run.mailbox_paused("sales") == "auto-paused: bounces"
    await run.set_mailbox_paused("sales", None, T0 + 2)
    await run.set_mailbox_paused("sales", None, T0 + 3)
    assert await run.mailbox_paused("sales") is None
    assert sink.kinds() == [EventKind.MAILBOX_PAUSED, EventKind.MAILBOX_RESUMED]
    assert all(event.mailbox_id == "sales" for event in sink.events)
