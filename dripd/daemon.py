"""Runs one dripd: opens the store, builds the services (``dripd.root``), and runs them in one
trio nursery: detectors, the scheduler's lanes, the listeners, the event consumers, signals.

A reload (SIGHUP) swaps the configuration in one place and applies what changed (see
``dripd.reload``); a stop lets in-flight sends finish first.
"""

from __future__ import annotations

import logging
import signal
from functools import partial
from pathlib import Path
from typing import Any

import trio

from dripd import logs
from dripd.clock import Clock
from dripd.cluster.node import ClusterCollector, ClusterNode, forget_mailbox_gauges
from dripd.cluster.wake import keep_lanes_fresh
from dripd.config import Config, MailboxConfig, load_config
from dripd.control import Control
from dripd.engine import Engine
from dripd.config_files import file_problems
from dripd.config_load import raise_all
from dripd.errors import ConfigError
from dripd.events import Event, EventStream, consume
from dripd.health import MailboxHealth, watch_health
from dripd.hookspecs import PluginContext
from dripd.plugins import Plugins
from dripd.reactions import Reactions
from dripd.reload import apply_config
from dripd.root import Services, build, plugin_context
from dripd.scheduler import Lane, Scheduler
from dripd.store.backend import Backend, open_backend
from dripd.systemd import Notifier, watchdog_interval
from dripd.throttle import Limits, MailboxLimiter

log = logging.getLogger("dripd")

HISTORY_SECONDS = 2 * 86400  # enough send history to rebuild daily and hourly caps
DETECTOR_CATCH_UP_SECONDS = 10.0  # how long sends wait at start-up for detectors to read missed mail
MAINTENANCE_SECONDS = 900  # pruning the send log and refreshing STATUS= need not be frequent
PLUGIN_EVENT_BUFFER = 10_000  # events waiting for the plugin hook before it starts missing them


def limits_of(mailbox: MailboxConfig) -> Limits:
    return Limits(
        daily_cap=mailbox.daily_cap,
        hourly_cap=mailbox.hourly_cap,
        burst=mailbox.burst,
        jitter_seconds=mailbox.jitter_seconds,
        warmup=tuple((int(days), int(cap)) for days, cap in mailbox.warmup),
        warmup_start=mailbox.warmup_start,
        timezone=mailbox.timezone,
        daily_new_cap=mailbox.daily_new_cap,
    )


async def _leased_later(mailbox: MailboxConfig) -> None:
    """A cluster node starts a mailbox added by a reload when it takes its lease (the lease
    manager reads the configuration in force at every heartbeat)."""


def _context_for(services: Services, mailbox_id: str, plugin: str) -> PluginContext:
    return plugin_context(services.store, services.clock, plugin, mailbox_id)


class Daemon:
    """One running dripd. ``run`` returns after a graceful stop; ``services`` exists once it started."""

    def __init__(
        self, config: Config, plugins: Plugins, *, config_path: Path | None = None,
        clock: Clock | None = None, notifier: Notifier | None = None, handle_signals: bool = True,
    ) -> None:
        self._initial_config = config
        self.plugins = plugins
        self.config_path = config_path
        self._clock = clock
        self.notifier = notifier or Notifier()
        self.handle_signals = handle_signals
        self._services: Services | None = None
        self._nursery: trio.Nursery | None = None
        # Set at READY=1: lanes started before it wait for it to dispatch. A lane's workers (32
        # and more each) sending while start-up still runs took the scheduler's turns from it:
        # with 50 mailboxes and 100,000 due, READY came after 16,872 sends, then 62,971 once
        # every lane ran 32 workers (bench/bench_dispatch.py), and systemd waits for it.
        self._dispatching = trio.Event()

    # -- what tests and tools read of a running daemon ---------------------------------------

    @property
    def services(self) -> Services:
        assert self._services is not None, "the daemon has not started"
        return self._services

    @property
    def config(self) -> Config:
        return self.services.config if self._services is not None else self._initial_config

    @property
    def clock(self) -> Clock:
        assert self._clock is not None
        return self._clock

    @property
    def store(self) -> Backend:
        return self.services.store

    @property
    def control(self) -> Control:
        return self.services.control

    @property
    def engine(self) -> Engine:
        return self.services.engine

    @property
    def reactions(self) -> Reactions:
        return self.services.reactions

    @property
    def scheduler(self) -> Scheduler:
        return self.services.scheduler

    @property
    def health(self) -> MailboxHealth:
        return self.services.health

    @property
    def uncertain_at_start(self) -> int:
        return self.services.uncertain_at_start

    # -- running -------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus["Daemon"] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until stopped. Must be called inside ``trio_asyncio.open_loop()``."""
        if self._clock is None:
            self._clock = Clock()
        events = EventStream()
        config = self._initial_config
        # A PostgreSQL store is shared with other nodes: this node's leases fence its writes.
        cluster = self._cluster_node(config.store.url, config.store.password()) if config.store.url else None
        store = await open_backend(config, events, fence=cluster.fence if cluster else None,
                                   node_id=cluster.node_id if cluster else None)
        try:
            self._services = services = build(self._initial_config, self.plugins, store, events, self.clock,
                                              cluster=cluster)
            # Subscribed before recovery, so the plugin hook also hears what recovery resolves.
            plugin_events = events.subscribe("plugins", PLUGIN_EVENT_BUFFER)
            if cluster is None:
                # Recovery happens before READY and before any lane runs: no step sent twice.
                services.state.uncertain_at_start = await services.engine.recover()
            else:
                await cluster.join()  # each mailbox is recovered when its lease is taken
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(consume, plugin_events, self._notify_plugins, "plugins")
                await nursery.start(services.webhooks.run)
                if cluster is None:
                    await self._start_detectors(nursery, services.config.mailboxes)
                    for mailbox in services.config.mailboxes:
                        await self.start_lane(mailbox)
                else:
                    await self._start_cluster(nursery, cluster, store)
                await self._start_listeners(nursery)
                if self.handle_signals:
                    nursery.start_soon(self._signals)
                nursery.start_soon(self._maintenance)
                interval = watchdog_interval()
                if interval is not None and self.notifier.enabled:
                    nursery.start_soon(self._watchdog, interval)
                self.notifier.notify("READY=1", f"STATUS={self.status_line()}")
                self._dispatching.set()
                log.info("dripd ready: %d mailbox(es), %d uncertain send(s) from before",
                         len(services.config.mailboxes), services.uncertain_at_start)
                task_status.started(self)
                await services.stop_requested.wait()
                await self._graceful_stop(nursery)
                events.close()
        finally:
            if self._services is not None:
                if self._services.engine.wire_journal is not None:
                    self._services.engine.wire_journal.close()
                for transport in self._services.transports.values():
                    with trio.CancelScope(shield=True):
                        try:
                            await transport.aclose()
                        except Exception:
                            log.exception("closing a transport failed")
            with trio.CancelScope(shield=True):
                await store.close()
            log.info("dripd stopped")

    async def _notify_plugins(self, event: Event) -> None:
        self.plugins.notify(event)

    async def _start_detectors(self, nursery: trio.Nursery, mailboxes: list[MailboxConfig]) -> None:
        """Detectors first: a reply that arrived while dripd was stopped must be read before a
        follow-up to the same contact can go out (up to DETECTOR_CATCH_UP_SECONDS)."""
        services = self.services
        detectors = []
        for mailbox in mailboxes:
            context_for = partial(_context_for, services, mailbox.id)
            for detector in self.plugins.build_detectors(mailbox, context_for):
                detectors.append(detector)
                await nursery.start(self._supervise_detector, mailbox.id, detector)
        with trio.move_on_after(DETECTOR_CATCH_UP_SECONDS):  # a server being down must not hold sends
            for detector in detectors:
                caught_up = getattr(detector, "caught_up", None)
                if caught_up is not None:
                    await caught_up.wait()

    async def _supervise_detector(self, mailbox_id: str, detector: Any, *,
                                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run a detector; if it dies of a bug, log it and start it again with backoff.
        The daemon does not wait for it to connect: a mail server being down is no reason to
        hold back READY or the sends."""
        task_status.started()
        delay = 1.0
        while True:
            try:
                await detector.run(self.services.reactions.apply)
                return
            except Exception:
                log.exception("mailbox %s: detector %s failed; restarting in %.0fs", mailbox_id,
                              type(detector).__name__, delay)
            await trio.sleep(delay)
            delay = min(delay * 2, 300.0)

    async def start_lane(self, mailbox: MailboxConfig, nursery: trio.Nursery | None = None) -> Lane:
        """A new mailbox's lane, with its caps rebuilt from recent sends and its pause kept; it
        runs in ``nursery`` (a cluster node's per-mailbox one), else in the daemon's."""
        services = self.services
        nursery = nursery or self._nursery
        assert nursery is not None
        now = self.clock.now()
        history = await services.store.send_history(mailbox.id, now - HISTORY_SECONDS)
        first_emails = await services.store.first_email_history(mailbox.id, now - HISTORY_SECONDS)
        daemon_settings = services.config.daemon
        parallelism = self.plugins.lane_parallelism(mailbox, f"mailbox {mailbox.id}",
                                                    queues=services.engine.hand_over.hands_ahead(mailbox.id))
        lane = Lane(
            mailbox.id, MailboxLimiter(limits_of(mailbox), history=history, new_history=first_emails), self.clock, services.store,
            services.engine.run, horizon=daemon_settings.horizon_seconds, limit=daemon_settings.queue_limit,
            concurrency=parallelism.concurrency, handed=parallelism.handed,
            claim_ahead=services.engine.wire_journal is not None,  # not on a cluster node (dripd/send_slots.py)
            dispatch_after=self._dispatching,
        )
        paused = await services.store.mailbox_paused(mailbox.id)
        if paused:
            lane.paused_reason = paused
        services.scheduler.add(lane)
        await nursery.start(lane.run)
        return lane

    # -- several nodes (PostgreSQL): a mailbox runs here only while this node holds its lease ----

    async def _start_cluster(self, nursery: trio.Nursery, cluster: ClusterNode, store: Backend) -> None:
        from dripd.store.postgres import PostgresStore  # a cluster's store is PostgreSQL

        services = self.services
        services.metrics.registry.register(ClusterCollector(cluster))
        await nursery.start(cluster.run)
        listen = store.listen_due if isinstance(store, PostgresStore) else None
        await nursery.start(keep_lanes_fresh, services.scheduler, store, listen, services.config.cluster.poll_seconds)

    def _cluster_node(self, url: str, password: str | None) -> ClusterNode:
        """Built before the store: the store checks its fence on every ledger write."""
        config = self._initial_config
        return ClusterNode(
            config.cluster, url, password, address=config.cluster.address or config.api.listen or "",
            mailboxes=lambda: [m.id for m in self.config.mailboxes], host=self.host_mailbox,
            lane_of=lambda mailbox_id: self.services.scheduler.lanes.get(mailbox_id),
            release_grace=config.daemon.shutdown_grace_seconds)

    async def host_mailbox(self, mailbox_id: str) -> None:
        """One mailbox on a cluster node, from taking its lease until cancelled (the lease went):
        the rows a previous holder left 'sending' are resolved first, then its detectors and its
        lane run; its transport's connections close when it leaves."""
        services = self.services
        mailbox = services.config.mailbox(mailbox_id)
        if mailbox is None or services.stop_requested.is_set():
            return  # removed from the configuration (released at the next heartbeat), or stopping
        lane: Lane | None = None
        try:
            services.state.uncertain_at_start += await services.engine.recover(mailbox_id)
            async with trio.open_nursery() as nursery:
                await self._start_detectors(nursery, [mailbox])
                lane = await self.start_lane(mailbox, nursery)
                log.info("mailbox %s runs on this node", mailbox_id)
        finally:
            if lane is not None and services.scheduler.lanes.get(mailbox_id) is lane:
                del services.scheduler.lanes[mailbox_id]
            forget_mailbox_gauges(services.metrics, mailbox_id)
            log.info("mailbox %s no longer runs on this node", mailbox_id)
            transport = services.transports.get(mailbox_id)
            if transport is not None:
                with trio.CancelScope(shield=True):
                    try:
                        await transport.aclose()
                    except Exception:
                        log.exception("mailbox %s: closing its transport failed", mailbox_id)

    async def _start_listeners(self, nursery: trio.Nursery) -> None:
        """The control API always; tracking and /metrics when configured. Imported here: the
        HTTP stack is only loaded by a daemon that serves it."""
        from dripd.api.metrics_server import serve_metrics
        from dripd.api.server import serve_control_api
        from dripd.tracking.app import TrackingApp
        from dripd.tracking.engagement import Tracking
        from dripd.tracking.service import serve_tracking

        services = self.services
        await nursery.start(serve_control_api, services)
        await nursery.start(watch_health, services.health)
        listen = services.config.tracking.listen
        if listen:
            def app(tracking: Tracking) -> TrackingApp:
                return TrackingApp(services.live, services.store, services.clock, tracking.signer)

            await nursery.start(serve_tracking, services.engagement, app, listen, services.stop_requested)
        if services.config.metrics.listen:
            await nursery.start(serve_metrics, services)

    def stop(self) -> None:
        self.services.stop_requested.set()

    async def _graceful_stop(self, nursery: trio.Nursery) -> None:
        """No new sends start; in-flight ones finish within the grace period; then everything ends."""
        self.notifier.notify("STOPPING=1")
        log.info("stopping: letting in-flight sends finish")
        scheduler = self.services.scheduler
        scheduler.stop()
        with trio.move_on_after(self.services.config.daemon.shutdown_grace_seconds):
            while any(lane.busy() for lane in scheduler.lanes.values()):
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()

    async def _signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    await self.reload()
                elif self.services.stop_requested.is_set():
                    log.warning("second stop signal: stopping at once")
                    assert self._nursery is not None
                    self._nursery.cancel_scope.cancel()
                else:
                    self.stop()

    async def reload(self) -> None:
        """Re-read the config file and apply it; a bad file keeps the running config."""
        if self.config_path is None:
            return
        self.notifier.notify("RELOADING=1", f"MONOTONIC_USEC={int(trio.current_time() * 1e6)}")
        try:
            new = load_config(self.config_path, self.plugins.config_sections(), self.plugins.transports)
            # A reload naming a missing secret would fail later, at a send: refuse it now.
            raise_all(file_problems(new, self.plugins.config_sections()))
            for warning in self.plugins.check_parallelism(new):
                log.warning("reload: %s", warning)
        except ConfigError as exc:
            log.error("reload refused, keeping the running config: config error: %s", exc.message)
            self.notifier.notify("READY=1", f"STATUS=reload failed: {exc.message}")
            return
        await self.apply(new)
        self.notifier.notify("READY=1", f"STATUS={self.status_line()}")
        log.info("configuration reloaded")

    async def apply(self, new: Config) -> None:
        """Put ``new`` in force (see ``dripd.reload.apply_config`` for what changes live)."""
        logs.set_level(new.daemon.log_level)
        assert self._nursery is not None
        start = self.start_lane if self.services.cluster is None else _leased_later
        await apply_config(self.services, new, start, limits_of, self._nursery.start_soon)

    async def _maintenance(self) -> None:
        while True:
            await trio.sleep(MAINTENANCE_SECONDS)
            now = self.clock.now()
            await self.services.store.prune_send_log(now - HISTORY_SECONDS)
            self.notifier.notify(f"STATUS={self.status_line()}")

    async def _watchdog(self, interval: float) -> None:
        """Ping systemd only while every lane's loop keeps turning: each round nudges the lanes
        and pings if all of them came round since. A wedged scheduler stops the pings, so
        systemd restarts the service (WatchdogSec=)."""
        lanes = self.services.scheduler.lanes
        while True:
            asked_at = trio.current_time()
            for lane in lanes.values():
                lane.nudge()
            await trio.sleep(interval)
            stuck = [lane.mailbox_id for lane in lanes.values() if lane.last_progress < asked_at]
            if stuck:
                log.error("scheduler not making progress for mailbox(es) %s: withholding the watchdog ping",
                          ", ".join(stuck))
            else:
                self.notifier.notify("WATCHDOG=1")

    def status_line(self) -> str:
        scheduler = self.services.scheduler
        sends_today = sum(lane.limiter.sends_today(self.clock.now()) for lane in scheduler.lanes.values())
        return f"queue depth {scheduler.queue_depth()}, sends today {sends_today}"
