"""The reply inbox in the in-process daemon (simulated time, scripted transport): what the
detector reports is kept once with its new text and category, an unsubscribe request (by the
rules or by a person's relabel) suppresses like a one-click unsubscribe, the listing filters and
pages, and an answer goes out threaded from the contact's mailbox without touching the sequence."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from pathlib import Path
from typing import Any

import pytest

from dripd.errors import NotFound, ValidationError
from dripd.events import EventKind, MailEvent, ReceivedMessage
from dripd.inbox.records import ReplyFilter
from dripd.model import Action
from tests.integration.simulated import START, daemon_with, people, sequence, sleep_until

QUOTE = "\n\nOn Mon, Dec 7, 2026 at 9:00 AM M <m@example.com> wrote:\n> one\n"


def first_emails(plugin: Any) -> dict[str, str]:
    return {m.to_address: m.message_id for _, m in plugin.transports["m"].delivered if b"Subject: One" in m.data}


def reply_event(daemon: Any, sender: str, sent_id: str, text: str, uid: int, *,
                kind: EventKind = EventKind.REPLIED, subject: str = "Re: One") -> MailEvent:
    return MailEvent(kind, "m", daemon.clock.now(), sender=sender, references=(sent_id,),
                     source=f"INBOX/7/{uid}", message=ReceivedMessage(
                         from_header=f"Person <{sender}>", subject=subject, date="Mon, 7 Dec 2026 09:30:00 +0000",
                         message_id=f"<reply-{uid}@example.org>", text=text + QUOTE))


async def test_replies_kept_categorised_acted_on_and_answered(tmp_path: Path, autojump_clock: Any) -> None:
    async with daemon_with(tmp_path) as (daemon, plugin):
        inbox = daemon.services.inbox
        seq = await sequence(daemon)
        await daemon.control.transition(seq.id, Action.START)
        await daemon.control.enroll(seq.id, people(4))
        await sleep_until(daemon, START + dt.timedelta(minutes=5))
        sent = first_emails(plugin)
        assert len(sent) == 4

        await daemon.reactions.apply(reply_event(daemon, "p000@example.org", sent["p000@example.org"],
                                                 "Sounds great, let's set up a call.", 101))
        await daemon.reactions.apply(reply_event(daemon, "p001@example.org", sent["p001@example.org"],
                                                 "Bitte entfernen Sie mich aus Ihrem Verteiler.", 102))
        await daemon.reactions.apply(reply_event(daemon, "p002@example.org", sent["p002@example.org"], "Thanks.", 103))
        await daemon.reactions.apply(reply_event(daemon, "p003@example.org", sent["p003@example.org"],
                                                 "I am out of the office until Monday.", 104,
                                                 kind=EventKind.AUTO_REPLIED, subject="Automatic reply: One"))
        # The detector sees a message again after a crash: the same reply, not a second one.
        await daemon.reactions.apply(reply_event(daemon, "p000@example.org", sent["p000@example.org"],
                                                 "Sounds great, let's set up a call.", 101))

        replies, total = await inbox.list(ReplyFilter())
        assert total == 4
        by_contact = {r.contact_email: r for r in replies}
        first = by_contact["p000@example.org"]
        assert (first.category, first.kind, first.text) == ("interested", "replied", "Sounds great, let's set up a call.")
        assert (first.folder, first.uidvalidity, first.uid) == ("INBOX", 7, 101)
        assert (first.message_id, first.subject, first.sequence_id) == ("<reply-101@example.org>", "Re: One", seq.id)
        assert by_contact["p001@example.org"].category == "unsubscribe_request"
        assert by_contact["p002@example.org"].category == "other"
        assert (by_contact["p003@example.org"].category, by_contact["p003@example.org"].kind) == (
            "out_of_office", "auto_replied")

        # An unsubscribe request is honoured like a one-click unsubscribe.
        assert await daemon.store.suppression_reason("p001@example.org") == "unsubscribed"
        history = await daemon.store.contact_history(seq.id, first.contact_id)
        replied = [e for e in history["events"] if e["kind"] == "replied"]
        assert replied and replied[0]["data"]["category"] == "interested"  # what a replied webhook carries
        p1 = by_contact["p001@example.org"]
        kinds = [e["kind"] for e in (await daemon.store.contact_history(seq.id, p1.contact_id))["events"]]
        assert "replied" in kinds and "unsubscribed" in kinds

        # A person's relabel to an unsubscribe request does the same; relabels are kept.
        p2 = by_contact["p002@example.org"]
        assert await daemon.store.suppression_reason("p002@example.org") is None
        relabelled = await inbox.relabel(p2.id, "unsubscribe_request")
        assert (relabelled.category, relabelled.labelled_by) == ("unsubscribe_request", "person")
        assert await daemon.store.suppression_reason("p002@example.org") == "unsubscribed"
        relabelled = await inbox.relabel(p2.id, "other")
        assert [(r.previous, r.category) for r in relabelled.relabels] == [
            ("other", "unsubscribe_request"), ("unsubscribe_request", "other")]
        assert await daemon.store.suppression_reason("p002@example.org") == "unsubscribed"  # never lifted by a label
        with pytest.raises(ValidationError, match="category: must be one of"):
            await inbox.relabel(p2.id, "spam")

        # Filters and paging.
        assert [r.id for r in (await inbox.list(ReplyFilter(category="interested")))[0]] == [first.id]
        assert (await inbox.list(ReplyFilter(unread=True)))[1] == 4
        await inbox.mark_read(first.id, True)
        assert (await inbox.list(ReplyFilter(unread=True)))[1] == 3
        assert (await inbox.list(ReplyFilter(unread=False)))[1] == 1
        assert (await inbox.list(ReplyFilter(sequence_id=seq.id + 1)))[1] == 0
        assert (await inbox.list(ReplyFilter(mailbox_id="m", since=daemon.clock.now() + 1)))[1] == 0
        page, total = await inbox.list(ReplyFilter(limit=3, offset=3))
        assert total == 4 and len(page) == 1

        # Answering: threaded under the reply, from the contact's mailbox, recorded in its log.
        before = len(plugin.transports["m"].delivered)
        answered = await inbox.answer(first.id, "Great - Tuesday 10:00 works.\n<b>See you</b>")
        assert [(a.status, a.subject) for a in answered.answers] == [("accepted", "Re: One")]
        _, out = plugin.transports["m"].delivered[before]
        message = email.message_from_bytes(out.data, policy=email.policy.default)
        assert message["In-Reply-To"] == "<reply-101@example.org>"
        assert message["References"].split() == [sent["p000@example.org"], "<reply-101@example.org>"]
        assert (message["Subject"], out.to_address, out.from_address) == ("Re: One", "p000@example.org", "m@example.com")
        html = message.get_body(("html",))
        assert html is not None and "&lt;b&gt;See you&lt;/b&gt;" in html.get_content()
        history = await daemon.store.contact_history(seq.id, first.contact_id)
        answers = [e for e in history["events"] if e["kind"] == "answered"]
        assert answers and answers[0]["data"]["reply_id"] == first.id
        with pytest.raises(ValidationError, match="text: must not be empty"):
            await inbox.answer(first.id, "  \n")
        with pytest.raises(NotFound):
            await inbox.answer(999999, "hello")

        # The answer is a person's message: the sequence does not go on for the replier.
        await sleep_until(daemon, START + dt.timedelta(hours=3))
        second = [m.to_address for _, m in plugin.transports["m"].delivered if b"Subject: Two" in m.data]
        assert "p000@example.org" not in second  # stopped by its reply; the answer did not restart it

        # What a deleted contact wrote goes with it.
        await daemon.control.delete_contact(first.contact_id)
        with pytest.raises(NotFound):
            await inbox.get(first.id)
