"""The cluster's pure rules (dripd/cluster/assignment.py) and the lease manager's stop rule in
simulated time: who should hold which mailbox, how leases rebalance, and when a node that cannot
renew stops sending (exact virtual times under trio's MockClock).
"""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
import trio

from dripd.cluster.assignment import Tenure, assign, plan
from dripd.cluster.keeper import LaneKeeper
from dripd.cluster.leases import LeaseManager
from dripd.cluster.settings import ClusterConfig
from dripd.cluster.table import LeaseTable, Round

MAILBOXES = [f"mb{i:02d}" for i in range(50)]


@pytest.mark.parametrize("nodes", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("mailboxes", [0, 1, 5, 50, 51])
def test_every_mailbox_has_one_node_and_the_spread_is_exact(nodes: int, mailboxes: int) -> None:
    node_ids = [f"node-{i}" for i in range(nodes)]
    boxes = MAILBOXES[:mailboxes] if mailboxes <= 50 else [*MAILBOXES, "extra"]
    owner = assign(node_ids, boxes)
    assert set(owner) == set(boxes)
    counts = Counter(owner.values())
    shares = [counts.get(n, 0) for n in node_ids]
    assert sum(shares) == len(boxes)
    assert max(shares) - min(shares) <= 1, shares
    assert sorted(shares) == sorted([len(boxes) // nodes + (1 if i < len(boxes) % nodes else 0)
                                     for i in range(nodes)])


def test_the_answer_does_not_depend_on_the_order_facts_were_read_in() -> None:
    nodes = ["a", "b", "c"]
    rng = random.Random(7)
    shuffled = MAILBOXES[:]
    rng.shuffle(shuffled)
    assert assign(nodes, MAILBOXES) == assign(list(reversed(nodes)), shuffled)


def _moved(before: dict[str, str], after: dict[str, str]) -> int:
    return sum(1 for m in before if before[m] != after.get(m))


def test_a_node_joining_or_leaving_moves_about_a_share_not_everything() -> None:
    three = assign(["a", "b", "c"], MAILBOXES)
    four = assign(["a", "b", "c", "d"], MAILBOXES)
    # The newcomer's share must move to it; little else should.
    assert Counter(four.values())["d"] in (12, 13)
    assert _moved(three, four) <= 13 + 4
    two = assign(["a", "b"], MAILBOXES)
    leaving = sum(1 for node in three.values() if node == "c")
    assert _moved(three, two) <= leaving + 4


def test_plan_takes_only_free_leases_it_should_hold_and_releases_the_surplus() -> None:
    everyone_on_a = {m: "a" for m in MAILBOXES}
    # b joins: a holds everything, so b takes nothing until a releases.
    joining = plan("b", ["a", "b"], MAILBOXES, everyone_on_a)
    assert joining.take == () and joining.release == ()
    target = assign(["a", "b"], MAILBOXES)
    at_a = plan("a", ["a", "b"], MAILBOXES, everyone_on_a)
    assert set(at_a.release) == {m for m in MAILBOXES if target[m] == "b"}
    assert at_a.take == ()
    # a released them: now b takes exactly its share.
    after = {m: ("a" if target[m] == "a" else None) for m in MAILBOXES}
    assert set(plan("b", ["a", "b"], MAILBOXES, after).take) == {m for m in MAILBOXES if target[m] == "b"}


def test_a_dead_nodes_expired_leases_go_to_the_survivors_and_a_removed_mailbox_is_released() -> None:
    target = assign(["a", "b", "c"], MAILBOXES)
    # c died: its leases expired (None); the others are live and still hold theirs.
    holders = {m: (None if target[m] == "c" else target[m]) for m in MAILBOXES}
    takes = {node: set(plan(node, ["a", "b"], MAILBOXES, holders).take) for node in ("a", "b")}
    freed = {m for m in MAILBOXES if target[m] == "c"}
    # Each wants exactly what it lacks of its share, only among the freed ones (two may want one
    # mailbox: the database gives it to the first; the other takes another at its next renewal).
    assert takes["a"] <= freed and takes["b"] <= freed
    assert all(len(takes[n]) == 25 - sum(1 for h in holders.values() if h == n) for n in ("a", "b"))
    # A mailbox gone from the configuration is released by its holder.
    held = {m: "a" for m in ["mb00", "gone"]}
    assert "gone" in plan("a", ["a"], ["mb00"], held).release


def test_a_node_within_its_share_keeps_what_it_holds() -> None:
    # b holds mailboxes assign() would give a, but its count is right: nothing moves.
    target = assign(["a", "b"], MAILBOXES)
    swapped = {m: ("b" if target[m] == "a" else "a") for m in MAILBOXES}
    assert plan("a", ["a", "b"], MAILBOXES, swapped) == plan("b", ["a", "b"], MAILBOXES, swapped)
    assert plan("a", ["a", "b"], MAILBOXES, swapped).take == () == plan("a", ["a", "b"], MAILBOXES, swapped).release
    # b looks dead to a for one heartbeat: a wants more, but nothing is free, so nothing moves.
    assert plan("a", ["a"], MAILBOXES, swapped) == plan("a", ["a", "b"], MAILBOXES, swapped)


def test_rounds_of_plans_converge_to_an_even_spread_with_one_holder_each() -> None:
    holders: dict[str, str | None] = dict.fromkeys(MAILBOXES)
    for nodes in (["a"], ["a", "b"], ["a", "b", "c"], ["a", "c"]):
        live = nodes
        for _ in range(4):  # a few heartbeats each
            for node in live:
                decided = plan(node, live, MAILBOXES, holders)
                for m in decided.release:
                    holders[m] = None
                for m in decided.take:
                    assert holders[m] is None, "a node took a lease someone holds"
                    holders[m] = node
            holders = {m: (h if h in live else None) for m, h in holders.items()}  # dead nodes' leases expire
        counts = Counter(holders.values())
        assert None not in counts
        assert max(counts.values()) - min(counts.values()) <= 1, counts
        assert set(counts) == set(live)


def test_tenure_ends_lease_minus_safety_after_the_renewal_began() -> None:
    tenure = Tenure(lease_seconds=15.0, safety_seconds=5.0)
    assert not tenure.valid(0.0)
    tenure.renewed(100.0)
    assert tenure.valid(109.999) and not tenure.valid(110.0)
    tenure.renewed(95.0)  # a slower renewal that began earlier cannot shorten it
    assert tenure.valid_until == 110.0
    tenure.lapse()
    assert not tenure.valid(100.0)


class _Lane:
    """What the keeper sees of a lane: a send in flight until ``busy_until`` (trio time)."""

    def __init__(self, busy_until: float) -> None:
        self.stopping = False
        self.busy_until = busy_until
        self.stopped_at: float | None = None

    def nudge(self) -> None:
        if self.stopped_at is None:
            self.stopped_at = trio.current_time()

    def busy(self) -> bool:
        return trio.current_time() < self.busy_until


async def test_a_node_that_cannot_renew_stops_sending_before_its_lease_can_expire(
        autojump_clock: trio.abc.Clock) -> None:
    settings = ClusterConfig(node_id="n1", lease_seconds=15.0)
    lanes = {"a": _Lane(busy_until=math.inf), "b": _Lane(busy_until=11.0)}
    ended: dict[str, float] = {}

    async def host(mailbox_id: str) -> None:
        try:
            await trio.sleep_forever()
        finally:
            ended[mailbox_id] = trio.current_time()

    keeper = LaneKeeper(host, lanes.get)
    # Never connected in this test: the heartbeat is fed by hand through ``absorb``.
    table = LeaseTable("postgresql:///unused", None, timeout=1.0)
    manager = LeaseManager(settings, keeper, table, table, address="", mailboxes=lambda: ["a", "b"],
                           release_grace=25.0, monotonic=trio.current_time)
    async with trio.open_nursery() as nursery:
        await nursery.start(keeper.run)
        nursery.start_soon(manager.guard)
        # The heartbeat that began at t=0 renewed both leases (the database extends them to >= 15).
        taken = manager.absorb(Round(renewed={"a": 4, "b": 9}, live_nodes=("n1",), holders={"a": "n1", "b": "n1"}),
                               trio.current_time(), ["a", "b"], nursery)
        assert taken == ()
        await trio.sleep(9.5)
        assert manager.token("a") == ("n1", 4) and keeper.hosted() == {"a", "b"}
        # No renewal since: at 15 - 5 = 10 s the fence closes and the lanes stop taking sends.
        await trio.sleep(0.5)
        assert trio.current_time() == 10.0
        assert manager.token("a") is None and manager.token("b") is None
        await trio.sleep(0.01)
        assert lanes["a"].stopping and lanes["a"].stopped_at == 10.0
        await trio.sleep(5.0)
        # b's send finished at 11 and its lane ended then; a's was cut at 10 + 5/2, both well
        # before the leases can expire in the database (15 s).
        assert ended == {"b": pytest.approx(11.0, abs=0.05), "a": 12.5}
        assert keeper.hosted() == set()
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("cluster", "expected"), [
    ({"lease_seconds": 0.5}, "cluster.lease_seconds: "),
    ({"node_id": "has space"}, "cluster.node_id: "),
    ({"node_id": ""}, "cluster.node_id: "),
    ({"lease_seconds": "15"}, "cluster.lease_seconds: "),
    ({"heartbeat": 5}, "cluster.heartbeat: unknown key"),
])
def test_a_bad_cluster_setting_names_its_key(cluster: dict[str, object], expected: str) -> None:
    from dripd.config import parse_config
    from dripd.errors import ConfigError
    from dripd.plugins import Plugins

    plugins = Plugins()
    data = {"mailboxes": [{"id": "sales", "address": "a@example.com", "maildir": {"path": "x"}}], "cluster": cluster}
    with pytest.raises(ConfigError) as info:
        parse_config(data, plugins.config_sections(), plugins.transports)
    assert expected in info.value.message


def test_cluster_timing_follows_the_lease() -> None:
    settings = ClusterConfig(lease_seconds=15.0)
    assert (settings.heartbeat_seconds, settings.safety_seconds, settings.call_timeout_seconds) == (5.0, 5.0, 10.0)
    assert ClusterConfig(node_id="a").node_name() == "a"
    assert ClusterConfig().node_name() != ClusterConfig(node_id="x").node_name()
