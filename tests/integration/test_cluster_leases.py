"""The lease manager (dripd/cluster) of several nodes in one process against the real test
PostgreSQL, in real time with 2-second leases: mailboxes spread evenly, rebalance when nodes
join and leave, never run on two nodes at once, and a node cut off from the database (a proxy
that stops answering) stops its lanes before another node takes them over.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
import trio

from dripd.cluster.node import ClusterNode
from dripd.cluster.settings import ClusterConfig
from dripd.cluster.table import LeaseTable
from dripd.store.postgres.connection import IDLE_IN_TRANSACTION_SECONDS, PgConnection
from dripd.store.postgres.fencing import check_fence
from dripd.store.postgres.migrations import migrate
from tests.contract.support import Holding
from tests.integration.pg_proxy import PgProxy
from tests.postgres_server import PASSWORD, PostgresServer
from tests.integration.waiting import wait_until_async

LEASE = 2.0
MAILBOXES = [f"mb{i}" for i in range(6)]


@dataclass
class Hosting:
    """When each node ran each mailbox (time.monotonic), to prove no two ever overlapped."""

    open: dict[tuple[str, str], float] = field(default_factory=dict)
    spans: list[tuple[str, str, float, float]] = field(default_factory=list)  # mailbox, node, start, end

    def host(self, node_id: str):  # type: ignore[no-untyped-def]
        async def run(mailbox_id: str) -> None:
            self.open[(mailbox_id, node_id)] = time.monotonic()
            try:
                await trio.sleep_forever()
            finally:
                self.spans.append((mailbox_id, node_id, self.open.pop((mailbox_id, node_id)), time.monotonic()))
        return run

    def running(self, node_id: str) -> set[str]:
        return {m for m, n in self.open if n == node_id}

    def assert_never_two_at_once(self) -> None:
        now = time.monotonic()
        spans = self.spans + [(m, n, start, now) for (m, n), start in self.open.items()]
        for mailbox in {s[0] for s in spans}:
            mine = sorted((start, end, node) for m, node, start, end in spans if m == mailbox)
            for (_, end, node), (start, _, other) in zip(mine, mine[1:]):
                assert end <= start, f"mailbox {mailbox} ran on {node} and {other} at once"


@pytest.fixture
def database(postgres: PostgresServer) -> Iterator[str]:
    url = postgres.fresh_database()
    with psycopg.connect(url, password=PASSWORD, autocommit=True) as conn:
        migrate(conn, time.time())
    yield url


def make_node(url: str, node_id: str, hosting: Hosting) -> ClusterNode:
    return ClusterNode(ClusterConfig(node_id=node_id, lease_seconds=LEASE), url, PASSWORD, address=f"{node_id}:8080",
                       mailboxes=lambda: MAILBOXES, host=hosting.host(node_id), lane_of=lambda _: None,
                       release_grace=1.0)


async def until(check, what: str, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    async def ok() -> bool:
        return bool(check())
    await wait_until_async(ok, timeout=timeout, interval=0.05, what=what)


async def test_nodes_share_mailboxes_evenly_and_hand_them_over_when_they_join_and_leave(database: str) -> None:
    hosting = Hosting()
    nodes = {name: make_node(database, name, hosting) for name in ("n1", "n2", "n3")}
    scopes: dict[str, trio.CancelScope] = {}

    async def run(name: str, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            scopes[name] = scope
            await nodes[name].join()
            await nodes[name].run(task_status=task_status)
            await trio.sleep_forever()

    def spread() -> list[int]:
        return sorted(len(hosting.running(n)) for n in scopes if not scopes[n].cancel_called)

    async with trio.open_nursery() as nursery:
        await nursery.start(run, "n1")
        await until(lambda: hosting.running("n1") == set(MAILBOXES), "n1 alone holds every mailbox")
        await nursery.start(run, "n2")
        await until(lambda: spread() == [3, 3], "two nodes hold 3 each")
        await nursery.start(run, "n3")
        await until(lambda: spread() == [2, 2, 2], "three nodes hold 2 each")
        status = await nodes["n1"].status()
        assert {n["id"] for n in status["nodes"] if n["alive"]} == {"n1", "n2", "n3"}
        holders = Counter(lease["holder"] for lease in status["leases"])
        assert holders == Counter({"n1": 2, "n2": 2, "n3": 2}), status
        generations = {lease["mailboxId"]: lease["generation"] for lease in status["leases"]}
        # A graceful stop releases at once: the others take over without waiting for expiry.
        n3_had = hosting.running("n3")
        left_at = time.monotonic()
        scopes["n3"].cancel()
        await until(lambda: spread() == [3, 3], "n3's mailboxes moved to n1 and n2")
        handover = time.monotonic() - left_at
        after = {lease["mailboxId"]: lease["generation"] for lease in (await nodes["n1"].status())["leases"]}
        # Released (+1) and taken (+1): n3's tokens can never match again.
        assert all(after[m] >= generations[m] + 2 for m in n3_had), (generations, after)
        print(f"graceful handover of n3's mailboxes: {handover:.2f}s (lease {LEASE}s)")
        assert handover < LEASE * 3  # bounded by the heartbeat, not the expiry
        nursery.cancel_scope.cancel()
    hosting.assert_never_two_at_once()


async def test_a_node_cut_off_from_the_database_stops_before_another_takes_over(
        postgres: PostgresServer, database: str, tmp_path: Path) -> None:
    proxy = PgProxy(postgres.socket_dir, tmp_path / "proxy")
    try:
        hosting = Hosting()
        cut_node = make_node(proxy.url(database, postgres.socket_dir), "cut", hosting)
        survivor = make_node(database, "survivor", hosting)
        async with trio.open_nursery() as nursery:
            for node in (cut_node, survivor):
                await node.join()
                await nursery.start(node.run)
            await until(lambda: len(hosting.running("cut")) == 3 and len(hosting.running("survivor")) == 3,
                        "both nodes hold 3 mailboxes")
            cut_held = hosting.running("cut")
            proxy.freeze()
            frozen_at = time.monotonic()
            await until(lambda: hosting.running("survivor") == set(MAILBOXES), "the survivor took every mailbox",
                        timeout=30)
            stopped = {m: end for m, n, _, end in hosting.spans if n == "cut"}
            taken = {m: start for (m, n), start in hosting.open.items() if n == "survivor" and m in cut_held}
            for mailbox in cut_held:
                assert stopped[mailbox] < taken[mailbox], f"{mailbox}: the cut node was still running it"
            # It stopped within lease - safety + safety/2 of its last renewal (before the freeze).
            assert max(stopped.values()) - frozen_at <= LEASE, stopped
            print(f"partition: cut node stopped {max(stopped.values()) - frozen_at:.2f}s after the cut, "
                  f"survivor took over after {max(taken.values()) - frozen_at:.2f}s")
            assert cut_node.fence.token(sorted(cut_held)[0]) is None
            proxy.thaw()
            # Healed: the cut node rejoins and gets its share back by rebalancing.
            await until(lambda: len(hosting.running("cut")) == 3, "the healed node holds 3 again", timeout=30)
            nursery.cancel_scope.cancel()
        hosting.assert_never_two_at_once()
    finally:
        proxy.close()


async def test_a_node_cut_off_inside_a_heartbeat_does_not_keep_its_leases_locked(database: str) -> None:
    # A cut that falls between two statements of a heartbeat leaves that transaction open on the
    # server, holding the row locks of the node's leases, while the connection itself (a proxy,
    # a half-open TCP session) stays up. Seen in CI: the leases expired, yet no other node could
    # take them (its UPDATE waited on the locks) for as long as the test looked. The lease
    # sessions end such a transaction themselves (idle_in_transaction_session_timeout).
    cut = LeaseTable(database, PASSWORD, timeout=ClusterConfig(lease_seconds=LEASE).call_timeout_seconds)
    cut.join("cut", "cut:8080")
    cut.heartbeat("cut", "cut:8080", MAILBOXES, LEASE)
    assert all(cut.acquire("cut", m, LEASE) is not None for m in MAILBOXES)
    session = cut._connection()  # the lease table's own session, with its settings
    session.execute("BEGIN")
    session.execute("UPDATE mailbox_leases SET expires_at = expires_at WHERE holder = 'cut'")  # a renewal, cut off
    hosting = Hosting()
    survivor = make_node(database, "survivor", hosting)
    started = time.monotonic()
    async with trio.open_nursery() as nursery:
        await survivor.join()
        await nursery.start(survivor.run)
        await until(lambda: hosting.running("survivor") == set(MAILBOXES),
                    "the survivor took every mailbox of the node cut off mid-heartbeat", timeout=30)
        print(f"cut mid-heartbeat: the survivor held every mailbox after {time.monotonic() - started:.2f}s")
        nursery.cancel_scope.cancel()
    with pytest.raises(psycopg.Error, match="idle-in-transaction timeout"):
        session.execute("COMMIT")  # the server ended the stuck session: its renewal never happened
    cut.drop()


def test_a_store_session_cut_off_inside_a_ledger_write_does_not_block_the_takeover(database: str) -> None:
    # A ledger write key-share-locks its lease row until COMMIT, so a takeover waits for it. A node
    # cut off inside that transaction left the lock held (seen in CI: two mailboxes unheld for
    # 30 s after the lease sessions were mended); the store's sessions end such a transaction.
    lease = LeaseTable(database, PASSWORD, timeout=1.0)
    lease.join("cut", "cut:8080")
    lease.heartbeat("cut", "cut:8080", MAILBOXES, LEASE)
    generation = lease.acquire("cut", "mb0", LEASE)
    assert generation is not None
    lease.drop()
    session = PgConnection(database, password=PASSWORD).connect()  # the store's own session settings
    session.execute("BEGIN")
    check_fence(session, Holding({"mb0": ("cut", generation)}), "mb0")  # the fence, cut off
    taker = LeaseTable(database, PASSWORD, timeout=IDLE_IN_TRANSACTION_SECONDS + 5.0)
    taker.join("survivor", "survivor:8080")
    time.sleep(LEASE)  # the cut node's lease expires (a real wait: the database's clock decides)
    started = time.monotonic()
    assert taker.acquire("survivor", "mb0", LEASE) == generation + 1
    print(f"takeover waited {time.monotonic() - started:.1f}s on the stranded ledger write")
    with pytest.raises(psycopg.Error, match="idle-in-transaction timeout"):
        session.execute("COMMIT")
    taker.drop()


def test_a_renewal_does_not_wait_for_the_ledger_writes_in_flight(database: str) -> None:
    # The fence locked the lease row FOR SHARE, which a renewal's UPDATE waits for; and
    # PostgreSQL lets a new share locker in ahead of an updater already waiting. Under a steady
    # stream of sends the renewal waited past its timeout and the node stopped its own lanes
    # (seen in CI, in a restart's catch-up). The fence's KEY SHARE does not block a renewal.
    lease = LeaseTable(database, PASSWORD, timeout=5.0)  # its statement_timeout: a renewal that waits fails
    lease.join("n1", "n1:8080")
    lease.heartbeat("n1", "n1:8080", MAILBOXES, LEASE)
    generation = lease.acquire("n1", "mb0", LEASE)
    assert generation is not None
    session = PgConnection(database, password=PASSWORD).connect()
    with session.transaction():
        check_fence(session, Holding({"mb0": ("n1", generation)}), "mb0")  # a ledger write, not committed yet
        renewed = lease.heartbeat("n1", "n1:8080", MAILBOXES, LEASE).renewed
        assert renewed == {"mb0": generation}
        # A takeover still waits for that write; here the lease is unexpired, so another node's
        # attempt answers at once that it is held, without waiting on the lock either.
        other = LeaseTable(database, PASSWORD, timeout=5.0)
        other.join("n2", "n2:8080")
        assert other.acquire("n2", "mb0", LEASE) is None
        other.drop()
    session.close()
    lease.drop()
