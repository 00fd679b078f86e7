"""Several nodes on one database: claims never hand one row out twice. The ledger's unique
(enrollment, step) row refuses a second claim from another node; webhook deliveries are claimed
with FOR UPDATE SKIP LOCKED (a row another session is claiming is skipped, not waited for)."""

from __future__ import annotations

import trio

from dripd.store import ContactInput
from dripd.store.postgres import PostgresStore
from dripd.webhooks.records import EndpointSpec
from tests.contract.postgres.conftest import Opener, connect
from tests.contract.support import T0, active_sequence


async def test_two_nodes_claiming_one_step_get_one_claim(open_store: Opener) -> None:
    nodes = [await open_store(node_id="n1"), await open_store(node_id="n2")]
    sequence, steps = await active_sequence(nodes[0])
    result = await nodes[0].enroll(sequence.id, [ContactInput(f"c{i}@example.org") for i in range(20)], None, T0,
                                   strict=True)
    claims: dict[int, list[int]] = {enrollment: [] for enrollment in result.enrolled}

    async def claim(node: PostgresStore, index: int, enrollment: int) -> None:
        got = await node.claim_send(enrollment, steps[0].id, "sales", f"<{enrollment}.{index}@example.com>", "s", T0)
        if got is not None:
            claims[enrollment].append(index)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for enrollment in result.enrolled:
                for index, node in enumerate(nodes):
                    nursery.start_soon(claim, node, index, enrollment)
    assert all(len(won) == 1 for won in claims.values()), claims


async def _deliveries(store: PostgresStore, count: int) -> int:
    endpoint = await store.webhook_create(EndpointSpec("hook", "http://127.0.0.1:9/", "whsec_dGVzdA==", None), T0)
    assert endpoint is not None
    sequence, _ = await active_sequence(store)
    await store.enroll(sequence.id, [ContactInput(f"w{i}@example.org") for i in range(count)], None, T0, strict=True)
    return endpoint.id


async def test_a_delivery_being_claimed_elsewhere_is_skipped_not_waited_for(pg_url: str, open_store: Opener) -> None:
    store = await open_store()
    endpoint_id = await _deliveries(store, 3)
    with connect(pg_url) as other:
        with other.transaction():  # another node's claim, not committed yet
            locked = [r[0] for r in other.execute(
                "SELECT id FROM webhook_deliveries ORDER BY id LIMIT 2 FOR UPDATE")]
            with trio.fail_after(10):  # a plain FOR UPDATE would wait here until that COMMIT
                claimed = await store.webhook_due(endpoint_id, T0 + 1, 100, [])
        assert locked and not {d.id for d in claimed} & set(locked)
        # Released (that node died before marking them): they are claimable again; the ones
        # claimed above are in flight and not handed out a second time.
        again = await store.webhook_due(endpoint_id, T0 + 1, 100, [])
        assert sorted(d.id for d in again) == sorted(locked)


async def test_dispatchers_on_two_nodes_never_take_one_delivery_twice(pg_url: str, open_store: Opener) -> None:
    nodes = [await open_store(node_id="n1"), await open_store(node_id="n2")]
    endpoint_id = await _deliveries(nodes[0], 30)
    taken: list[list[int]] = [[], []]

    async def dispatcher(index: int) -> None:
        while batch := await nodes[index].webhook_due(endpoint_id, T0 + 1, 2, []):
            taken[index].extend(d.id for d in batch)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for index in range(2):
                nursery.start_soon(dispatcher, index)
    every = taken[0] + taken[1]
    with connect(pg_url) as conn:
        ids = sorted(r[0] for r in conn.execute("SELECT id FROM webhook_deliveries"))
    assert len(ids) == 30  # one per enrolled event
    assert sorted(every) == ids  # every delivery taken, none twice
