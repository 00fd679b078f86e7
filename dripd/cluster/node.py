"""One node's part in a cluster, as the daemon uses it: built before the store (the store checks
its fence), run beside the lanes, read by the status endpoint and /metrics.

``cluster_status`` is the additive ``cluster`` part of ``GET /api/status``; the metrics collector
adds ``dripd_node_info{node}`` and this node's leases to the daemon's registry (a ``node`` label
on every series would repeat what Prometheus's ``instance`` label already says; join on it with
``* on(instance) group_left(node) dripd_node_info``).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Collection, Iterable

import psycopg
import trio
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dripd.clock import iso
from dripd.cluster.keeper import HostMailbox, LaneKeeper, StoppableLane
from dripd.cluster.leases import LeaseManager, LeaseUnavailable
from dripd.cluster.settings import ClusterConfig
from dripd.cluster.table import LeaseTable
from dripd.metrics import Metrics

log = logging.getLogger("dripd.cluster")


class ClusterNode:
    """This node's leases (the fence), its lane keeper, its status and metrics."""

    def __init__(self, settings: ClusterConfig, url: str, password: str | None, *, address: str,
                 mailboxes: Callable[[], Collection[str]], host: HostMailbox,
                 lane_of: Callable[[str], StoppableLane | None], release_grace: float) -> None:
        self.settings = settings
        self.keeper = LaneKeeper(host, lane_of)
        timeout = settings.call_timeout_seconds
        self.leases = LeaseManager(settings, self.keeper, LeaseTable(url, password, timeout=timeout),
                                   LeaseTable(url, password, timeout=timeout), address=address,
                                   mailboxes=mailboxes, release_grace=release_grace)

    @property
    def node_id(self) -> str:
        return self.leases.node_id

    @property
    def fence(self) -> LeaseManager:
        """What the store checks on every ledger write (``dripd.store.api.LeaseFence``)."""
        return self.leases

    def holder_of(self, mailbox_id: str) -> str | None:
        """The node running the mailbox, as of this node's last heartbeat (None: nobody yet)."""
        if mailbox_id in self.leases.held():
            return self.node_id
        return self.leases.holders.get(mailbox_id)

    async def join(self) -> None:
        await self.leases.join()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The keeper and the heartbeat until cancelled; leaving releases every lease."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.keeper.run)
            await nursery.start(self.leases.run)
            task_status.started()

    async def status(self) -> dict[str, Any]:
        """Every node and every lease as the database sees them (an ``error`` when it cannot)."""
        out: dict[str, Any] = {"node": self.node_id, "leaseSeconds": self.settings.lease_seconds,
                               "held": sorted(self.leases.held())}
        try:
            state = await self.leases.state()
        except (psycopg.Error, LeaseUnavailable) as exc:
            out["error"] = f"the lease tables cannot be read: {str(exc).splitlines()[0] if str(exc) else 'no answer'}"
            return out
        out["nodes"] = [{"id": n.node_id, "address": n.address, "startedAt": iso(n.started_at),
                         "lastHeartbeat": iso(n.heartbeat_at), "heartbeatAgeSeconds": round(state.now - n.heartbeat_at, 1),
                         "alive": n.alive} for n in state.nodes]
        out["leases"] = [{"mailboxId": lease.mailbox_id, "holder": lease.holder if lease.valid else None,
                          "generation": lease.generation, "expiresAt": iso(lease.expires_at) if lease.valid else None}
                         for lease in state.leases]
        return out


class ClusterCollector(Collector):
    """/metrics gauges of this node: who it is, which leases it holds, how its heartbeat goes."""

    def __init__(self, node: ClusterNode) -> None:
        self._node = node

    def collect(self) -> Iterable[Metric]:
        leases = self._node.leases
        info = GaugeMetricFamily("dripd_node_info", "This node's id in the cluster (always 1)", labels=["node"])
        info.add_metric([leases.node_id], 1)
        held = GaugeMetricFamily("dripd_mailbox_lease_generation",
                                 "Generation of each mailbox lease this node holds (absent: held elsewhere)",
                                 labels=["mailbox"])
        for mailbox_id, generation in sorted(leases.held().items()):
            held.add_metric([mailbox_id], generation)
        live = GaugeMetricFamily("dripd_cluster_live_nodes", "Nodes with a recent heartbeat, as last read")
        live.add_metric([], len(leases.live_nodes))
        failures = GaugeMetricFamily("dripd_lease_renewal_failures", "Heartbeats failed in a row (0: renewing)")
        failures.add_metric([], leases.renewal_failures)
        return [info, held, live, failures]


def forget_mailbox_gauges(metrics: Metrics, mailbox_id: str) -> None:
    """A mailbox that moved to another node has no live gauges here: its last values would
    otherwise be scraped from two nodes at once."""
    for gauge in (metrics.queue_depth, metrics.heap_size, metrics.tokens, metrics.sends_today, metrics.daily_cap,
                  metrics.paused):
        try:
            gauge.remove(mailbox_id)
        except KeyError:
            pass  # never scraped while it ran here
