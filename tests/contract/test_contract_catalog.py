"""Catalog: sequences and steps (addressed by index, stored by stable id), contacts, lists."""

from __future__ import annotations

import pytest

from dripd.errors import Conflict, InvalidTransition, NotFound, ReadOnly
from dripd.events import EventKind, Reason
from dripd.model import Action, SequenceSettings, SequenceStatus
from dripd.store import Catalog, ContactInput, FullStore
from tests.contract.support import T0, RecordingSink, active_sequence, email_step, enroll_one


async def test_sequences_lifecycle(store: FullStore, sink: RecordingSink) -> None:
    catalog: Catalog = store
    settings = SequenceSettings(name="Onboarding", mailbox_id="sales", timezone="Europe/Berlin")
    created = await catalog.create_sequence(settings, [email_step("one"), email_step("two", 86400)], T0)
    assert (created.status, created.settings, created.created_at) == (SequenceStatus.DRAFT, settings, T0)
    sequence, steps = await catalog.get_sequence(created.id)
    assert [s.subject for s in steps] == ["one", "two"] and steps[1].wait_seconds == 86400
    assert await catalog.find_sequence("Onboarding") == sequence
    assert await catalog.find_sequence("nothing") is None
    assert [s.id for s in await catalog.list_sequences()] == [created.id]
    assert await catalog.list_sequences("nothing") == []
    updated = await catalog.update_sequence(created.id, settings.replace(name="Welcome"), T0 + 1)
    assert updated.settings.name == "Welcome" and updated.updated_at == T0 + 1
    with pytest.raises(NotFound):
        await catalog.get_sequence(created.id + 100)

    await catalog.transition_sequence(created.id, Action.START, T0 + 2)
    with pytest.raises(InvalidTransition):
        await catalog.transition_sequence(created.id, Action.START, T0 + 3)
    sink.clear()
    paused = await catalog.transition_sequence(created.id, Action.PAUSE, T0 + 4, "holiday")
    assert (paused.status, paused.status_reason) == (SequenceStatus.PAUSED, "holiday")
    assert [(e.kind, e.payload, e.sequence_id) for e in sink.events] == [
        (EventKind.SEQUENCE_PAUSED, Reason("holiday"), created.id)]
    await catalog.transition_sequence(created.id, Action.RESUME, T0 + 5)
    enrollment = await enroll_one(store, created.id)
    sink.clear()
    done = await catalog.transition_sequence(created.id, Action.COMPLETE, T0 + 6)
    assert done.status is SequenceStatus.COMPLETED
    assert [(e.kind, e.enrollment_id) for e in sink.events] == [
        (EventKind.CANCELLED, enrollment), (EventKind.SEQUENCE_COMPLETED, None)]
    assert sink.events[-1].payload == Reason("completed by request")
    with pytest.raises(ReadOnly):
        await catalog.update_sequence(created.id, settings, T0 + 7)
    clone = await catalog.clone_sequence(created.id, None, T0 + 8)
    assert clone.status is SequenceStatus.DRAFT and clone.settings.name == "Welcome (copy)"
    assert [s.subject for s in (await catalog.get_sequence(clone.id))[1]] == ["one", "two"]
    assert (await catalog.rollups([created.id]))[created.id] == {"cancelled": 1}
    assert await catalog.step_counts() == {created.id: 2, clone.id: 2}


async def test_a_sequence_needs_a_step_to_start(store: FullStore) -> None:
    catalog: Catalog = store
    empty = await catalog.create_sequence(SequenceSettings(name="e", mailbox_id="sales"), [], T0)
    with pytest.raises(Conflict):
        await catalog.transition_sequence(empty.id, Action.START, T0)


async def test_steps_keep_their_ids_through_edits(store: FullStore) -> None:
    catalog: Catalog = store
    sequence, steps = await active_sequence(store, steps=2)
    added = await catalog.add_step(sequence.id, email_step("three"), T0 + 1)
    assert [s.id for s in added[:2]] == [s.id for s in steps] and added[2].ord > steps[1].ord
    replaced = await catalog.replace_step(sequence.id, 0, email_step("first, edited"), T0 + 2)
    assert (replaced[0].id, replaced[0].subject) == (steps[0].id, "first, edited")
    after = await catalog.delete_step(sequence.id, 1, T0 + 3)
    assert [s.id for s in after] == [steps[0].id, added[2].id]
    with pytest.raises(NotFound):
        await catalog.delete_step(sequence.id, 5, T0 + 4)
    # The deleted step is still there for what was sent with it.
    assert [(s["id"], s["deleted"]) for s in await store.all_steps(sequence.id)] == [
        (steps[0].id, False), (steps[1].id, True), (added[2].id, False)]
    # The send path sees the edit at once.
    ctx = await store.run_context(await enroll_one(store, sequence.id))
    assert ctx is not None and [s.subject for s in ctx.steps] == ["first, edited", "three"]


async def test_contacts(store: FullStore, sink: RecordingSink) -> None:
    catalog: Catalog = store
    ada = await catalog.create_contact(ContactInput("ada@example.org", "Ada", "L", "Engines", {"city": "London"}), T0)
    assert (ada.first_name, ada.fields) == ("Ada", {"city": "London"})
    with pytest.raises(Conflict):
        await catalog.create_contact(ContactInput("ada@example.org"), T0)
    assert await catalog.get_contact(ada.id) == ada
    assert await catalog.find_contact("ada@example.org") == ada
    bob = await catalog.create_contact(ContactInput("bob_b@example.org"), T0)
    assert [c.id for c in await catalog.search_contacts("example", 10, 0)] == [ada.id, bob.id]
    assert [c.id for c in await catalog.search_contacts("_b", 10, 0)] == [bob.id]  # "_" is literal
    assert [c.id for c in await catalog.search_contacts("example", 1, 1)] == [bob.id]
    assert [c.id for c in await catalog.search_contacts("EXAMPLE", 10, 0)] == [ada.id, bob.id]  # ASCII case aside
    changed = await catalog.update_contact(ada.id, {"first_name": "Augusta", "fields": {"lang": "en"}}, T0 + 1)
    assert (changed.first_name, changed.fields) == ("Augusta", {"city": "London", "lang": "en"})
    with pytest.raises(Conflict):
        await catalog.update_contact(ada.id, {"email": "bob_b@example.org"}, T0 + 1)
    assert await catalog.ensure_contacts([ContactInput("ada@example.org"), ContactInput("cy@example.org")], T0) == [
        ada.id, bob.id + 1]
    # Deleting a contact with history cancels its enrollments and keeps an anonymised stub.
    sequence, _ = await active_sequence(store, auto_complete=False)
    enrollment = await enroll_one(store, sequence.id, "ada@example.org")
    sink.clear()
    await catalog.delete_contact(ada.id, T0 + 2)
    assert [(e.kind, e.enrollment_id) for e in sink.events] == [(EventKind.CANCELLED, enrollment)]
    assert (await catalog.get_contact(ada.id)).email.endswith("@invalid")
    await catalog.delete_contact(bob.id, T0 + 2)
    with pytest.raises(NotFound):
        await catalog.get_contact(bob.id)


async def test_lists(store: FullStore) -> None:
    catalog: Catalog = store
    ada, bob = await catalog.ensure_contacts([ContactInput("ada@example.org"), ContactInput("bob@example.org")], T0)
    list_id = await catalog.create_list("leads", T0)
    with pytest.raises(Conflict):
        await catalog.create_list("leads", T0)
    await catalog.change_list(list_id, [bob, ada, ada], [])
    name, members = await catalog.get_list(list_id)
    assert name == "leads" and [c.id for c in members] == [ada, bob]
    assert await catalog.list_ids(list_id) == [ada, bob]
    assert await catalog.find_list("leads") == list_id and await catalog.find_list("none") is None
    assert await catalog.list_lists() == [(list_id, "leads", 2)]
    await catalog.change_list(list_id, [], [ada])
    assert await catalog.list_ids(list_id) == [bob]
    with pytest.raises(NotFound):
        await catalog.change_list(list_id, [bob + 100], [])
    await catalog.delete_list(list_id)
    with pytest.raises(NotFound):
        await catalog.get_list(list_id)
    with pytest.raises(NotFound):
        await catalog.list_ids(list_id)
    assert (await catalog.get_contact(bob)).email == "bob@example.org"  # the contacts stay
