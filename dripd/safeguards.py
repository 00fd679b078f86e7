"""Protects the sender: pauses a sequence or a mailbox when a bounce guard trips, and pauses a
mailbox whose server refused the sender. The guards' rules are in ``policy``; this room reads
the counts, applies the decision, and tells the scheduler.

Every hard bounce reaches ``after_hard_bounce``, whichever way it was learned: a 5xx during
the SMTP conversation (the engine) or a DSN read by a detector (reactions).
"""

from __future__ import annotations

import logging

from dripd import policy
from dripd.clock import Clock
from dripd.config import LiveConfig
from dripd.model import Action, SequenceStatus
from dripd.scheduler import Scheduler
from dripd.store.api import Catalog, RunStore, Signals

log = logging.getLogger("dripd.safeguards")

DAY = 86400.0


class Safeguards:
    def __init__(self, config: LiveConfig, catalog: Catalog, signals: Signals, runs: RunStore,
                 scheduler: Scheduler, clock: Clock) -> None:
        self._config = config
        self._catalog = catalog
        self._signals = signals
        self._runs = runs
        self._scheduler = scheduler
        self._clock = clock

    async def after_hard_bounce(self, sequence_id: int, mailbox_id: str) -> None:
        """Check the sequence's and the mailbox's guard after a hard bounce from either."""
        await self._check_sequence(sequence_id)
        await self._check_mailbox(mailbox_id)

    async def _check_sequence(self, sequence_id: int) -> None:
        sequence, _ = await self._catalog.get_sequence(sequence_id)
        if sequence.status is not SequenceStatus.ACTIVE:
            return
        guard = policy.BounceGuard(sequence.settings.bounce_pause_threshold)
        hard, sends = await self._signals.sequence_hard_bounces(sequence_id, policy.SEQUENCE_BOUNCE_WINDOW_SENDS)
        reason = guard.trips(hard, sends)
        if reason is not None:
            await self._catalog.transition_sequence(sequence_id, Action.PAUSE, self._clock.now(), reason)
            log.error("sequence %d %s", sequence_id, reason)

    async def _check_mailbox(self, mailbox_id: str) -> None:
        mailbox = self._config.current.mailbox(mailbox_id)
        if mailbox is None:
            return
        now = self._clock.now()
        resumed_at = await self._runs.mailbox_resumed_at(mailbox_id)
        if policy.shield_resting(resumed_at, now, mailbox.bounce_resume_grace_days):
            return
        hard, sends = await self._signals.mailbox_hard_bounces(mailbox_id, now - mailbox.bounce_window_days * DAY)
        reason = policy.BounceGuard(mailbox.bounce_pause_threshold, mailbox.bounce_min_sends).trips(hard, sends)
        if reason is not None:
            await self.pause_mailbox(mailbox_id, f"{reason} over {mailbox.bounce_window_days:g} days")

    async def pause_mailbox(self, mailbox_id: str, reason: str) -> None:
        """Stop every send from a mailbox (kept across restarts) until an operator resumes it."""
        lane = self._scheduler.lanes.get(mailbox_id)
        if lane is None or lane.paused_reason is not None:
            return
        lane.paused_reason = reason
        await self._runs.set_mailbox_paused(mailbox_id, reason, self._clock.now())
        log.error("mailbox %s paused: %s", mailbox_id, reason)
