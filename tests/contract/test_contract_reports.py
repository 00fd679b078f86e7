"""Reports and PluginState: the raw facts analytics reads, counts for status and metrics."""

from __future__ import annotations

from dripd.events import Engagement, EventKind
from dripd.model import EnrollmentStatus
from dripd.store import Claim, FullStore, PluginState, Reports
from tests.contract.support import T0, active_sequence, enroll_one


async def test_message_facts_history_and_counts(store: FullStore) -> None:
    reports: Reports = store
    sequence, steps = await active_sequence(store, auto_complete=False)
    enrollment = await enroll_one(store, sequence.id)
    claim = await store.claim_send(enrollment, steps[0].id, "sales", "<m1@example.com>", "Hello", T0 + 10)
    assert isinstance(claim, Claim)
    assert await reports.count_outbox("sending") == 1
    await store.record_sent(claim, enrollment, steps[0].id, steps[0].ord + 1, T0 + 10, T0 + 500, T0 + 11)
    [ref] = await store.sent_by_message_ids(["<m1@example.com>"])
    await store.record_signal(ref, EventKind.OPENED, T0 + 20, Engagement(agent="Thunderbird"))
    [facts] = await reports.sequence_message_facts(sequence.id)
    assert (facts.outbox_id, facts.step_id, facts.status, facts.sent_at) == (claim.outbox_id, steps[0].id, "sent", T0 + 11)
    assert facts.kinds == {"sent", "opened"} and facts.flagged == frozenset()
    assert await reports.mailbox_message_facts("sales", T0, T0 + 12) == [facts]
    assert await reports.mailbox_message_facts("sales", T0 + 12, T0 + 99) == []
    assert await reports.count_outbox("sending") == 0 and await reports.count_outbox("sent") == 1
    assert await reports.queue_depth(T0 + 499) == 0 and await reports.queue_depth(T0 + 500) == 1
    contact = await store.find_contact("ada@example.org")
    assert contact is not None
    await store.finish(enrollment, EnrollmentStatus.CANCELLED, "by hand", T0 + 30)
    history = await reports.contact_history(sequence.id, contact.id)
    assert [(e["id"], e["status"], e["end_reason"], e["sent_count"]) for e in history["enrollments"]] == [
        (enrollment, "cancelled", "by hand", 1)]
    assert [(m["message_id"], m["status"], m["attempts"]) for m in history["messages"]] == [("<m1@example.com>", "sent", 1)]
    assert [e["kind"] for e in history["events"]] == ["enrolled", "sent", "opened", "cancelled"]
    assert history["events"][2]["data"] == {"agent": "Thunderbird"}
    assert await reports.contact_history(sequence.id, contact.id + 99) == {"enrollments": [], "messages": [], "events": []}
    assert await reports.rollups() == {sequence.id: {"cancelled": 1}}
    assert await reports.step_counts() == {sequence.id: 1}
    assert [s["subject"] for s in await reports.all_steps(sequence.id)] == ["step 0"]


async def test_plugin_state(store: FullStore) -> None:
    state: PluginState = store
    assert await state.plugin_state_get("imap:sales") is None
    await state.plugin_state_set("imap:sales", "1:42")
    await state.plugin_state_set("imap:sales", "1:43")
    assert await state.plugin_state_get("imap:sales") == "1:43"
