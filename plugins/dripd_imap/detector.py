"""The IMAP detector: watch a mailbox's folders and turn each new message into a MailEvent.

Per folder: one connection, EXAMINE (read-only), catch up on every UID above the last one
processed, then IDLE (re-issued before servers drop it) or poll when the server has no IDLE.
UIDVALIDITY and the last processed UID are kept in the plugin's durable state after each
message, so a disconnect or a restart neither misses a message nor handles one twice (at most
the one message in flight at a crash is seen again, and reactions to it are idempotent).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import trio

from dripd.hookspecs import Emit, EventKind, MailboxSettings, MailEvent, PluginContext
from dripd_imap.classify import Classification, Kind, classify
from dripd_imap.config import ImapConfig
from dripd_mailconn.credentials import Credentials
from dripd_imap.reply_message import received_message
from dripd_mailconn.session import NETWORK_FAULTS, ImapLoginRefused, ImapSession

log = logging.getLogger("dripd.imap")


def event_of(result: Classification, mailbox_id: str, at: float, source: str) -> MailEvent | None:
    """The event one classified message means (None: nothing dripd acts on)."""
    original = (result.original_message_id,) if result.original_message_id else ()
    if result.kind is Kind.MESSAGE:
        return MailEvent(EventKind.REPLIED, mailbox_id, at, sender=result.sender, references=result.references,
                         detail=result.subject, source=source)
    if result.kind is Kind.AUTO_REPLY:
        return MailEvent(EventKind.AUTO_REPLIED, mailbox_id, at, sender=result.sender, references=result.references,
                         return_date=result.return_date, detail=result.subject, source=source)
    if result.kind is Kind.BOUNCE:
        return MailEvent(EventKind.BOUNCED, mailbox_id, at, sender=result.sender, references=original,
                         recipients=result.failed_recipients, bounce_class=result.bounce_class or "hard",
                         status=result.status, detail=result.diagnostic, source=source)
    if result.kind is Kind.COMPLAINT:
        return MailEvent(EventKind.COMPLAINED, mailbox_id, at, sender=result.sender, references=original,
                         recipients=result.failed_recipients, detail=result.diagnostic, source=source)
    if result.kind is Kind.DELIVERED:
        return MailEvent(EventKind.DELIVERED, mailbox_id, at, sender=result.sender, references=original,
                         recipients=result.failed_recipients, status=result.status, source=source)
    return None


class ImapDetector:
    def __init__(self, mailbox: MailboxSettings, config: ImapConfig, context: PluginContext) -> None:
        self.mailbox_id = mailbox.id
        self.address = mailbox.address.lower()
        self.config = config
        self.context = context
        self.credentials = Credentials(config, context.now)
        self.caught_up = trio.Event()  # set once every folder has been caught up (start-up ordering, tests)
        self._caught_up: set[str] = set()

    async def run(self, emit: Emit) -> None:
        async with trio.open_nursery() as nursery:
            for folder in self.config.folders:
                nursery.start_soon(self._watch, folder, emit)

    async def _watch(self, folder: str, emit: Emit) -> None:
        """Keep one folder watched for ever: reconnect with exponential backoff after faults."""
        delay = 1.0
        while True:
            session: ImapSession | None = None
            try:
                session = await ImapSession.open(self.config, self.credentials)
                delay = 1.0  # connected: the next fault starts the backoff again
                await self._follow(session, folder, emit)
            except NETWORK_FAULTS as exc:
                if isinstance(exc, ImapLoginRefused) and self.config.auth == "xoauth2":
                    self.credentials.invalidate()  # the token was revoked or expired early: ask for a new one
                log.warning("mailbox %s: IMAP %s: %s: %s; reconnecting in %.0fs", self.mailbox_id, folder,
                            type(exc).__name__, exc or "connection failed", delay)
            finally:
                if session is not None:
                    await session.close()
            await trio.sleep(delay)
            delay = min(delay * 2, self.config.max_backoff_seconds)

    async def _follow(self, session: ImapSession, folder: str, emit: Emit) -> None:
        info = await session.examine(folder)
        last_uid = await self._start_uid(session, folder, info.uidvalidity, info.uidnext)
        while True:
            last_uid = await self._catch_up(session, folder, info.uidvalidity, last_uid, emit)
            self._caught_up.add(folder)
            if self._caught_up >= set(self.config.folders):
                self.caught_up.set()
            if session.has_idle:
                await session.wait_for_news(self.config.idle_seconds)
            else:
                await trio.sleep(self.config.poll_seconds)
                await session.noop()

    async def _start_uid(self, session: ImapSession, folder: str, uidvalidity: int, uidnext: int | None) -> int:
        """Where to resume: the stored last UID, or a fresh baseline when there is none to trust."""
        state = self.context.state
        stored_validity = await state.get(f"{folder}:uidvalidity")
        stored_uid = await state.get(f"{folder}:last_uid")
        if stored_validity == str(uidvalidity) and stored_uid is not None:
            return int(stored_uid)
        if stored_validity is None:
            # First watch of this folder: its history is not ours to act on; start at the end.
            baseline = (uidnext - 1) if uidnext else max((await session.uids_after(0)) or [0])
            log.info("mailbox %s: watching IMAP %s from UID %d on", self.mailbox_id, folder, baseline)
        else:
            # The folder was rebuilt (UIDVALIDITY changed): old UIDs mean nothing now. Look again at
            # everything since the last message processed; reacting to one twice is harmless.
            seen_at = float(await state.get(f"{folder}:seen_at") or self.context.now())
            day = dt.datetime.fromtimestamp(seen_at - 86400, dt.timezone.utc).strftime("%d-%b-%Y")
            since = await session.uids_since(day)
            baseline = (since[0] - 1) if since else ((uidnext - 1) if uidnext else 0)
            log.warning("mailbox %s: IMAP %s UIDVALIDITY changed (%s -> %d); rescanning since %s",
                        self.mailbox_id, folder, stored_validity, uidvalidity, day)
        await state.set(f"{folder}:uidvalidity", str(uidvalidity))
        await state.set(f"{folder}:last_uid", str(baseline))
        return baseline

    async def _catch_up(self, session: ImapSession, folder: str, uidvalidity: int, last_uid: int, emit: Emit) -> int:
        for uid in await session.uids_after(last_uid):
            raw = await session.fetch(uid)
            if raw is not None:
                await self._handle(raw, f"{folder}/{uidvalidity}/{uid}", emit)
            # After the event is applied: a crash in between sees this one message again.
            await self.context.state.set(f"{folder}:last_uid", str(uid))
            await self.context.state.set(f"{folder}:seen_at", repr(self.context.now()))
            last_uid = uid
        return last_uid

    async def _handle(self, raw: bytes, source: str, emit: Emit) -> None:
        result = classify(raw)
        if result.kind is Kind.MESSAGE and (result.sender or "").lower() == self.address:
            return  # our own message (a copy in a watched folder), not a reply
        event = event_of(result, self.mailbox_id, self.context.now(), source)
        if event is not None and event.kind in (EventKind.REPLIED, EventKind.AUTO_REPLIED):
            event = dataclasses.replace(event, message=received_message(raw))  # for the reply inbox
        if event is not None:
            log.info("mailbox %s: %s from %s (%s)", self.mailbox_id, event.kind.value, event.sender or "?", source)
            await emit(event)
