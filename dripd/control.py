"""Operations that change what is scheduled: the store changes, then the scheduler learns.

The API and dripctl reach the core only through here, so every rule about telling the
scheduler (a start, a resume, a new enrollment) lives in one place. Writes that do not touch
scheduling (contacts, lists) come through here too, so the API never writes the store itself.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

from dripd import policy
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
        # Round-robin position per rotating sequence, so ties spread across calls too (in memory:
        # after a restart the rotation starts over at the first mailbox, which only moves ties).
        self._turns: dict[int, int] = {}

    def check_mailbox(self, mailbox_id: str, field: str = "mailboxId") -> None:
        config = self.config.current
        if config.mailbox(mailbox_id) is None:
            known = ", ".join(m.id for m in config.mailboxes)
            raise ValidationError(field, f"unknown mailbox {mailbox_id!r} (configured: {known})")

    # -- sequences ---------------------------------------------------------------------------

    def check_pool(self, settings: SequenceSettings) -> None:
        if not settings.mailbox_ids:
            self.check_mailbox(settings.mailbox_id)
        for index, mailbox_id in enumerate(settings.mailbox_ids):
            self.check_mailbox(mailbox_id, f"mailboxIds[{index}]")

    async def create_sequence(self, settings: SequenceSettings, steps: list[Step]) -> Sequence:
        self.check_pool(settings)
        check_settings(settings)
        return await self.store.create_sequence(settings, steps, self.clock.now())

    async def update_sequence(self, sequence_id: int, changes: Mapping[str, Any]) -> Sequence:
        sequence, _ = await self.store.get_sequence(sequence_id)
        if "mailbox_id" in changes and "mailbox_ids" not in changes:
            changes = {**changes, "mailbox_ids": ()}  # a new mailboxId alone ends a rotation pool
        settings = sequence.settings.replace(**changes)
        if settings.pool != sequence.settings.pool:
            self.check_pool(settings)
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
            for mailbox_id in sequence.settings.pool:
                self.scheduler.invalidate(mailbox_id)
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
        mailboxes = await self._rotation(sequence_id, len(contacts))
        result = await self.store.enroll(sequence_id, contacts, merge_fields, self.clock.now(), strict=strict,
                                         mailboxes=mailboxes)
        if result.enrolled:
            await self._wake_sequence(sequence_id)
        return result

    async def bulk_enroll(
        self, sequence_id: int, rows: list[tuple[int, ContactInput, Mapping[str, str]]], *, strict: bool,
    ) -> BulkResult:
        mailboxes = await self._rotation(sequence_id, len(rows))
        result = await self.store.bulk_enroll(sequence_id, rows, self.clock.now(), strict=strict, mailboxes=mailboxes)
        if result.enrolled:
            await self._wake_sequence(sequence_id)
        return result

    async def _rotation(self, sequence_id: int, count: int) -> list[str] | None:
        """Each new contact's mailbox when the sequence rotates over a pool (policy decides;
        this reads today's capacity off the lanes' limiters), else None."""
        sequence, _ = await self.store.get_sequence(sequence_id)
        pool = sequence.settings.pool
        if len(pool) < 2:
            return None
        now = self.clock.now()
        waiting = await self.store.first_emails_waiting(sequence_id)
        capacity: dict[str, int] = {}
        for mailbox_id in pool:
            lane = self.scheduler.lanes.get(mailbox_id)
            if lane is not None and lane.paused_reason is None:
                capacity[mailbox_id] = (lane.limiter.daily_cap_on(now) - lane.limiter.sends_today(now)
                                        - waiting.get(mailbox_id, 0))
        turn = self._turns.get(sequence_id, 0)
        self._turns[sequence_id] = turn + count
        return policy.assign_mailboxes(pool, capacity, count, turn)

    async def cancel_enrollment(self, sequence_id: int, contact_id: int) -> None:
        # The engine re-checks the status when the enrollment comes due: no scheduler call.
        await self.store.cancel_enrollment(sequence_id, contact_id, self.clock.now())

    async def _wake_sequence(self, sequence_id: int) -> None:
        sequence, _ = await self.store.get_sequence(sequence_id)
        if sequence.status is SequenceStatus.ACTIVE:
            for mailbox_id in sequence.settings.pool:
                self.scheduler.invalidate(mailbox_id)

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
        if lane is not None:
            lane.paused_reason = reason
        await self.store.set_mailbox_paused(mailbox_id, reason, self.clock.now())
        if lane is not None:
            lane.nudge()

    async def resume_mailbox(self, mailbox_id: str) -> None:
        """An operator's answer to an automatic pause (bounce rate, refused sender)."""
        lane = self._lane(mailbox_id)
        if lane is not None:
            lane.paused_reason = None
        await self.store.set_mailbox_paused(mailbox_id, None, self.clock.now())
        if lane is not None:
            lane.invalidate()

    def _lane(self, mailbox_id: str) -> Lane | None:
        """The mailbox's lane on this node; None when another node of a cluster runs it (the
        stored pause reaches that node's lane at its next poll)."""
        if self.config.current.mailbox(mailbox_id) is None:
            raise NotFound(f"no mailbox {mailbox_id!r} in the configuration", details={"mailboxId": mailbox_id})
        return self.scheduler.lanes.get(mailbox_id)

    # -- suppression list ----------------------------------------------------------------------

    async def suppress(self, email: str, reason: str, detail: str | None) -> None:
        """Never mail this address again; its active enrollments end (as unsubscribed or bounced)."""
        await self.store.suppress(email, reason, detail, self.clock.now())

    async def unsuppress(self, email: str) -> None:
        if not await self.store.unsuppress(email):
            raise NotFound(f"{email} is not suppressed", details={"email": email})
