"""The reply inbox's service: keeps each reply the detectors saw, categorised, and honours what
a category asks for, whether the rules chose it or a person relabelled the reply."""

from __future__ import annotations

import email.utils
import html
import logging
import re
from typing import Mapping, Protocol

import trio

from dripd import render
from dripd.clock import Clock
from dripd.config import LiveConfig
from dripd.errors import Conflict, ValidationError
from dripd.events import EventKind, MailEvent
from dripd.hookspecs import OutgoingMessage, SendOutcome, SendResult, Transport
from dripd.inbox.categories import Category, Verdict, categorize
from dripd.inbox.quoting import new_text
from dripd.inbox.records import NewReply, ReplyFilter, StoredReply, parse_source
from dripd.store.api import SentRef, Signals
from dripd.unsubscribe import honour_unsubscribe

log = logging.getLogger("dripd.inbox")


class ReplyStore(Signals, Protocol):
    """What the inbox reads and writes (``dripd.store.sqlite.replies``), besides the signals."""

    async def keep_reply(self, reply: NewReply) -> tuple[int, bool]: ...
    async def list_replies(self, query: ReplyFilter) -> tuple[list[StoredReply], int]: ...
    async def get_reply(self, reply_id: int) -> StoredReply: ...
    async def relabel_reply(self, reply_id: int, category: str, now: float) -> tuple[StoredReply, bool]: ...
    async def mark_reply_read(self, reply_id: int, read: bool, now: float) -> StoredReply: ...
    async def reply_thread(self, reply_id: int) -> list[str]: ...
    async def claim_answer(self, reply_id: int, message_id: str, subject: str, text: str, now: float) -> int: ...
    async def record_answer(self, answer_id: int, outcome: str, detail: str | None, now: float) -> None: ...


def verdict_of(event: MailEvent) -> Verdict:
    """The category the rules give what a detector saw (its new text, and the subject for an out-of-office)."""
    message = event.message
    text = new_text(message.text) if message else ""
    return categorize(text, auto_reply=event.kind is EventKind.AUTO_REPLIED, subject=message.subject if message else "")


def category_of(value: str) -> Category:
    """A category named by a person (API, dripctl), or a clear error naming the choices."""
    try:
        return Category(value)
    except ValueError:
        choices = ", ".join(c.value for c in Category)
        raise ValidationError("category", f"must be one of {choices}, not {value!r}") from None


# "Re:" in the languages the rules read: a subject that has one already keeps it, not "Re: AW:".
_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|rv|r|wg|tr)\s*:", re.I)
MAX_ANSWER_CHARS = 100_000


def answer_subject(subject: str) -> str:
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}".rstrip()


def answer_html(text: str) -> str:
    """The HTML part of a person's plain-text answer: every character escaped, lines kept."""
    return "<div>" + "<br>\n".join(html.escape(line) for line in text.split("\n")) + "</div>"


class Inbox:
    def __init__(self, store: ReplyStore, clock: Clock, live: LiveConfig | None = None,
                 transports: Mapping[str, Transport] | None = None) -> None:
        self.store = store
        self.clock = clock
        self.live = live
        self.transports = transports if transports is not None else {}

    async def keep(self, event: MailEvent, refs: list[SentRef], verdict: Verdict) -> StoredReply | None:
        """Keep a reply against the newest message dripd sent that it answers (None: it answers
        nothing dripd sent, so it is the user's own mail, not the inbox's). Seen again, it is
        the same reply, and its category's action is not repeated."""
        if not refs or event.kind not in (EventKind.REPLIED, EventKind.AUTO_REPLIED):
            return None
        ref = refs[0]
        message = event.message
        folder, uidvalidity, uid = parse_source(event.source)
        reply_id, created = await self.store.keep_reply(NewReply(
            mailbox_id=event.mailbox_id, kind=event.kind.value, contact_email=ref.contact_email,
            sequence_id=ref.sequence_id, enrollment_id=ref.enrollment_id, step_id=ref.step_id,
            outbox_id=ref.outbox_id, from_header=message.from_header if message else (event.sender or ""),
            subject=message.subject if message else (event.detail or ""), date=message.date if message else "",
            message_id=message.message_id if message else "", text=new_text(message.text) if message else "",
            folder=folder, uidvalidity=uidvalidity, uid=uid, category=verdict.category.value, rule=verdict.rule,
            received_at=self.clock.now()))
        if created:
            log.info("reply %d kept (enrollment %d): %s by %s", reply_id, ref.enrollment_id, verdict.category.value,
                     verdict.rule)
            await self._act(ref, verdict.category, "reply")
        return await self.store.get_reply(reply_id)

    async def relabel(self, reply_id: int, category: str) -> StoredReply:
        """A person's category; what it asks for is done as if the rules had chosen it."""
        chosen = category_of(category)
        reply, changed = await self.store.relabel_reply(reply_id, chosen.value, self.clock.now())
        if changed:
            log.info("reply %d relabelled %s", reply_id, chosen.value)
            await self._act(_ref_of(reply), chosen, "reply (relabelled)")
        return reply

    async def mark_read(self, reply_id: int, read: bool) -> StoredReply:
        return await self.store.mark_reply_read(reply_id, read, self.clock.now())

    async def list(self, query: ReplyFilter) -> tuple[list[StoredReply], int]:
        return await self.store.list_replies(query)

    async def get(self, reply_id: int) -> StoredReply:
        return await self.store.get_reply(reply_id)

    async def answer(self, reply_id: int, text: str) -> StoredReply:
        """Send a person's answer through the mailbox that wrote to the contact, threaded under
        the reply, and record it in the contact's log. It is not a step: the sequence is untouched."""
        if not text.strip():
            raise ValidationError("text", "must not be empty")
        if len(text) > MAX_ANSWER_CHARS:
            raise ValidationError("text", f"must be at most {MAX_ANSWER_CHARS} characters")
        reply = await self.store.get_reply(reply_id)
        mailbox = self.live.current.mailbox(reply.mailbox_id) if self.live is not None else None
        transport = self.transports.get(reply.mailbox_id)
        if mailbox is None or transport is None:
            raise Conflict(f"mailbox {reply.mailbox_id!r} is not configured any more: the reply cannot be answered",
                           details={"mailboxId": reply.mailbox_id})
        thread = await self.store.reply_thread(reply_id)
        now = self.clock.now()
        message_id = render.make_message_id(mailbox.message_id_domain, f"answer.{reply_id}.{render.unique_hex(8)}")
        to_address = _writer(reply)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        envelope = render.Envelope(
            from_address=mailbox.address, from_name=mailbox.name, to_address=to_address, message_id=message_id,
            date=now, in_reply_to=thread[-1] if thread else None, references=tuple(thread))
        data = render.build_message(envelope, render.Rendered(answer_subject(reply.subject), answer_html(text), text, ()))
        answer_id = await self.store.claim_answer(reply_id, message_id, answer_subject(reply.subject), text, now)
        result = await _send(transport, OutgoingMessage(mailbox.id, message_id, mailbox.address, to_address, data))
        await self.store.record_answer(answer_id, result.outcome.value, result.detail, self.clock.now())
        log.info("reply %d answered (%s)", reply_id, result.outcome.value)
        return await self.store.get_reply(reply_id)

    async def _act(self, ref: SentRef, category: Category, via: str) -> None:
        # The bulk-sender rules require honouring an opt-out however it is asked for. Relabelling
        # away from it later does not lift the suppression: that is `dripctl suppressions remove`.
        if category is Category.UNSUBSCRIBE_REQUEST:
            await honour_unsubscribe(self.store, ref, via, self.clock.now())


async def _send(transport: Transport, message: OutgoingMessage) -> SendResult:
    try:
        return await transport.send(message)
    except trio.Cancelled:
        raise
    except Exception as exc:
        # A transport that raised may or may not have handed the message over: never guess.
        log.exception("mailbox %s: transport raised while sending answer %s", message.mailbox_id, message.message_id)
        return SendResult(SendOutcome.UNCERTAIN, f"transport error: {type(exc).__name__}: {exc}")


def _writer(reply: StoredReply) -> str:
    """Who wrote the reply (a colleague may answer for the contact); the contact when unreadable."""
    address = email.utils.parseaddr(reply.from_header)[1].strip().lower()
    return address if re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", address) else reply.contact_email


def _ref_of(reply: StoredReply) -> SentRef:
    return SentRef(reply.outbox_id, reply.enrollment_id, reply.step_id, reply.sequence_id, reply.contact_email, "")
