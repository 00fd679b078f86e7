"""Applies what detectors saw (replies, auto-replies, bounces, complaints) to enrollments.

Detectors speak of messages and addresses only; this room maps them to the enrollments they
concern, through the Message-IDs dripd sent, or through the sender's address as a fallback.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo

from dripd.clock import Clock
from dripd.config import Config
from dripd.hookspecs import EventKind, MailEvent
from dripd.metrics import Metrics
from dripd.model import Action, EnrollmentStatus, SequenceStatus
from dripd.scheduler import Scheduler
from dripd.store import SentRef, Store

log = logging.getLogger("dripd.reactions")

# A reply from one of these says nothing about a company: never stop a whole "domain" for it.
FREEMAIL = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com",
    "icloud.com", "me.com", "mac.com", "aol.com", "gmx.de", "gmx.net", "web.de", "proton.me",
    "protonmail.com", "yandex.ru", "mail.ru", "qq.com", "163.com", "fastmail.com", "zoho.com",
})
BOUNCE_WINDOW_SENDS = 50
BOUNCE_MIN_SENDS = 20  # a rate over fewer sends says little; the best SaaS tools wait for 20


class Reactions:
    def __init__(self, config: Config, store: Store, scheduler: Scheduler, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.scheduler = scheduler
        self.clock = clock
        self.metrics = Metrics()  # the daemon shares the engine's

    async def apply(self, event: MailEvent) -> None:
        handler = {
            EventKind.REPLIED: self._reply,
            EventKind.AUTO_REPLIED: self._auto_reply,
            EventKind.BOUNCED: self._bounce,
            EventKind.COMPLAINED: self._complaint,
            EventKind.DELIVERED: self._delivered,
        }[event.kind]
        await handler(event)

    async def _refs(self, event: MailEvent, *, active_only: bool, by_sender: bool = True) -> list[SentRef]:
        refs = await self.store.sent_by_message_ids(list(event.references))
        if not refs and by_sender and event.sender:
            refs = await self.store.latest_sent_to(event.mailbox_id, event.sender, active_only)
        seen: set[int] = set()
        unique = []
        for ref in refs:  # newest first: the message that drove the reply
            if ref.enrollment_id not in seen:
                seen.add(ref.enrollment_id)
                unique.append(ref)
        return unique

    async def _reply(self, event: MailEvent) -> None:
        now = self.clock.now()
        for ref in await self._refs(event, active_only=True):
            sequence, _ = await self.store.get_sequence(ref.sequence_id)
            stop = sequence.settings.auto_pause_on_reply
            self.metrics.event(event.mailbox_id, ref.sequence_id, ref.step_id, "replied")
            await self.store.record_signal(
                ref, "replied", now, end_as=EnrollmentStatus.REPLIED if stop else None,
                data={"from": event.sender or "", "source": event.source})
            log.info("reply to enrollment %d (step %d)%s", ref.enrollment_id, ref.step_id,
                     ": contact stopped" if stop else "")
            if stop and sequence.settings.stop_on_domain_reply and event.sender:
                domain = event.sender.rsplit("@", 1)[-1].lower()
                if domain not in FREEMAIL:
                    for enrollment_id in await self.store.active_in_sequence_at_domain(ref.sequence_id, domain):
                        await self.store.finish(enrollment_id, EnrollmentStatus.REPLIED,
                                                f"a colleague at {domain} replied", now)

    async def _auto_reply(self, event: MailEvent) -> None:
        now = self.clock.now()
        for ref in await self._refs(event, active_only=True):
            sequence, _ = await self.store.get_sequence(ref.sequence_id)
            self.metrics.event(event.mailbox_id, ref.sequence_id, ref.step_id, "auto_reply")
            await self.store.record_signal(ref, "auto_reply", now, data={
                "from": event.sender or "", "returnDate": event.return_date.isoformat() if event.return_date else None})
            if sequence.settings.on_auto_reply != "delay":
                continue
            until = self._resume_time(event.return_date, sequence.settings.timezone, now,
                                      sequence.settings.auto_reply_delay_days)
            if await self.store.delay_enrollment(ref.enrollment_id, until, now):
                self.scheduler.invalidate(event.mailbox_id)
                log.info("enrollment %d: out of office, next step not before %s", ref.enrollment_id,
                         dt.datetime.fromtimestamp(until, dt.timezone.utc).isoformat())

    @staticmethod
    def _resume_time(return_date: dt.date | None, timezone: str, now: float, delay_days: float) -> float:
        """Out of office is a pause: resume on the stated return date, else after a delay."""
        if return_date is not None:
            local = dt.datetime.combine(return_date, dt.time(0, 0), zoneinfo.ZoneInfo(timezone))
            if local.timestamp() > now:
                return local.timestamp()
        return now + delay_days * 86400

    async def _bounce(self, event: MailEvent) -> None:
        now = self.clock.now()
        hard = event.bounce_class != "soft"
        refs = await self._refs(event, active_only=False, by_sender=False)
        recipients = {r.lower() for r in event.recipients}
        if not refs:
            for address in recipients:
                refs += await self.store.latest_sent_to(event.mailbox_id, address, False)
        elif recipients:
            refs = [r for r in refs if r.contact_email in recipients] or refs
        data = {"class": "hard" if hard else "soft", "status": event.status, "detail": event.detail}
        sequences: set[int] = set()
        for ref in refs:
            await self.store.record_signal(ref, "bounced", now, end_as=EnrollmentStatus.BOUNCED, data=data)
            self.metrics.event(event.mailbox_id, ref.sequence_id, ref.step_id, "bounced")
            sequences.add(ref.sequence_id)
            if hard:
                await self.store.suppress(ref.contact_email, "bounced", event.detail, now, EnrollmentStatus.BOUNCED)
            log.info("%s bounce for %s (enrollment %d): %s", data["class"], ref.contact_email, ref.enrollment_id,
                     event.status or event.detail)
        for sequence_id in sequences:
            await self.check_bounce_rate(sequence_id)

    async def check_bounce_rate(self, sequence_id: int) -> None:
        """Protect the sender: pause a sequence whose recent hard-bounce rate is too high."""
        sequence, _ = await self.store.get_sequence(sequence_id)
        if sequence.status is not SequenceStatus.ACTIVE:
            return
        bounced, sends = await self.store.hard_bounce_rate(sequence_id, BOUNCE_WINDOW_SENDS)
        threshold = sequence.settings.bounce_pause_threshold
        if sends >= BOUNCE_MIN_SENDS and bounced / sends > threshold:
            reason = (f"auto-paused: {bounced} hard bounces in the last {sends} sends "
                      f"({bounced / sends:.1%} > {threshold:.1%})")
            await self.store.transition_sequence(sequence_id, Action.PAUSE, self.clock.now(), reason)
            log.error("sequence %d %s", sequence_id, reason)

    async def _complaint(self, event: MailEvent) -> None:
        now = self.clock.now()
        addresses = {r.lower() for r in event.recipients}
        for ref in await self._refs(event, active_only=False, by_sender=False):
            addresses.add(ref.contact_email)
            await self.store.record_signal(ref, "complaint", now, data={"detail": event.detail})
            self.metrics.event(event.mailbox_id, ref.sequence_id, ref.step_id, "complaint")
        for address in addresses:
            # A spam complaint is the strongest opt-out there is: suppress everywhere.
            await self.store.suppress(address, "complaint", event.detail, now, EnrollmentStatus.UNSUBSCRIBED)
            log.warning("spam complaint from %s: unsubscribed and suppressed", address)

    async def _delivered(self, event: MailEvent) -> None:
        now = self.clock.now()
        for ref in await self._refs(event, active_only=False, by_sender=False):
            await self.store.record_signal(ref, "delivered", now, data={"status": event.status})
            self.metrics.event(event.mailbox_id, ref.sequence_id, ref.step_id, "delivered")
