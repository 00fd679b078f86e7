"""Operations that change what is scheduled: the store changes, then the scheduler learns.

The API and dripctl reach the core only through here, so every rule about telling the
scheduler (a start, a resume, a new enrollment) lives in one place. Writes that do not touch
scheduling (contacts, lists) come through here too, so the API never writes the store itself.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

from dripd.clock import Clock
from dripd.config import LiveConfig
from dripd.errors import NotFound, ValidationError
from dripd.model import Action, Contact, Sequence, SequenceSettings, SequenceStatus, Step
from dripd.scheduler import Lane, Scheduler
from dripd.store.api import BulkResult, Catalog, ContactInput, EnrollResult, RunStore, Signals


def check_settings(settings: SequenceSettings) -> None:
    """Window rules live in SendWindow; building one names the field that breaks them."""
    settings.window()


class ControlStore(Catalog, Signals, RunStore, Protocol):
    """What the control operations change: the catalog, suppressions and mailbox pauses."""


class Control:
    def __init__(self, config: LiveConfig, store: ControlStore, scheduler: Scheduler, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.scheduler = scheduler
        self.clock = clock

    def check_mailbox(self, mailbox_id: str, field: str = "mailboxId") -> None:
        config = self.config.current
        if config.mailbox(mailbox_id) is None:
            known = ", ".join(m.id for m in config.mailboxes)
            raise ValidationError(field, f"unknown mailbox {mailbox_id!r} (configured: {known})")

    # -- sequences ---------------------------------------------------------------------------

    async def create_sequence(self, settings: SequenceSettings, steps: list[Step]) -> Sequence:
        self.check_mailbox(settings.mailbox_id)
        check_settings(settings)
        return await self.store.create_sequence(settings, steps, self.clock.now())

    async def update_sequence(self, sequence_id: int, changes: Mapping[str, Any]) -> Sequence:
        sequence, _ = await self.store.get_sequence(sequence_id)
        settings = sequence.settings.replace(**changes)
        if settings.mailbox_id != sequence.settings.mailbox_id:
            self.check_mailbox(settings.mailbox_id)
        check_settings(settings)
        updated = await self.store.update_sequence(sequence_id, settings, self.clock.now())
        # A new window or mailbox changes due times: let the lanes re-read.
        self.scheduler.invalidate()
        return updated

    async def clone_sequence(self, sequence_id: int, name: str | None) -> Sequence:
        return await self.store.clone_sequence(sequence_id, name, self.clock.now())

    async def transition(self, sequence_id: int, action: Action, reason: str | None = None) -> Sequence:
        sequence = await self.store.transition_sequence(sequence_id, action, self.clock.now(), reason)
        if sequence.status is SequenceStatus.ACTIVE:
            self.scheduler.invalidate(sequence.settings.mailbox_id)
        return sequence

    # -- steps: the engine re-plans from the live steps at each run, so edits need no nudge ---

    async def add_step(self, sequence_id: int, step: Step) -> list[Step]:
        return await self.store.add_step(sequence_id, step, self.clock.now())

    async def replace_step(self, sequence_id: int, index: int, step: Step) -> list[Step]:
        return await self.store.replace_step(sequence_id, index, step, self.clock.now())

    async def delete_step(self, sequence_id: int, index: int) -> list[Step]:
        return await self.store.delete_step(sequence_id, index, self.clock.now())

    # -- enrollment --------------------------------------------------------------------------

    async def enroll(
        self, sequence_id: int, contacts: list[ContactInput | int],
        merge_fields: list[Mapping[str, str]] | None = None, *, strict: bool = True,
    ) -> EnrollResult:
        result = await self.store.enroll(sequence_id, contacts, merge_fields, self.clock.now(), strict=strict)
        if result.enrolled:
            await self._wake_sequence(sequence_id)
        return result

    async def bulk_enroll(
        self, sequence_id: int, rows: list[tuple[int, ContactInput, Mapping[str, str]]], *, strict: bool,
    ) -> BulkResult:
        result = await self.store.bulk_enroll(sequence_id, rows, self.clock.now(), strict=strict)
        if result.enrolled:
            await self._wake_sequence(sequence_id)
        return result

    async def cancel_enrollment(self, sequence_id: int, contact_id: int) -> None:
        # The engine re-checks the status when the enrollment comes due: no scheduler call.
        await self.store.cancel_enrollment(sequence_id, contact_id, self.clock.now())

    async def _wake_sequence(self, sequence_id: int) -> None:
        sequence, _ = await self.store.get_sequence(sequence_id)
        if sequence.status is SequenceStatus.ACTIVE:
            self.scheduler.invalidate(sequence.settings.mailbox_id)

    # -- contacts and lists ------------------------------------------------------------------

    async def create_contact(self, contact: ContactInput) -> Contact:
        return await self.store.create_contact(contact, self.clock.now())

    async def update_contact(self, contact_id: int, changes: Mapping[str, Any]) -> Contact:
        return await self.store.update_contact(contact_id, changes, self.clock.now())

    async def delete_contact(self, contact_id: int) -> None:
        await self.store.delete_contact(contact_id, self.clock.now())

    async def ensure_contacts(self, contacts: list[ContactInput]) -> list[int]:
        return await self.store.ensure_contacts(contacts, self.clock.now())

    async def create_list(self, name: str, members: list[int]) -> int:
        list_id = await self.store.create_list(name, self.clock.now())
        if members:
            await self.store.change_list(list_id, members, [])
        return list_id

    async def change_list(self, list_id: int, add: list[int], remove: list[int]) -> None:
        await self.store.change_list(list_id, add, remove)

    async def delete_list(self, list_id: int) -> None:
        await self.store.delete_list(list_id)

    # -- mailboxes ---------------------------------------------------------------------------

    async def pause_mailbox(self, mailbox_id: str, reason: str) -> None:
        lane = self._lane(mailbox_id)
        lane.paused_reason = reason
        await self.store.set_mailbox_paused(mailbox_id, reason, self.clock.now())
        lane.nudge()

    async def resume_mailbox(self, mailbox_id: str) -> None:
        """An operator's answer to an automatic pause (bounce rate, refused sender)."""
        lane = self._lane(mailbox_id)
        lane.paused_reason = None
        await self.store.set_mailbox_paused(mailbox_id, None, self.clock.now())
        lane.invalidate()

    def _lane(self, mailbox_id: str) -> Lane:
        lane = self.scheduler.lanes.get(mailbox_id)
        if lane is None or self.config.current.mailbox(mailbox_id) is None:
            raise NotFound(f"no mailbox {mailbox_id!r} in the configuration", details={"mailboxId": mailbox_id})
        return lane

    # -- suppression list ----------------------------------------------------------------------

    async def suppress(self, email: str, reason: str, detail: str | None) -> None:
        """Never mail this address again; its active enrollments end (as unsubscribed or bounced)."""
        await self.store.suppress(email, reason, detail, self.clock.now())

    async def unsuppress(self, email: str) -> None:
        if not await self.store.unsuppress(email):
            raise NotFound(f"{email} is not suppressed", details={"email": email})
