"""What the caps and the A/B auto-winner read: first emails to new contacts (the new-contact
cap, rebuilt after a restart), first emails a rotation has promised, when a mailbox was last
resumed (the bounce shield rests after it), and each variant's tally (unflagged hits only)."""

from __future__ import annotations

from dripd.events import Engagement, EventKind
from dripd.store import Claim, ContactInput, FullStore
from dripd.variants import Tally
from tests.contract.support import T0, active_sequence


async def test_first_emails_promised_and_sent(store: FullStore) -> None:
    sequence, steps = await active_sequence(store, steps=2)
    result = await store.enroll(sequence.id, [ContactInput(f"f{i}@example.org") for i in range(3)], None, T0,
                                strict=True, mailboxes=["sales", "sales", "ops"])
    first, second, third = result.enrolled
    assert await store.first_emails_waiting(sequence.id) == {"sales": 2, "ops": 1}

    claim = await store.claim_send(first, steps[0].id, "sales", "<f1@example.com>", "s", T0 + 10)
    assert isinstance(claim, Claim)
    await store.record_sent(claim, first, steps[0].id, steps[1].ord, T0 + 10, T0 + 20, T0 + 10)
    follow = await store.claim_send(first, steps[1].id, "sales", "<f2@example.com>", "s", T0 + 20)
    assert isinstance(follow, Claim)  # a follow-up: a send, but not a first email to a new contact
    assert await store.send_history("sales", T0) == [T0 + 10, T0 + 20]
    assert await store.first_email_history("sales", T0) == [T0 + 10]
    assert await store.first_email_history("sales", T0 + 11) == []
    assert await store.first_emails_waiting(sequence.id) == {"sales": 1, "ops": 1}


async def test_a_mailbox_resumed_says_when(store: FullStore) -> None:
    assert await store.mailbox_resumed_at("sales") is None
    await store.set_mailbox_paused("sales", "bounces", T0)
    assert await store.mailbox_resumed_at("sales") is None
    await store.set_mailbox_paused("sales", None, T0 + 60)
    assert await store.mailbox_resumed_at("sales") == T0 + 60
    await store.set_mailbox_paused("sales", "again", T0 + 120)  # a new pause keeps the last resume
    assert await store.mailbox_resumed_at("sales") == T0 + 60


async def test_variant_tallies_count_sent_rows_and_unflagged_hits(store: FullStore) -> None:
    sequence, steps = await active_sequence(store)
    step = steps[0].id
    result = await store.enroll(sequence.id, [ContactInput(f"v{i}@example.org") for i in range(3)], None, T0,
                                strict=True)
    refs = []
    for index, (enrollment, variant) in enumerate(zip(result.enrolled, ["A", "A", "B"])):
        claim = await store.claim_send(enrollment, step, "sales", f"<v{index}@example.com>", "s", T0, variant)
        assert isinstance(claim, Claim) and claim.variant == variant
        await store.record_sent(claim, enrollment, step, steps[0].ord + 1, T0, T0 + 86400, T0)
        [ref] = await store.sent_by_message_ids([f"<v{index}@example.com>"])
        refs.append(ref)
    await store.record_signal(refs[0], EventKind.OPENED, T0 + 1, Engagement(agent="Mail"))
    await store.record_signal(refs[0], EventKind.CLICKED, T0 + 2, Engagement(url="https://x.example", agent="Mail"))
    await store.record_signal(refs[1], EventKind.OPENED, T0 + 1, Engagement(agent="scanner", flagged=True))
    assert await store.variant_tallies(step) == {"A": Tally(2, 1, 1, 0), "B": Tally(1, 0, 0, 0)}
