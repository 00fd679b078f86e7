"""The reply inbox's operations: a reply kept once per raw message, listed with filters and
pages, relabels kept, read marks, the thread an answer joins, and an answer in the contact's log."""

from __future__ import annotations

from typing import cast

import pytest

from dripd.errors import Conflict, NotFound
from dripd.events import EventKind
from dripd.inbox.records import NewReply, ReplyFilter
from dripd.inbox.service import ReplyStore
from dripd.store import FullStore
from tests.contract.support import T0, RecordingSink, active_sequence
from tests.contract.test_contract_signals import sent


def new_reply(ref_outbox: int, enrollment: int, step: int, sequence: int, uid: int | None, *,
              email: str = "ada@example.org", category: str = "interested", at: float = T0 + 10) -> NewReply:
    return NewReply(mailbox_id="sales", kind="replied", contact_email=email, sequence_id=sequence,
                    enrollment_id=enrollment, step_id=step, outbox_id=ref_outbox, from_header=f"Ada <{email}>",
                    subject="Re: Hello", date="Thu, 3 Dec 2026 10:00:00 +0000", message_id=f"<r{uid}@example.org>",
                    text="Yes, let's talk.", folder="INBOX" if uid else None, uidvalidity=7 if uid else None,
                    uid=uid, category=category, rule="en:interested", received_at=at)


async def test_keep_list_relabel_read_and_answer(store: FullStore, sink: RecordingSink) -> None:
    replies = cast(ReplyStore, store)
    sequence, steps = await active_sequence(store, auto_complete=False)
    ada, claim = await sent(store, sequence.id, "ada@example.org", "<m1@example.com>")
    bob, bob_claim = await sent(store, sequence.id, "bob@example.org", "<m2@example.com>")

    first, created = await replies.keep_reply(new_reply(claim.outbox_id, ada, steps[0].id, sequence.id, 5))
    assert created
    assert await replies.keep_reply(new_reply(claim.outbox_id, ada, steps[0].id, sequence.id, 5)) == (first, False)
    # Without a folder and UID, the Message-ID tells a message seen again.
    other, created = await replies.keep_reply(new_reply(bob_claim.outbox_id, bob, steps[0].id, sequence.id, None,
                                                        email="bob@example.org", category="other", at=T0 + 20))
    assert created
    assert (await replies.keep_reply(new_reply(bob_claim.outbox_id, bob, steps[0].id, sequence.id, None,
                                               email="bob@example.org")))[1] is False

    kept = await replies.get_reply(first)
    contact = await store.find_contact("ada@example.org")
    assert contact is not None
    assert (kept.contact_id, kept.folder, kept.uidvalidity, kept.uid, kept.labelled_by, kept.read_at) == (
        contact.id, "INBOX", 7, 5, "rules", None)
    page, total = await replies.list_replies(ReplyFilter())
    assert total == 2 and [r.id for r in page] == [other, first]  # newest first
    assert (await replies.list_replies(ReplyFilter(category="other")))[1] == 1
    assert (await replies.list_replies(ReplyFilter(since=T0 + 15)))[1] == 1
    assert (await replies.list_replies(ReplyFilter(mailbox_id="nope")))[1] == 0
    assert [r.id for r in (await replies.list_replies(ReplyFilter(limit=1, offset=1)))[0]] == [first]

    relabelled, changed = await replies.relabel_reply(first, "wrong_person", T0 + 30)
    assert changed and (relabelled.category, relabelled.labelled_by) == ("wrong_person", "person")
    assert (await replies.relabel_reply(first, "wrong_person", T0 + 31))[1] is False
    assert [(r.previous, r.category, r.at) for r in relabelled.relabels] == [("interested", "wrong_person", T0 + 30)]
    assert (await replies.mark_reply_read(first, True, T0 + 40)).read_at == T0 + 40
    assert (await replies.mark_reply_read(first, True, T0 + 50)).read_at == T0 + 40  # first read kept
    assert (await replies.list_replies(ReplyFilter(unread=True)))[1] == 1
    assert (await replies.mark_reply_read(first, False, T0 + 60)).read_at is None

    assert await replies.reply_thread(first) == ["<m1@example.com>", "<r5@example.org>"]
    answer = await replies.claim_answer(first, "<a1@example.com>", "Re: Hello", "Tuesday works.", T0 + 70)
    with pytest.raises(Conflict):
        await replies.claim_answer(first, "<a2@example.com>", "Re: Hello", "again", T0 + 71)
    sink.clear()
    await replies.record_answer(answer, "accepted", None, T0 + 72)
    [event] = sink.of(EventKind.ANSWERED)
    assert (event.enrollment_id, event.contact_id, event.mailbox_id) == (ada, contact.id, "sales")
    [stored] = (await replies.get_reply(first)).answers
    assert (stored.status, stored.message_id, stored.text) == ("accepted", "<a1@example.com>", "Tuesday works.")

    for missing in (replies.get_reply(999), replies.relabel_reply(999, "other", T0), replies.mark_reply_read(999, True, T0)):
        with pytest.raises(NotFound):
            await missing
