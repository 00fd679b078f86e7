"""The one event writer: what is stored is what is published, after the commit. (An operation
that fails publishes nothing: test_enrollment.py's strict refusals, which roll back an enrollment
already written; a whole group that fails to commit: sqlite/test_group_commit.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import trio_asyncio

from dripd.events import Bounce, Engagement, Event, EventKind, NoData, payload_json
from dripd.model import EnrollmentStatus
from dripd.store import BulkRow, Claim, ContactInput, FullStore
from tests.contract.support import T0, RecordingSink, active_sequence, enroll_one, open_backend


async def test_published_events_are_the_stored_rows(store: FullStore, sink: RecordingSink) -> None:
    sequence, steps = await active_sequence(store, auto_complete=True)
    enrollment = await enroll_one(store, sequence.id)
    claim = await store.claim_send(enrollment, steps[0].id, "sales", "<m1@example.com>", "s", T0)
    assert isinstance(claim, Claim)
    await store.record_sent(claim, enrollment, steps[0].id, steps[0].ord + 1, T0, T0 + 10, T0)
    [ref] = await store.sent_by_message_ids(["<m1@example.com>"])
    await store.record_signal(ref, EventKind.OPENED, T0 + 1, Engagement(agent="bot", flagged=True))
    await store.record_signal(ref, EventKind.BOUNCED, T0 + 2, Bounce("hard", "5.1.1 unknown", "5.1.1"),
                              end_as=EnrollmentStatus.BOUNCED)
    contact = await store.find_contact("ada@example.org")
    assert contact is not None
    stored = (await store.contact_history(sequence.id, contact.id))["events"]
    published = [e for e in sink.events if e.enrollment_id == enrollment]
    assert [e.kind for e in published] == [EventKind.ENROLLED, EventKind.SENT, EventKind.OPENED, EventKind.BOUNCED]
    assert [(e["id"], e["kind"], e["at"], e["step_id"], e["outbox_id"], bool(e["flagged"]), e["data"]) for e in stored] == [
        (e.id, e.kind.value, e.at, e.step_id, e.outbox_id, isinstance(e.payload, Engagement) and e.payload.flagged,
         payload_json(e.payload)) for e in published]
    assert all(e.id is not None for e in sink.events)
    assert [e.kind for e in sink.events][-1] is EventKind.SEQUENCE_COMPLETED  # the bounce ended the last contact


async def test_bulk_enrollment_publishes_every_enrollment(store: FullStore, sink: RecordingSink) -> None:
    sequence, _ = await active_sequence(store)
    sink.clear()
    rows: list[BulkRow] = [(i, ContactInput(f"c{i}@example.org"), {}) for i in range(250)]
    result = await store.bulk_enroll(sequence.id, rows, T0 + 1, strict=True)
    assert result.enrolled == 250
    assert len(sink.batches) == 1 and sink.kinds() == [EventKind.ENROLLED] * 250
    ids = [e.id for e in sink.events]
    assert len(set(ids)) == 250
    progress = await store.sequence_contacts(sequence.id)
    assert [e.enrollment_id for e in sink.events] == [p.enrollment_id for p in progress]
    contact = await store.find_contact("c7@example.org")
    assert contact is not None
    [stored] = (await store.contact_history(sequence.id, contact.id))["events"]
    [event] = [e for e in sink.events if e.contact_id == contact.id]
    assert (stored["id"], stored["kind"], stored["data"]) == (event.id, "enrolled", {})
    assert event.payload == NoData() and event.mailbox_id == "sales"


class FailingSink:
    def __init__(self) -> None:
        self.calls = 0

    def publish(self, events: Iterable[Event]) -> None:
        self.calls += 1
        raise RuntimeError("a consumer that breaks its promise")


async def test_a_failing_sink_does_not_undo_the_commit(backend: str, tmp_path: Path) -> None:
    sink = FailingSink()
    async with trio_asyncio.open_loop():
        store = await open_backend(backend, tmp_path, sink)
        try:
            sequence, _ = await active_sequence(store)
            assert await enroll_one(store, sequence.id)
            assert sink.calls == 1
            assert [p.email for p in await store.sequence_contacts(sequence.id)] == ["ada@example.org"]
        finally:
            await store.close()
