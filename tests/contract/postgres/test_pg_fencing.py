"""Fencing: with a fence, every ledger write checks this node's lease on the mailbox in its own
transaction; a stale generation, an expired lease (by the database's clock) or no lease at all
refuses the write with FencedOut and leaves nothing behind."""

from __future__ import annotations

import pytest

from dripd.errors import FencedOut
from dripd.store import Claim
from tests.contract.postgres.conftest import Opener, connect
from tests.contract.support import T0, Holding, active_sequence, enroll_one


def set_lease(url: str, mailbox_id: str, holder: str, generation: int, seconds_left: float) -> None:
    with connect(url) as conn:
        conn.execute("INSERT INTO mailbox_leases (mailbox_id, holder, generation, expires_at)"
                     " VALUES (%s, %s, %s, extract(epoch from clock_timestamp()) + %s)"
                     " ON CONFLICT (mailbox_id) DO UPDATE SET holder = excluded.holder,"
                     " generation = excluded.generation, expires_at = excluded.expires_at",
                     (mailbox_id, holder, generation, seconds_left))


def ledger(url: str) -> tuple[list[tuple[int, str]], int]:
    with connect(url) as conn:
        rows = [(r[0], r[1]) for r in conn.execute("SELECT id, status FROM outbox ORDER BY id")]
        sends = conn.execute("SELECT COUNT(*) FROM send_log").fetchone()
        assert sends is not None
        return rows, int(sends[0])


async def test_the_lease_holder_claims_and_records(pg_url: str, open_store: Opener) -> None:
    store = await open_store(fence=Holding({"sales": ("n1", 3)}), node_id="n1")
    sequence, steps = await active_sequence(store)
    enrollment = await enroll_one(store, sequence.id)
    set_lease(pg_url, "sales", "n1", 3, 60)
    claim = await store.claim_send(enrollment, steps[0].id, "sales", "<f1@example.com>", "s", T0)
    assert isinstance(claim, Claim)
    await store.record_sent(claim, enrollment, steps[0].id, steps[0].ord + 1, T0, None, T0)
    assert ledger(pg_url) == ([(claim.outbox_id, "sent")], 1)


@pytest.mark.parametrize("holder, generation, seconds_left", [
    ("n1", 4, 60),   # the lease moved away and back: this node's generation is stale
    ("n2", 3, 60),   # another node holds it
    ("n1", 3, -1),   # expired by the database's clock, even though nobody took it yet
])
async def test_a_claim_without_the_current_lease_is_refused(
        pg_url: str, open_store: Opener, holder: str, generation: int, seconds_left: float) -> None:
    store = await open_store(fence=Holding({"sales": ("n1", 3)}), node_id="n1")
    sequence, steps = await active_sequence(store)
    enrollment = await enroll_one(store, sequence.id)
    set_lease(pg_url, "sales", holder, generation, seconds_left)
    with pytest.raises(FencedOut, match="sales"):
        await store.claim_send(enrollment, steps[0].id, "sales", "<f2@example.com>", "s", T0)
    assert ledger(pg_url) == ([], 0)  # rolled back: no ledger row, no send counted


async def test_a_node_holding_no_lease_is_refused(pg_url: str, open_store: Opener) -> None:
    store = await open_store(fence=Holding(), node_id="n1")
    sequence, steps = await active_sequence(store)
    enrollment = await enroll_one(store, sequence.id)
    set_lease(pg_url, "sales", "n1", 3, 60)
    with pytest.raises(FencedOut, match="holds no lease"):
        await store.claim_send(enrollment, steps[0].id, "sales", "<f3@example.com>", "s", T0)
    assert ledger(pg_url) == ([], 0)


async def test_a_result_after_the_lease_moved_is_refused(pg_url: str, open_store: Opener) -> None:
    """Claimed under the lease, then the lease moved (this node was cut off): the result and the
    crash-recovery resolutions are refused; the row stays 'sending' for the new holder."""
    holding = Holding({"sales": ("n1", 3)})
    store = await open_store(fence=holding, node_id="n1")
    sequence, steps = await active_sequence(store)
    enrollment = await enroll_one(store, sequence.id)
    set_lease(pg_url, "sales", "n1", 3, 60)
    claim = await store.claim_send(enrollment, steps[0].id, "sales", "<f4@example.com>", "s", T0)
    assert isinstance(claim, Claim)
    set_lease(pg_url, "sales", "n2", 4, 60)
    with pytest.raises(FencedOut):
        await store.record_sent(claim, enrollment, steps[0].id, steps[0].ord + 1, T0, None, T0)
    with pytest.raises(FencedOut):
        await store.record_retry(claim, enrollment, steps[0].id, T0 + 60, "4xx", T0)
    with pytest.raises(FencedOut):
        await store.resolve_outbox(claim.outbox_id, "uncertain", "crash", T0)
    with pytest.raises(FencedOut):
        await store.release_claim(claim.outbox_id, enrollment, T0 + 60, T0, "not found")
    assert ledger(pg_url) == ([(claim.outbox_id, "sending")], 1)
    # The new holder (its own fence) resolves it.
    other = await open_store(fence=Holding({"sales": ("n2", 4)}), node_id="n2")
    await other.resolve_outbox(claim.outbox_id, "uncertain", "found after takeover", T0)
    assert ledger(pg_url) == ([(claim.outbox_id, "uncertain")], 1)
