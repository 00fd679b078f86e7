"""Several nodes on one database: claims never hand one row out twice. The ledger's unique
(enrollment, step) row refuses a second claim from another node; webhook deliveries are claimed
with FOR UPDATE SKIP LOCKED (a row another session is claiming is skipped, not waited for).
What SQLite's single writer serialised by itself holds across sessions too: auto-completion,
the webhook config sync of nodes starting together, a unique name created twice at once."""

from __future__ import annotations

from dataclasses import replace

import psycopg.sql
import trio

from dripd.errors import Conflict
from dripd.model import EnrollmentStatus, SequenceStatus
from dripd.store import Claim, ContactInput, Refused
from dripd.store.postgres import PostgresStore
from dripd.webhooks.records import EndpointSpec
from tests.contract.postgres.conftest import Opener, connect
from tests.contract.support import T0, active_sequence, enroll_one


async def test_two_nodes_claiming_one_step_get_one_claim(open_store: Opener) -> None:
    nodes = [await open_store(node_id="n1"), await open_store(node_id="n2")]
    sequence, steps = await active_sequence(nodes[0])
    result = await nodes[0].enroll(sequence.id, [ContactInput(f"c{i}@example.org") for i in range(20)], None, T0,
                                   strict=True)
    claims: dict[int, list[int]] = {enrollment: [] for enrollment in result.enrolled}

    async def claim(node: PostgresStore, index: int, enrollment: int) -> None:
        got = await node.claim_send(enrollment, steps[0].id, "sales", f"<{enrollment}.{index}@example.com>", "s", T0)
        if isinstance(got, Claim):
            claims[enrollment].append(index)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for enrollment in result.enrolled:
                for index, node in enumerate(nodes):
                    nursery.start_soon(claim, node, index, enrollment)
    assert all(len(won) == 1 for won in claims.values()), claims


async def test_claims_beside_records_of_their_steps_on_another_node_are_refused_and_both_commit(
        open_store: Opener) -> None:
    """Twenty steps recorded on one node while another claims them again: every second claim is
    refused as in the ledger and every record commits. (The interleaving that would deadlock
    under the other lock order is forced in the test after this one.)"""
    nodes = [await open_store(node_id="n1"), await open_store(node_id="n2")]
    sequence, steps = await active_sequence(nodes[0], steps=2, auto_complete=False)
    result = await nodes[0].enroll(sequence.id, [ContactInput(f"c{i}@example.org") for i in range(20)], None, T0,
                                   strict=True)
    refused: dict[int, Claim | Refused] = {}

    async def record(enrollment: int, claim: Claim) -> None:
        await nodes[0].record_sent(claim, enrollment, steps[0].id, steps[1].ord, T0 + 1, T0 + 100, T0 + 1)

    async def claim_again(enrollment: int) -> None:
        refused[enrollment] = await nodes[1].claim_send(enrollment, steps[0].id, "sales", "<again@x>", "s", T0 + 1)

    claims = {}
    for enrollment in result.enrolled:
        claim = await nodes[0].claim_send(enrollment, steps[0].id, "sales", f"<{enrollment}@x>", "s", T0)
        assert isinstance(claim, Claim)
        claims[enrollment] = claim
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for enrollment, claim in claims.items():
                nursery.start_soon(record, enrollment, claim)
                nursery.start_soon(claim_again, enrollment)
    assert set(refused.values()) == {Refused.IN_LEDGER}
    assert await nodes[0].count_outbox("sent") == len(claims)



def _someone_waits_for_a_lock(url: str) -> bool:
    with connect(url) as probe:
        row = probe.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND datname = current_database()").fetchone()
    return bool(row and row[0])


async def _until_a_claim_waits(url: str) -> None:
    with trio.fail_after(30):
        while not _someone_waits_for_a_lock(url):
            await trio.sleep(0.01)


async def test_a_claim_waits_for_an_ending_being_committed_and_is_then_refused(pg_url: str, open_store: Opener) -> None:
    """An ending not yet committed (a reply on another node): the claim waits for it (FOR SHARE on
    the enrollment) and is refused, where reading the row's last committed state would claim it."""
    store = await open_store()
    sequence, steps = await active_sequence(store, steps=2, auto_complete=False)
    enrollment = await enroll_one(store, sequence.id)
    outcome: list[Claim | Refused] = []

    async def claim() -> None:
        outcome.append(await store.claim_send(enrollment, steps[0].id, "sales", "<w@x>", "s", T0))

    with connect(pg_url) as other:
        other.execute("BEGIN")
        other.execute("UPDATE enrollments SET status = 'replied' WHERE id = %s", (enrollment,))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(claim)
            await _until_a_claim_waits(pg_url)
            other.execute("COMMIT")
    assert outcome == [Refused.NOT_RUNNABLE]
    assert await store.count_outbox("sending") == 0


async def test_a_claim_blocked_on_its_ledger_row_holds_no_lock_a_record_needs(pg_url: str, open_store: Opener) -> None:
    """A record of the step holds its ledger row and then updates the enrollment: a second claim
    of the step waits on the row without holding the enrollment, so the record goes through (the
    other lock order deadlocks the two) and the claim is refused as in the ledger."""
    store = await open_store()
    sequence, steps = await active_sequence(store, steps=2, auto_complete=False)
    enrollment = await enroll_one(store, sequence.id)
    first = await store.claim_send(enrollment, steps[0].id, "sales", "<r@x>", "s", T0)
    assert isinstance(first, Claim)
    outcome: list[Claim | Refused] = []

    async def claim_again() -> None:
        outcome.append(await store.claim_send(enrollment, steps[0].id, "sales", "<r2@x>", "s", T0 + 1))

    # The record must not wait at all: lock_timeout (under deadlock_timeout's 1 s) turns the wait
    # the other order makes (a deadlock PostgreSQL would break, and the store retry) into an error.
    with connect(pg_url, options="-c lock_timeout=500") as record:
        record.execute("BEGIN")
        record.execute("UPDATE outbox SET status = 'sent' WHERE id = %s", (first.outbox_id,))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(claim_again)
            await _until_a_claim_waits(pg_url)
            record.execute("UPDATE enrollments SET sent_count = sent_count + 1 WHERE id = %s", (enrollment,))
            record.execute("COMMIT")
    assert outcome == [Refused.IN_LEDGER]


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


async def test_last_contacts_ending_on_two_nodes_at_once_complete_the_sequence(open_store: Opener) -> None:
    """Each node ends one of a sequence's last two contacts at the same moment: the sequence
    auto-completes (without the sequence row's lock each would still see the other active)."""
    nodes = [await open_store(node_id="n1"), await open_store(node_id="n2")]
    sequences = []
    for round_ in range(8):
        sequence, _ = await active_sequence(nodes[0], name=f"race{round_}")
        result = await nodes[0].enroll(sequence.id, [ContactInput(f"r{round_}.{i}@example.org") for i in range(2)],
                                       None, T0, strict=True)
        sequences.append((sequence.id, result.enrolled))
    completed: list[int] = []

    async def end(node: PostgresStore, enrollment: int) -> None:
        done = await node.finish(enrollment, EnrollmentStatus.COMPLETED, None, T0 + 1)
        if done is not None:
            completed.append(done)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for _, (first, second) in sequences:
                nursery.start_soon(end, nodes[0], first)
                nursery.start_soon(end, nodes[1], second)
    assert sorted(completed) == sorted(sequence_id for sequence_id, _ in sequences)  # each exactly once
    for sequence_id, _ in sequences:
        assert (await nodes[1].get_sequence(sequence_id))[0].status is SequenceStatus.COMPLETED


async def test_nodes_starting_at_once_sync_the_configured_webhooks_once(open_store: Opener) -> None:
    nodes = [await open_store(node_id=f"n{i}") for i in range(4)]
    spec = EndpointSpec("crm", "http://127.0.0.1:9/", "whsec_dGVzdA==", None)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for node in nodes:
                nursery.start_soon(node.webhook_sync_config, [spec], T0)
    assert [e.name for e in await nodes[0].webhook_endpoints()] == ["crm"]


async def test_one_list_name_created_on_two_nodes_at_once_is_one_list(open_store: Opener) -> None:
    nodes = [await open_store(node_id="n1"), await open_store(node_id="n2")]
    outcomes: list[object] = []

    async def create(node: PostgresStore) -> None:
        try:
            outcomes.append(await node.create_list("vip", T0))
        except Conflict as exc:
            outcomes.append(exc)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for node in nodes:
                nursery.start_soon(create, node)
    assert len([o for o in outcomes if isinstance(o, int)]) == 1
    assert len([o for o in outcomes if isinstance(o, Conflict)]) == 1
    assert [name for _, name, _ in await nodes[1].list_lists()] == ["vip"]


async def test_a_foreign_key_check_on_the_sequence_holds_up_neither_its_completion_nor_an_edit(
        pg_url: str, open_store: Opener) -> None:
    """A send that ends a contact updates its enrollment row twice (the advance, then the end),
    and PostgreSQL then checks that row's foreign key: a KEY SHARE lock on the sequence row until
    COMMIT. Auto-completion locked that row FOR UPDATE, which waits for KEY SHARE: two sends
    ending contacts of one sequence at once each waited for the other, a deadlock every time
    (seen in CI as 'the database is busy' and a stalled run). Here another session holds that
    lock, as such a send would: the completion and an edit of the sequence go through."""
    with connect(pg_url) as admin:  # so that a wait fails in 10 s instead of hanging the test
        admin.execute(psycopg.sql.SQL("ALTER DATABASE {} SET lock_timeout = '10s'").format(
            psycopg.sql.Identifier(admin.info.dbname)))
    store = await open_store()
    sequence, steps = await active_sequence(store)
    enrollment = await enroll_one(store, sequence.id)
    claim = await store.claim_send(enrollment, steps[0].id, "sales", "<fk@example.com>", "s", T0)
    assert isinstance(claim, Claim)
    with connect(pg_url) as other, other.transaction():
        other.execute("SELECT 1 FROM sequences WHERE id = %s FOR KEY SHARE", (sequence.id,))  # the FK check's lock
        renamed = await store.update_sequence(sequence.id, replace(sequence.settings, name="renamed"), T0)
        assert renamed.settings.name == "renamed"
        completed = await store.record_sent(claim, enrollment, steps[0].id, steps[0].ord + 1, T0, None, T0)
        assert completed == sequence.id
    assert (await store.get_sequence(sequence.id))[0].status is SequenceStatus.COMPLETED
