"""The lease manager: this node's heartbeat, and the mailbox leases it takes, renews and gives up.

It is the ``LeaseFence`` the PostgreSQL store checks on every ledger write: ``token`` answers
(node id, generation) only while the lease is surely still this node's. When renewals fail
(the database went away, the network is cut) it stops the lanes ``safety_seconds`` before the
lease could expire in the database, so no send from here overlaps one from the next holder;
the store's fencing is the backstop. Rebalancing follows ``dripd.cluster.assignment``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Collection, TypeVar

import psycopg
import trio

from dripd.clock import offloaded
from dripd.errors import StoreError
from dripd.cluster.assignment import Tenure, plan
from dripd.cluster.keeper import LaneKeeper
from dripd.cluster.settings import ClusterConfig
from dripd.cluster.table import ClusterState, LeaseTable, Round

log = logging.getLogger("dripd.cluster")

T = TypeVar("T")


class LeaseUnavailable(Exception):
    """The lease tables could not be reached in time."""


class LeaseManager:
    """Heartbeat and leases of one node; the fence its store checks."""

    def __init__(self, settings: ClusterConfig, keeper: LaneKeeper, table: LeaseTable, reader: LeaseTable, *,
                 address: str,
                 mailboxes: Callable[[], Collection[str]], release_grace: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.node_id = settings.node_name()
        self.address = address
        self._table = table
        self._reader = reader  # status reads on their own connection: they never delay a heartbeat
        self._mailboxes = mailboxes
        self._release_grace = release_grace
        self._monotonic = monotonic
        self.tenure = Tenure(settings.lease_seconds, settings.safety_seconds)
        self._held: dict[str, int] = {}  # mailbox id -> generation, while this node may send for it
        self._releasing: set[str] = set()
        self.live_nodes: tuple[str, ...] = ()
        self.holders: dict[str, str | None] = {}  # mailbox id -> holder, as of the last heartbeat
        self.renewal_failures = 0
        self._changed = trio.Event()  # the tenure moved: the guard re-reads its deadline
        self._keeper = keeper

    # -- the fence -------------------------------------------------------------------------------

    def token(self, mailbox_id: str) -> tuple[str, int] | None:
        """(node id, generation) while this node holds the mailbox's lease with time to spare.
        Plain reads only: the store may call it from a worker thread."""
        generation = self._held.get(mailbox_id)
        if generation is None or not self.tenure.valid(self._monotonic()):
            return None
        return self.node_id, generation

    def held(self) -> dict[str, int]:
        return dict(self._held)

    # -- talking to the database -----------------------------------------------------------------

    async def _call(self, table: LeaseTable, work: Callable[..., T], *args: Any) -> T:
        # A call that hangs (a cut network) is abandoned once a renewal begun with it could no
        # longer extend the tenure; its connection is forgotten so the next call starts clean.
        with trio.move_on_after(self.settings.call_timeout_seconds):
            with offloaded:
                return await trio.to_thread.run_sync(lambda: work(*args), abandon_on_cancel=True)
        table.forget()
        raise LeaseUnavailable(f"no answer from the database within {self.settings.call_timeout_seconds:.1f}s")

    async def join(self) -> None:
        """Register this node; called before the daemon is ready (a failure stops the start)."""
        try:
            await self._call(self._table, self._table.join, self.node_id, self.address)
        except (psycopg.Error, LeaseUnavailable) as exc:
            raise StoreError(f"cannot join the cluster: {str(exc).splitlines()[0] if str(exc) else 'no answer'}",
                             details={"node": self.node_id}) from exc

    async def state(self) -> ClusterState:
        return await self._call(self._reader, self._reader.state, self.settings.lease_seconds)

    # -- running ---------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Heartbeat every ``heartbeat_seconds`` until cancelled; then leave the cluster."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.guard)
                task_status.started()
                while True:
                    await self._round(nursery)
                    await trio.sleep(self.settings.heartbeat_seconds)
        finally:
            with trio.CancelScope(shield=True):
                await self._leave()

    async def _round(self, nursery: trio.Nursery) -> None:
        keeper = self._keeper
        started = self._monotonic()
        mailboxes = list(self._mailboxes())
        try:
            result: Round = await self._call(self._table, self._table.heartbeat, self.node_id, self.address,
                                             mailboxes, self.settings.lease_seconds)
        except (psycopg.Error, LeaseUnavailable) as exc:
            self.renewal_failures += 1
            if self.renewal_failures == 1 or self.renewal_failures % 10 == 0:
                log.warning("cluster: heartbeat failed (%d in a row): %s", self.renewal_failures, exc)
            return
        if self.renewal_failures:
            log.info("cluster: heartbeat works again after %d failure(s)", self.renewal_failures)
        self.renewal_failures = 0
        for mailbox_id in self.absorb(result, started, mailboxes, nursery):
            try:
                generation_or_none = await self._call(self._table, self._table.acquire, self.node_id, mailbox_id,
                                                      self.settings.lease_seconds)
            except (psycopg.Error, LeaseUnavailable) as exc:
                log.warning("cluster: taking the lease on mailbox %s failed: %s", mailbox_id, exc)
                return
            if generation_or_none is not None and self.tenure.valid(self._monotonic()):
                self._held[mailbox_id] = generation_or_none
                self.holders[mailbox_id] = self.node_id
                log.info("cluster: node %s holds mailbox %s (generation %d)", self.node_id, mailbox_id,
                         generation_or_none)
                keeper.hold(mailbox_id)

    def absorb(self, result: Round, started: float, mailboxes: Collection[str], nursery: trio.Nursery
               ) -> tuple[str, ...]:
        """Apply a committed heartbeat that began at ``started``: drop leases the database no
        longer gives this node, extend the tenure, start releasing what rebalancing gives away.
        Returns the free leases this node should now take."""
        keeper = self._keeper
        self.live_nodes = result.live_nodes
        self.holders = dict(result.holders)
        for mailbox_id, generation in list(self._held.items()):
            if result.renewed.get(mailbox_id) != generation:
                # Expired in the database (renewals failed for too long) and maybe taken over.
                log.warning("cluster: lease on mailbox %s lost; stopping its lane", mailbox_id)
                del self._held[mailbox_id]
                nursery.start_soon(keeper.drop, mailbox_id, 0.0)
        self.tenure.renewed(started)
        self._changed.set()
        for mailbox_id, generation in result.renewed.items():
            if mailbox_id not in self._held and mailbox_id not in self._releasing:
                # Still ours in the database though the lane was stopped (renewals were late,
                # not lost): carry on with it.
                self._held[mailbox_id] = generation
                keeper.hold(mailbox_id)
        decided = plan(self.node_id, result.live_nodes, mailboxes, result.holders)
        for mailbox_id in decided.release:
            if mailbox_id in self._held and mailbox_id not in self._releasing:
                self._releasing.add(mailbox_id)
                nursery.start_soon(self._release, mailbox_id)
        return decided.take

    async def _release(self, mailbox_id: str) -> None:
        """Rebalancing: stop the lane (its sends finish, the lease is still renewed meanwhile),
        then free the lease for the node that should hold it."""
        try:
            await self._keeper.drop(mailbox_id, self._release_grace)
            generation = self._held.pop(mailbox_id, None)
            if generation is not None:
                await self._call(self._table, self._table.release, self.node_id, mailbox_id, generation)
                log.info("cluster: node %s released mailbox %s to rebalance", self.node_id, mailbox_id)
        except (psycopg.Error, LeaseUnavailable) as exc:
            log.warning("cluster: releasing mailbox %s failed (it expires instead): %s", mailbox_id, exc)
        finally:
            self._releasing.discard(mailbox_id)

    async def guard(self) -> None:
        """Stops every lane when renewals have failed for lease_seconds - safety_seconds: the
        sends in flight get half the safety margin, then are cut, all before the lease can
        expire in the database and another node take the mailbox."""
        keeper = self._keeper
        while True:
            wait = self.tenure.valid_until - self._monotonic()
            if wait <= 0 and self._held:
                lost, self._held = self._held, {}
                log.error("cluster: no lease renewal for %.1fs; stopping the lanes of %d mailbox(es) before "
                          "their leases can expire", self.settings.lease_seconds - self.settings.safety_seconds,
                          len(lost))
                async with trio.open_nursery() as stopping:
                    for mailbox_id in lost:
                        stopping.start_soon(keeper.drop, mailbox_id, self.settings.safety_seconds / 2)
                continue
            # Leases are only taken while the tenure is valid, so with none valid there is
            # nothing to watch until the next renewal.
            with trio.move_on_after(wait if wait > 0 else float("inf")):
                await self._changed.wait()
            self._changed = trio.Event()

    async def _leave(self) -> None:
        """Graceful stop: the lanes are already stopped; free every lease at once so the other
        nodes take the mailboxes over without waiting for expiry."""
        self._held = {}
        self.tenure.lapse()
        try:
            await self._call(self._table, self._table.leave, self.node_id)
            log.info("cluster: node %s left the cluster and released its leases", self.node_id)
        except (psycopg.Error, LeaseUnavailable) as exc:
            log.warning("cluster: leaving the cluster failed (the leases expire instead): %s", exc)
        self._table.close()
        self._reader.close()
