"""Operations that change what is scheduled: the store changes, then the scheduler learns.

The API and dripctl reach the core only through here, so every rule about telling the
scheduler (a start, a resume, a new enrollment) lives in one place.
"""

from __future__ import annotations

from typing import Any, Mapping

from dripd.clock import Clock
from dripd.config import Config
from dripd.errors import ValidationError
from dripd.model import Action, Sequence, SequenceSettings, SequenceStatus, Step
from dripd.scheduler import Scheduler
from dripd.store import ContactInput, EnrollResult, Store


class Control:
    def __init__(self, config: Config, store: Store, scheduler: Scheduler, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.scheduler = scheduler
        self.clock = clock

    def check_mailbox(self, mailbox_id: str, field: str = "mailboxId") -> None:
        if self.config.mailbox(mailbox_id) is None:
            known = ", ".join(m.id for m in self.config.mailboxes)
            raise ValidationError(field, f"unknown mailbox {mailbox_id!r} (configured: {known})")

    async def create_sequence(self, settings: SequenceSettings, steps: list[Step]) -> Sequence:
        self.check_mailbox(settings.mailbox_id)
        return await self.store.create_sequence(settings, steps, self.clock.now())

    async def update_sequence(self, sequence_id: int, changes: Mapping[str, Any]) -> Sequence:
        sequence, _ = await self.store.get_sequence(sequence_id)
        settings = sequence.settings.replace(**changes)
        if settings.mailbox_id != sequence.settings.mailbox_id:
            self.check_mailbox(settings.mailbox_id)
        updated = await self.store.update_sequence(sequence_id, settings, self.clock.now())
        # A new window or mailbox changes due times: let the lanes re-read.
        self.scheduler.invalidate()
        return updated

    async def transition(self, sequence_id: int, action: Action, reason: str | None = None) -> Sequence:
        sequence = await self.store.transition_sequence(sequence_id, action, self.clock.now(), reason)
        if sequence.status is SequenceStatus.ACTIVE:
            self.scheduler.invalidate(sequence.settings.mailbox_id)
        return sequence

    async def enroll(
        self, sequence_id: int, contacts: list[ContactInput | int],
        merge_fields: list[Mapping[str, str]] | None = None, *, strict: bool = True,
    ) -> EnrollResult:
        result = await self.store.enroll(sequence_id, contacts, merge_fields, self.clock.now(), strict=strict)
        if result.enrolled:
            sequence, _ = await self.store.get_sequence(sequence_id)
            if sequence.status is SequenceStatus.ACTIVE:
                self.scheduler.invalidate(sequence.settings.mailbox_id)
        return result
