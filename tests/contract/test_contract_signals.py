"""Signals: finding what was sent, recording what came back, suppression ending enrollments
everywhere, delays, and the bounce counts the guards read."""

from __future__ import annotations

import pytest

from dripd.events import Bounce, Detail, Engagement, EventKind, Reason, Reply
from dripd.model import EnrollmentStatus, SequenceStatus
from dripd.policy import Bounced
from dripd.store import Claim, FullStore, SentRef, Signals
from tests.contract.support import T0, RecordingSink, active_sequence, enroll_one


async def sent(store: FullStore, sequence_id: int, email: str, message_id: str, at: float = T0,
               mailbox_id: str = "sales") -> tuple[int, Claim]:
    """An enrollment whose first step went out as ``message_id``."""
    enrollment = await enroll_one(store, sequence_id, email, at)
    _, steps = await store.get_sequence(sequence_id)
    claim = await store.claim_send(enrollment, steps[0].id, mailbox_id, message_id, "Hello", at)
    assert isinstance(claim, Claim)
    await store.record_sent(claim, enrollment, steps[0].id, steps[0].ord + 1, at, at + 86400, at)
    return enrollment, claim


async def test_finding_sent_messages(store: FullStore) -> None:
    signals: Signals = store
    sequence, steps = await active_sequence(store, steps=2, auto_complete=False)
    enrollment, claim = await sent(store, sequence.id, "ada@example.org", "<m1@example.com>")
    [ref] = await signals.sent_by_message_ids(["<m1@example.com>", "<unknown@example.com>"])
    assert ref == SentRef(claim.outbox_id, enrollment, steps[0].id, sequence.id, "ada@example.org", "active")
    assert await signals.sent_by_message_ids([]) == []
    second = await store.claim_send(enrollment, steps[1].id, "sales", "<m2@example.com>", "Re: Hello", T0 + 5)
    assert isinstance(second, Claim)
    await store.record_sent(second, enrollment, steps[1].id, steps[1].ord + 1, T0 + 5, T0 + 9, T0 + 5)
    # The newest message per enrollment: the one a reply most likely answers.
    [latest] = await signals.latest_sent_to("sales", "ada@example.org", True)
    assert (latest.outbox_id, latest.step_id) == (second.outbox_id, steps[1].id)
    assert await signals.latest_sent_to("other", "ada@example.org", False) == []
    contact = await store.find_contact("ada@example.org")
    assert contact is not None
    assert await signals.message_ids_for_contact(contact.id) == ["<m1@example.com>", "<m2@example.com>"]
    tracked = await signals.tracked_message("<m2@example.com>")
    assert tracked is not None and (tracked.outbox_id, tracked.mailbox_id, tracked.sent_at) == (
        second.outbox_id, "sales", T0 + 5)
    assert await signals.tracked_message("<unknown@example.com>") is None
    await store.finish(enrollment, EnrollmentStatus.REPLIED, None, T0 + 6)
    assert await signals.latest_sent_to("sales", "ada@example.org", True) == []
    assert len(await signals.latest_sent_to("sales", "ada@example.org", False)) == 1


async def test_record_signal_writes_the_typed_event_and_may_end_the_enrollment(
        store: FullStore, sink: RecordingSink) -> None:
    signals: Signals = store
    sequence, _ = await active_sequence(store, auto_complete=True)
    enrollment, claim = await sent(store, sequence.id, "ada@example.org", "<m1@example.com>")
    [ref] = await signals.sent_by_message_ids(["<m1@example.com>"])
    sink.clear()
    auto = Reply(sender="ada@example.org", source="INBOX/7", return_date="2027-01-04")
    assert await signals.record_signal(ref, EventKind.AUTO_REPLIED, T0 + 1, auto) is None
    reply = Reply(sender="ada@example.org", source="INBOX/8")
    assert await signals.record_signal(ref, EventKind.REPLIED, T0 + 2, reply, end_as=EnrollmentStatus.REPLIED) == sequence.id
    assert [(e.kind, e.payload, e.outbox_id, e.enrollment_id) for e in sink.events[:2]] == [
        (EventKind.AUTO_REPLIED, auto, claim.outbox_id, enrollment), (EventKind.REPLIED, reply, claim.outbox_id, enrollment)]
    assert sink.kinds()[2:] == [EventKind.SEQUENCE_COMPLETED]  # ended quietly: no second 'replied'
    ctx = await store.run_context(enrollment)
    assert ctx is not None and ctx.enrollment.status is EnrollmentStatus.REPLIED and ctx.signals.replied
    assert (await store.get_sequence(sequence.id))[0].status is SequenceStatus.COMPLETED


async def test_flagged_hits_are_kept_but_not_signals(store: FullStore, sink: RecordingSink) -> None:
    signals: Signals = store
    sequence, _ = await active_sequence(store, auto_complete=False)
    enrollment, claim = await sent(store, sequence.id, "ada@example.org", "<m1@example.com>")
    [ref] = await signals.sent_by_message_ids(["<m1@example.com>"])
    proxy = Engagement(agent="Mozilla/5.0 (via ggpht.com GoogleImageProxy)", flagged=True)
    await signals.record_signal(ref, EventKind.OPENED, T0 + 1, proxy)
    ctx = await store.run_context(enrollment)
    assert ctx is not None and not ctx.signals.opened
    assert await signals.hit_seen(claim.outbox_id, EventKind.OPENED, "googleimageproxy")
    assert not await signals.hit_seen(claim.outbox_id, EventKind.CLICKED, "googleimageproxy")
    await signals.record_signal(ref, EventKind.CLICKED, T0 + 2, Engagement(url="https://example.org/", agent="Firefox"))
    ctx = await store.run_context(enrollment)
    assert ctx is not None and ctx.signals.clicked and not ctx.signals.opened
    [facts] = await store.sequence_message_facts(sequence.id)
    assert facts.kinds == {"sent", "clicked"} and facts.flagged == {"opened"}
    assert sink.of(EventKind.OPENED)[0].payload == proxy


@pytest.mark.parametrize("reason,ended", [
    ("unsubscribed", EnrollmentStatus.UNSUBSCRIBED),
    ("complaint", EnrollmentStatus.UNSUBSCRIBED),
    ("bounced", EnrollmentStatus.BOUNCED),
])
async def test_a_suppression_ends_the_address_everywhere(
        store: FullStore, sink: RecordingSink, reason: str, ended: EnrollmentStatus) -> None:
    signals: Signals = store
    one, _ = await active_sequence(store, "one", auto_complete=False)
    two, _ = await active_sequence(store, "two", "support", auto_complete=False)
    first = await enroll_one(store, one.id, "ada@example.org")
    second = await enroll_one(store, two.id, "ada@example.org")
    other = await enroll_one(store, one.id, "bob@example.org")
    sink.clear()
    assert await signals.suppress("ada@example.org", reason, "by hand", T0 + 1) == []
    assert [(e.kind.value, e.enrollment_id) for e in sink.events] == [(ended.value, first), (ended.value, second)]
    for enrollment, status in ((first, ended), (second, ended), (other, EnrollmentStatus.ACTIVE)):
        ctx = await store.run_context(enrollment)
        assert ctx is not None and ctx.enrollment.status is status
    assert await signals.suppression_reason("ada@example.org") == reason
    assert [(s["email"], s["reason"], s["detail"]) for s in await signals.suppressions()] == [
        ("ada@example.org", reason, "by hand")]
    assert await signals.suppressions("nothing-like-this") == []
    assert await signals.unsuppress("ada@example.org")
    assert not await signals.unsuppress("ada@example.org")
    assert await signals.suppression_reason("ada@example.org") is None


async def test_a_suppression_auto_completes_the_sequences_it_empties(store: FullStore) -> None:
    sequence, _ = await active_sequence(store, auto_complete=True)
    await enroll_one(store, sequence.id, "ada@example.org")
    assert await store.suppress("ada@example.org", "unsubscribed", None, T0 + 1) == [sequence.id]


async def test_delay_and_domain_lookups(store: FullStore) -> None:
    signals: Signals = store
    sequence, _ = await active_sequence(store, auto_complete=False)
    ada = await enroll_one(store, sequence.id, "ada@acme.example")
    bob = await enroll_one(store, sequence.id, "bob@acme.example")
    await enroll_one(store, sequence.id, "cy@other.example")
    assert await signals.active_in_sequence_at_domain(sequence.id, "acme.example") == [ada, bob]
    assert await signals.active_in_sequence_at_domain(sequence.id, "ACME.Example") == [ada, bob]
    assert await signals.delay_enrollment(ada, T0 + 7 * 86400, T0 + 1)
    assert await signals.delay_enrollment(ada, T0 + 86400, T0 + 2)  # active, so accepted; an earlier date never pulls it in
    rows = {r.enrollment_id: r.next_run_at for r in await store.due_for_mailbox("sales", (0.0, 0), T0 + 30 * 86400, 10)}
    assert rows[ada] == T0 + 7 * 86400 and rows[bob] == T0
    await store.finish(bob, EnrollmentStatus.CANCELLED, None, T0 + 3)
    assert not await signals.delay_enrollment(bob, T0 + 86400, T0 + 4)


async def test_bounce_counts_for_the_guards(store: FullStore) -> None:
    signals: Signals = store
    sequence, steps = await active_sequence(store, auto_complete=False)
    other, _ = await active_sequence(store, "other", auto_complete=False)
    for i in range(6):
        await sent(store, sequence.id, f"ok{i}@example.org", f"<ok{i}@example.com>", T0 + i)
    await sent(store, other.id, "x@example.org", "<x@example.com>", T0)
    # A hard refusal during the SMTP conversation.
    refused = await enroll_one(store, sequence.id, "gone@example.org", T0 + 10)
    claim = await store.claim_send(refused, steps[0].id, "sales", "<gone@example.com>", "s", T0 + 10)
    assert isinstance(claim, Claim)
    await store.record_bounced(claim, refused, steps[0].id, Bounced("hard", "550 5.1.1"), "gone@example.org", T0 + 10)
    # A DSN bounce of a message that was accepted, then a soft one of another; a hard bounce
    # reported twice (a soft report after it never downgrades it).
    [dsn] = await signals.sent_by_message_ids(["<ok0@example.com>"])
    await signals.record_signal(dsn, EventKind.BOUNCED, T0 + 20, Bounce("hard", "user unknown", "5.1.1"),
                                end_as=EnrollmentStatus.BOUNCED)
    await signals.record_signal(dsn, EventKind.BOUNCED, T0 + 21, Bounce("soft", "mailbox full", "4.2.2"))
    [soft] = await signals.sent_by_message_ids(["<ok1@example.com>"])
    await signals.record_signal(soft, EventKind.BOUNCED, T0 + 22, Bounce("soft", "mailbox full", "4.2.2"))
    # A message that could not be built never went out; in flight and retrying rows are not sends yet.
    broken = await enroll_one(store, sequence.id, "broken@example.org", T0 + 29)
    unbuilt = await store.claim_send(broken, steps[0].id, "sales", "<broken@example.com>", "s", T0 + 29)
    assert isinstance(unbuilt, Claim)
    await store.record_unbuildable(unbuilt, broken, steps[0].id, "bad header", T0 + 29)
    waiting = await enroll_one(store, sequence.id, "later@example.org", T0 + 30)
    assert isinstance(await store.claim_send(waiting, steps[0].id, "sales", "<later@example.com>", "s", T0 + 30), Claim)

    assert await signals.sequence_hard_bounces(sequence.id, 50) == (2, 7)
    assert await signals.sequence_hard_bounces(sequence.id, 3) == (1, 3)  # the last three: ok4, ok5, gone
    assert await signals.sequence_hard_bounces(other.id, 50) == (0, 1)
    assert await signals.mailbox_hard_bounces("sales", T0) == (2, 8)
    assert await signals.mailbox_hard_bounces("sales", T0 + 5) == (1, 2)  # ok5 and gone
    assert await signals.mailbox_hard_bounces("nobody", T0) == (0, 0)


async def test_reasons_and_details_travel_in_their_payloads(store: FullStore, sink: RecordingSink) -> None:
    sequence, _ = await active_sequence(store, auto_complete=False)
    _, claim = await sent(store, sequence.id, "ada@example.org", "<m1@example.com>")
    [ref] = await store.sent_by_message_ids(["<m1@example.com>"])
    sink.clear()
    await store.record_signal(ref, EventKind.COMPLAINED, T0 + 1, Detail(detail="abuse report"))
    await store.record_signal(ref, EventKind.DELIVERED, T0 + 2, Detail(status="2.0.0"))
    await store.record_signal(ref, EventKind.UNSUBSCRIBED, T0 + 3, Reason("one-click"), end_as=EnrollmentStatus.UNSUBSCRIBED)
    assert [(e.kind, e.payload) for e in sink.events] == [
        (EventKind.COMPLAINED, Detail(detail="abuse report")), (EventKind.DELIVERED, Detail(status="2.0.0")),
        (EventKind.UNSUBSCRIBED, Reason("one-click"))]
    contact = await store.find_contact("ada@example.org")
    assert contact is not None
    history = await store.contact_history(sequence.id, contact.id)
    stored = [(e["kind"], e["data"]) for e in history["events"] if e["outbox_id"] == claim.outbox_id]
    assert stored[-3:] == [("complained", {"detail": "abuse report"}), ("delivered", {"status": "2.0.0"}),
                           ("unsubscribed", {"reason": "one-click"})]
