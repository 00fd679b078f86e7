"""Enrollment through the Catalog: the one refusal rule (dripd.policy) on the single and the bulk
path, which must agree; strict calls write nothing when one contact is refused."""

from __future__ import annotations

from typing import Any

import pytest

from dripd.errors import AlreadyEnrolled, Conflict, NotFound, ReadOnly, Suppressed
from dripd.events import EventKind
from dripd.model import Action, EnrollmentStatus, SequenceSettings, SequenceStatus
from dripd.store import Catalog, ContactInput, FullStore
from tests.contract.support import T0, RecordingSink, active_sequence, email_step, enroll_one

PATHS = ["single", "bulk"]


async def enroll_via(catalog: Catalog, path: str, sequence_id: int, emails: list[str], *, strict: bool,
                     now: float = T0 + 10) -> tuple[int, list[dict[str, Any]]]:
    """(how many enrolled, skipped rows as {"email", "reason"}) through one path."""
    contacts = [ContactInput(email) for email in emails]
    if path == "single":
        single = await catalog.enroll(sequence_id, list(contacts), None, now, strict=strict)
        return len(single.enrolled), [{"email": s["email"], "reason": s["reason"]} for s in single.skipped]
    bulk = await catalog.bulk_enroll(sequence_id, [(i, c, {}) for i, c in enumerate(contacts)], now, strict=strict)
    return bulk.enrolled, [{"email": s["email"], "reason": s["reason"]} for s in bulk.skipped]


async def prepared(store: FullStore) -> int:
    """A sequence where each address stands for one refusal (or none)."""
    sequence, _ = await active_sequence(store, auto_complete=False)
    active = await enroll_one(store, sequence.id, "active@example.org")
    assert active
    replied = await enroll_one(store, sequence.id, "replied@example.org")
    await store.finish(replied, EnrollmentStatus.REPLIED, None, T0 + 1)
    failed = await enroll_one(store, sequence.id, "failed@example.org")
    await store.finish(failed, EnrollmentStatus.FAILED, "could not build", T0 + 1)
    cancelled = await enroll_one(store, sequence.id, "cancelled@example.org")
    await store.finish(cancelled, EnrollmentStatus.CANCELLED, None, T0 + 1)
    await store.suppress("optout@example.org", "unsubscribed", None, T0 + 2)
    return sequence.id


EXPECTED = [
    {"email": "active@example.org", "reason": "already_enrolled"},
    {"email": "replied@example.org", "reason": "conflict"},
    {"email": "failed@example.org", "reason": "conflict"},
    {"email": "optout@example.org", "reason": "suppressed"},
]


@pytest.mark.parametrize("path", PATHS)
async def test_refusals_are_the_same_on_both_paths(store: FullStore, sink: RecordingSink, path: str) -> None:
    catalog: Catalog = store
    sequence_id = await prepared(store)
    sink.clear()
    emails = ["active@example.org", "replied@example.org", "cancelled@example.org", "failed@example.org",
              "optout@example.org", "new@example.org"]
    enrolled, skipped = await enroll_via(catalog, path, sequence_id, emails, strict=False)
    assert enrolled == 2  # cancelled may come back; new is new
    assert skipped == EXPECTED
    assert [e.kind for e in sink.events] == [EventKind.ENROLLED, EventKind.ENROLLED]
    progress = {p.email: p.status for p in await catalog.sequence_contacts(sequence_id) if p.status == "active"}
    assert set(progress) == {"active@example.org", "cancelled@example.org", "new@example.org"}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("email,error", [
    ("active@example.org", AlreadyEnrolled),
    ("replied@example.org", Conflict),
    ("optout@example.org", Suppressed),
])
async def test_a_strict_call_refuses_whole_with_the_rules_error(
        store: FullStore, sink: RecordingSink, path: str, email: str, error: type[Conflict]) -> None:
    catalog: Catalog = store
    sequence_id = await prepared(store)
    before = await catalog.sequence_contacts(sequence_id)
    sink.clear()
    with pytest.raises(error) as raised:
        await enroll_via(catalog, path, sequence_id, ["new@example.org", email], strict=True)
    assert type(raised.value) is error and email in raised.value.message
    assert await catalog.sequence_contacts(sequence_id) == before  # nothing half-written
    assert sink.events == []  # the rolled-back enrollment of new@ was never published


@pytest.mark.parametrize("path", PATHS)
async def test_a_completed_sequence_refuses_every_contact(store: FullStore, path: str) -> None:
    catalog: Catalog = store
    sequence, _ = await active_sequence(store, auto_complete=False)
    await catalog.transition_sequence(sequence.id, Action.COMPLETE, T0 + 1)
    for strict in (True, False):
        with pytest.raises(ReadOnly):
            await enroll_via(catalog, path, sequence.id, ["new@example.org"], strict=strict)


@pytest.mark.parametrize("path", PATHS)
async def test_a_draft_sequence_holds_new_enrollments_until_started(store: FullStore, path: str) -> None:
    catalog: Catalog = store
    draft = await catalog.create_sequence(SequenceSettings(name="d", mailbox_id="sales"), [email_step()], T0)
    assert await enroll_via(catalog, path, draft.id, ["a@example.org"], strict=True) == (1, [])
    assert await store.due_for_mailbox("sales", (0.0, 0), T0 + 1000, 10) == []
    started = await catalog.transition_sequence(draft.id, Action.START, T0 + 20)
    assert started.status is SequenceStatus.ACTIVE
    [due] = await store.due_for_mailbox("sales", (0.0, 0), T0 + 1000, 10)
    assert due.next_run_at == T0 + 20


async def test_bulk_keeps_existing_contacts_data_and_stores_merge_fields(store: FullStore) -> None:
    catalog: Catalog = store
    sequence, _ = await active_sequence(store)
    existing = await catalog.create_contact(ContactInput("old@example.org", first_name="Old"), T0)
    result = await catalog.bulk_enroll(sequence.id, [
        (0, ContactInput("old@example.org", first_name="New"), {"topic": "a"}),
        (1, ContactInput("fresh@example.org", first_name="Fresh", fields={"city": "Oslo"}), {}),
    ], T0 + 1, strict=True)
    assert (result.enrolled, result.skipped) == (2, [])
    assert (await catalog.get_contact(existing.id)).first_name == "Old"
    fresh = await catalog.find_contact("fresh@example.org")
    assert fresh is not None and fresh.fields == {"city": "Oslo"}
    latest = await catalog.latest_enrollment(sequence.id, existing.id)
    assert latest is not None
    ctx = await catalog.run_context(latest)
    assert ctx is not None and ctx.enrollment.merge_fields == {"topic": "a"}


async def test_cancel_enrollment_and_not_found(store: FullStore, sink: RecordingSink) -> None:
    catalog: Catalog = store
    sequence, _ = await active_sequence(store, auto_complete=False)
    enrollment = await enroll_one(store, sequence.id)
    contact = await catalog.find_contact("ada@example.org")
    assert contact is not None
    sink.clear()
    assert await catalog.cancel_enrollment(sequence.id, contact.id, T0 + 1) is None
    assert [(e.kind, e.enrollment_id) for e in sink.events] == [(EventKind.CANCELLED, enrollment)]
    with pytest.raises(NotFound):
        await catalog.cancel_enrollment(sequence.id, contact.id, T0 + 2)
