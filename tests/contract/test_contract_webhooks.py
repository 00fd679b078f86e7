"""The webhook outbox: endpoints from the config and the API, deliveries written with their
event (only for the kinds an endpoint wants), attempts recorded, replays, paging and counts.
(Several dispatchers sharing one PostgreSQL outbox: postgres/test_pg_concurrency.py.)"""

from __future__ import annotations

from typing import cast

from dripd.events import EventKind
from dripd.store import ContactInput, FullStore
from dripd.store.backend import Backend
from dripd.webhooks.records import DeliveryStatus, EndpointSpec
from tests.contract.support import T0, active_sequence

SECRET = "whsec_dGVzdA=="


async def test_endpoints_deliveries_attempts_and_replays(store: FullStore) -> None:
    hooks = cast(Backend, store)
    await hooks.webhook_sync_config([EndpointSpec("crm", "http://127.0.0.1:9/a", SECRET, ("enrolled",))], T0)
    api = await hooks.webhook_create(EndpointSpec("all", "http://127.0.0.1:9/b", SECRET, None), T0)
    assert api is not None and api.source == "api" and api.kinds is None
    assert await hooks.webhook_create(EndpointSpec("all", "http://127.0.0.1:9/c", SECRET, None), T0) is None
    crm, every = await hooks.webhook_endpoints()
    assert (crm.name, crm.kinds, crm.source, crm.enabled) == ("crm", ("enrolled",), "config", True)
    assert every.id == api.id

    sequence, _ = await active_sequence(store)
    await store.enroll(sequence.id, [ContactInput("a@example.org"), ContactInput("b@example.org")], None, T0 + 1,
                       strict=True)
    await store.set_mailbox_paused("sales", "resting", T0 + 2)  # mailbox_paused: only "all" wants it
    assert await hooks.webhook_counts() == {crm.id: {"pending": 2}, every.id: {"pending": 3}}
    assert await hooks.webhook_next_due() == T0 + 1
    assert await hooks.webhook_next_due([crm.id, every.id]) is None

    due = await hooks.webhook_due(crm.id, T0 + 5, 10, [])
    assert [(d.event_kind, d.status, d.attempts) for d in due] == [("enrolled", DeliveryStatus.PENDING, 0)] * 2
    facts = await hooks.webhook_event(due[0].event_id)
    assert facts is not None and (facts.kind, facts.sequence_name, facts.contact_email) == (
        EventKind.ENROLLED.value, "seq", "a@example.org")
    assert await hooks.webhook_due(crm.id, T0 + 5, 10, [due[0].id, due[1].id]) == []

    await hooks.webhook_record(due[0].id, DeliveryStatus.DELIVERED, T0 + 6, 204, None, None)
    await hooks.webhook_record(due[1].id, DeliveryStatus.PENDING, T0 + 6, 503, "busy", T0 + 60)
    delivered = await hooks.webhook_delivery(due[0].id)
    retried = await hooks.webhook_delivery(due[1].id)
    assert delivered is not None and (delivered.status, delivered.attempts, delivered.last_status,
                                      delivered.delivered_at) == (DeliveryStatus.DELIVERED, 1, 204, T0 + 6)
    assert retried is not None and (retried.status, retried.next_attempt_at, retried.last_error) == (
        DeliveryStatus.PENDING, T0 + 60, "busy")
    await hooks.webhook_expire(due[1].id, T0 + 90000, "gave up after 24 h")
    expired = await hooks.webhook_delivery(due[1].id)
    assert expired is not None and (expired.status, expired.last_error) == (DeliveryStatus.FAILED, "gave up after 24 h")

    replayed = await hooks.webhook_replay(due[1].id, T0 + 100)
    assert replayed is not None and (replayed.status, replayed.retry_from, replayed.next_attempt_at) == (
        DeliveryStatus.PENDING, T0 + 100, T0 + 100)
    assert await hooks.webhook_replay(999_999, T0) is None

    newest = await hooks.webhook_deliveries(limit=2)
    assert len(newest) == 2 and newest[0].id > newest[1].id
    rest = await hooks.webhook_deliveries(before_id=newest[-1].id)
    assert len(newest) + len(rest) == 5
    assert [d.id for d in await hooks.webhook_deliveries(endpoint_id=crm.id, status="delivered")] == [due[0].id]

    assert await hooks.webhook_set_enabled(every.id, False, "410 Gone", T0 + 200)
    assert [e.disabled_reason for e in await hooks.webhook_endpoints()] == [None, "410 Gone"]
    assert await hooks.webhook_delete(every.id) and not await hooks.webhook_delete(every.id)
    assert await hooks.webhook_counts() == {crm.id: {"delivered": 1, "pending": 1}}
    await hooks.webhook_sync_config([], T0 + 300)  # the config's endpoint removed, with its outbox
    assert await hooks.webhook_endpoints() == [] and await hooks.webhook_counts() == {}
