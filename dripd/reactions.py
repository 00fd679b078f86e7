"""Applies what detectors saw (replies, auto-replies, bounces, complaints) to enrollments.

Detectors speak of messages and addresses only; this room maps them to the enrollments they
concern, through the Message-IDs dripd sent, or through the sender's address as a fallback.
"""

from __future__ import annotations

import datetime as dt
import logging

from dripd import events, policy
from dripd.clock import Clock, iso
from dripd.events import EventKind, MailEvent
from dripd.inbox.categories import Verdict
from dripd.inbox.service import Inbox, verdict_of
from dripd.model import EnrollmentStatus
from dripd.safeguards import Safeguards
from dripd.scheduler import Scheduler
from dripd.steps import step_label
from dripd.store.api import Catalog, RunStore, SentRef, Signals

log = logging.getLogger("dripd.reactions")


class Reactions:
    def __init__(self, catalog: Catalog, signals: Signals, runs: RunStore, scheduler: Scheduler, clock: Clock,
                 safeguards: Safeguards, inbox: Inbox | None = None) -> None:
        self.catalog = catalog
        self.inbox = inbox
        self.store = signals
        self.runs = runs
        self.scheduler = scheduler
        self.clock = clock
        self.safeguards = safeguards

    async def apply(self, event: MailEvent) -> None:
        if event.kind is EventKind.REPLIED:
            await self._reply(event)
        elif event.kind is EventKind.AUTO_REPLIED:
            await self._auto_reply(event)
        elif event.kind is EventKind.BOUNCED:
            await self._bounce(event)
        elif event.kind is EventKind.COMPLAINED:
            await self._complaint(event)
        elif event.kind is EventKind.DELIVERED:
            await self._delivered(event)
        else:
            raise ValueError(f"a detector cannot report {event.kind.value!r}")  # MailEvent refuses it first

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

    async def _keep(self, event: MailEvent, refs: list[SentRef], verdict: Verdict) -> None:
        """The reply inbox keeps it, against an ended enrollment too (a second reply is still mail)."""
        if self.inbox is not None:
            await self.inbox.keep(event, refs or await self._refs(event, active_only=False), verdict)

    async def _reply(self, event: MailEvent) -> None:
        now = self.clock.now()
        verdict = verdict_of(event)
        category = verdict.category.value
        refs = await self._refs(event, active_only=True)
        for ref in refs:
            sequence, steps = await self.catalog.get_sequence(ref.sequence_id)
            stop = sequence.settings.auto_pause_on_reply
            await self.store.record_signal(
                ref, EventKind.REPLIED, now, events.Reply(sender=event.sender or "", source=event.source,
                                                          category=category),
                end_as=EnrollmentStatus.REPLIED if stop else None)
            log.info("reply to enrollment %d (%s)%s", ref.enrollment_id, step_label(steps, ref.step_id),
                     ": contact stopped" if stop else "")
            domain = policy.colleague_domain(event.sender, sequence.settings.stop_on_domain_reply, stop)
            if domain is not None:
                for enrollment_id in await self.store.active_in_sequence_at_domain(ref.sequence_id, domain):
                    await self.runs.finish(enrollment_id, EnrollmentStatus.REPLIED, f"a colleague at {domain} replied",
                                           now)
        await self._keep(event, refs, verdict)  # after the reply's own effects: its category may add an opt-out

    async def _auto_reply(self, event: MailEvent) -> None:
        now = self.clock.now()
        verdict = verdict_of(event)
        category = verdict.category.value
        refs = await self._refs(event, active_only=True)
        for ref in refs:
            sequence, _ = await self.catalog.get_sequence(ref.sequence_id)
            delays = sequence.settings.on_auto_reply == "delay"
            until = policy.auto_reply_resume_at(event.return_date, sequence.settings.timezone, now,
                                                sequence.settings.auto_reply_delay_days) if delays else None
            await self.store.record_signal(ref, EventKind.AUTO_REPLIED, now, events.Reply(
                sender=event.sender or "", source=event.source,
                return_date=event.return_date.isoformat() if event.return_date else None,
                resume_at=iso(until) if until is not None else None, category=category))
            if until is None:
                continue
            if await self.store.delay_enrollment(ref.enrollment_id, until, now):
                self.scheduler.invalidate(event.mailbox_id)
                log.info("enrollment %d: out of office, next step not before %s", ref.enrollment_id,
                         dt.datetime.fromtimestamp(until, dt.timezone.utc).isoformat())
        await self._keep(event, refs, verdict)

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
        bounce = events.Bounce("hard" if hard else "soft", event.detail, event.status)
        sequences: set[int] = set()
        for ref in refs:
            await self.store.record_signal(ref, EventKind.BOUNCED, now, bounce, end_as=EnrollmentStatus.BOUNCED)
            sequences.add(ref.sequence_id)
            if hard:
                await self.store.suppress(ref.contact_email, "bounced", event.detail, now)
            log.info("%s bounce for %s (enrollment %d): %s", bounce.bounce_class, ref.contact_email,
                     ref.enrollment_id, event.status or event.detail)
        if hard:
            for sequence_id in sequences:
                await self.safeguards.after_hard_bounce(sequence_id, event.mailbox_id)

    async def _complaint(self, event: MailEvent) -> None:
        now = self.clock.now()
        addresses = {r.lower() for r in event.recipients}
        for ref in await self._refs(event, active_only=False, by_sender=False):
            addresses.add(ref.contact_email)
            await self.store.record_signal(ref, EventKind.COMPLAINED, now, events.Detail(event.detail))
        for address in addresses:
            # A spam complaint is the strongest opt-out there is: suppress everywhere.
            await self.store.suppress(address, "complaint", event.detail, now)
            log.warning("spam complaint from %s: unsubscribed and suppressed", address)

    async def _delivered(self, event: MailEvent) -> None:
        now = self.clock.now()
        for ref in await self._refs(event, active_only=False, by_sender=False):
            await self.store.record_signal(ref, EventKind.DELIVERED, now, events.Detail(status=event.status))
