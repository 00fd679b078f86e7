"""Composition root: builds every room, runs them in one trio nursery, handles signals."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any, Callable

import trio

from dripd import logs
from dripd.clock import Clock
from dripd.config import Config, MailboxConfig, load_config
from dripd.control import Control
from dripd.engine import Engine
from dripd.errors import ConfigError
from dripd.health import MailboxHealth
from dripd.hookspecs import Detector, PluginContext, Transport
from dripd.plugins import Plugins
from dripd.reactions import Reactions
from dripd.scheduler import Lane, Scheduler
from dripd.store import Store, open_store
from dripd.systemd import Notifier, watchdog_interval
from dripd.throttle import Limits, MailboxLimiter

log = logging.getLogger("dripd")

HISTORY_SECONDS = 2 * 86400  # enough send history to rebuild daily and hourly caps
DETECTOR_CATCH_UP_SECONDS = 10.0  # how long sends wait at start-up for detectors to read missed mail
MAINTENANCE_SECONDS = 900  # pruning the send log and refreshing STATUS= need not be frequent


def limits_of(mailbox: MailboxConfig) -> Limits:
    return Limits(
        daily_cap=mailbox.daily_cap,
        hourly_cap=mailbox.hourly_cap,
        burst=mailbox.burst,
        jitter_seconds=mailbox.jitter_seconds,
        warmup=tuple((int(days), int(cap)) for days, cap in mailbox.warmup),
        warmup_start=mailbox.warmup_start,
        timezone=mailbox.timezone,
    )


class _StoreState:
    """PluginState backed by the store's plugin_state table, namespaced per plugin and mailbox."""

    def __init__(self, store: Store, namespace: str) -> None:
        self._store = store
        self._namespace = namespace

    async def get(self, key: str) -> str | None:
        return await self._store.plugin_state_get(f"{self._namespace}:{key}")

    async def set(self, key: str, value: str) -> None:
        await self._store.plugin_state_set(f"{self._namespace}:{key}", value)


class Daemon:
    """One running dripd. ``run`` returns after a graceful stop."""

    def __init__(
        self, config: Config, plugins: Plugins, *, config_path: Path | None = None,
        clock: Clock | None = None, notifier: Notifier | None = None, handle_signals: bool = True,
    ) -> None:
        self.config = config
        self.plugins = plugins
        self.config_path = config_path
        self._clock = clock
        self.notifier = notifier or Notifier()
        self.handle_signals = handle_signals
        self.scheduler = Scheduler()
        self.store: Store = None  # type: ignore[assignment]
        self.engine: Engine = None  # type: ignore[assignment]
        self.control: Control = None  # type: ignore[assignment]
        self.reactions: Reactions = None  # type: ignore[assignment]
        self.transports: dict[str, Transport] = {}
        self.uncertain_at_start = 0
        self.started_at = 0.0
        self._nursery: trio.Nursery | None = None
        self._stop_requested = trio.Event()
        self.extra_services: list[Callable[..., Any]] = []  # started after the lanes (the API)
        # Run once the engine exists, before recovery and the lanes (e.g. install tracking).
        self.prepare: list[Callable[["Daemon"], None]] = []
        self.health = MailboxHealth(self)

    @property
    def clock(self) -> Clock:
        assert self._clock is not None
        return self._clock

    def _transport(self, mailbox: MailboxConfig) -> Transport:
        context = PluginContext(now=self.clock.now, state=_StoreState(self.store, f"{mailbox.transport}:{mailbox.id}"))
        return self.plugins.build_transport(mailbox, context)

    def _detectors(self, mailbox: MailboxConfig) -> list[Detector]:
        """Detectors whose config table this mailbox has (e.g. ``[mailboxes.imap]``)."""
        return self.plugins.build_detectors(
            mailbox, lambda name: PluginContext(now=self.clock.now, state=_StoreState(self.store, f"{name}:{mailbox.id}")))

    async def _supervise_detector(self, mailbox_id: str, detector: Any, *,
                                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run a detector; if it dies of a bug, log it and start it again with backoff.
        The daemon does not wait for it to connect: a mail server being down is no reason to
        hold back READY or the sends."""
        task_status.started()
        delay = 1.0
        while True:
            try:
                await detector.run(self.reactions.apply)
                return
            except Exception:
                log.exception("mailbox %s: detector %s failed; restarting in %.0fs", mailbox_id,
                              type(detector).__name__, delay)
            await trio.sleep(delay)
            delay = min(delay * 2, 300.0)

    async def _lane(self, mailbox: MailboxConfig) -> Lane:
        now = self.clock.now()
        history = await self.store.send_history(mailbox.id, now - HISTORY_SECONDS)
        limiter = MailboxLimiter(limits_of(mailbox), history=history)
        lane = Lane(
            mailbox.id, limiter, self.clock, self.store, self.engine.run,
            horizon=self.config.daemon.horizon_seconds, limit=self.config.daemon.queue_limit,
            concurrency=mailbox.concurrency,
        )
        paused = await self.store.mailbox_paused(mailbox.id)
        if paused:
            lane.paused_reason = paused
        return lane

    async def run(self, *, task_status: trio.TaskStatus["Daemon"] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until stopped. Must be called inside ``trio_asyncio.open_loop()``."""
        if self._clock is None:
            self._clock = Clock()
        self.started_at = self.clock.now()
        self.store = await open_store(self.config.daemon.database)
        try:
            for mailbox in self.config.mailboxes:
                self.transports[mailbox.id] = self._transport(mailbox)
            self.engine = Engine(self.config, self.store, self.transports, self.scheduler, self.clock, self.plugins)
            self.control = Control(self.config, self.store, self.scheduler, self.clock)
            self.reactions = Reactions(self.config, self.store, self.scheduler, self.clock)
            self.reactions.metrics = self.engine.metrics
            for prepare in self.prepare:
                prepare(self)
            # Recovery happens before READY and before any lane runs: no step sent twice.
            self.uncertain_at_start = await self.engine.recover()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                # Detectors first: a reply that arrived while dripd was stopped must be read
                # before a follow-up to the same contact can go out.
                detectors = [(m.id, d) for m in self.config.mailboxes for d in self._detectors(m)]
                for mailbox_id, detector in detectors:
                    await nursery.start(self._supervise_detector, mailbox_id, detector)
                with trio.move_on_after(DETECTOR_CATCH_UP_SECONDS):  # a server being down must not hold sends
                    for _, detector in detectors:
                        caught_up = getattr(detector, "caught_up", None)
                        if caught_up is not None:
                            await caught_up.wait()
                for mailbox in self.config.mailboxes:
                    lane = await self._lane(mailbox)
                    self.scheduler.add(lane)
                    await nursery.start(lane.run)
                for service in self.extra_services:
                    await nursery.start(service, self)
                if self.handle_signals:
                    nursery.start_soon(self._signals)
                nursery.start_soon(self._maintenance)
                interval = watchdog_interval()
                if interval is not None and self.notifier.enabled:
                    nursery.start_soon(self._watchdog, interval)
                self.notifier.notify("READY=1", f"STATUS={self.status_line()}")
                log.info("dripd ready: %d mailbox(es), %d uncertain send(s) from before",
                         len(self.config.mailboxes), self.uncertain_at_start)
                task_status.started(self)
                await self._stop_requested.wait()
                await self._graceful_stop(nursery)
        finally:
            for transport in self.transports.values():
                with trio.CancelScope(shield=True):
                    try:
                        await transport.aclose()
                    except Exception:
                        log.exception("closing a transport failed")
            with trio.CancelScope(shield=True):
                await self.store.close()
            log.info("dripd stopped")

    def stop(self) -> None:
        self._stop_requested.set()

    @property
    def stop_requested(self) -> trio.Event:
        """Set when a graceful stop begins (services such as the API shut down on it)."""
        return self._stop_requested

    async def _graceful_stop(self, nursery: trio.Nursery) -> None:
        """No new sends start; in-flight ones finish within the grace period; then everything ends."""
        self.notifier.notify("STOPPING=1")
        log.info("stopping: letting in-flight sends finish")
        self.scheduler.stop()
        with trio.move_on_after(self.config.daemon.shutdown_grace_seconds):
            while any(lane.busy() for lane in self.scheduler.lanes.values()):
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()

    async def _signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    await self.reload()
                elif self._stop_requested.is_set():
                    log.warning("second stop signal: stopping at once")
                    assert self._nursery is not None
                    self._nursery.cancel_scope.cancel()
                else:
                    self.stop()

    async def reload(self) -> None:
        """Re-read the config: caps, windows and mailboxes change without dropping work."""
        if self.config_path is None:
            return
        self.notifier.notify("RELOADING=1", f"MONOTONIC_USEC={int(trio.current_time() * 1e6)}")
        try:
            new = load_config(self.config_path, self.plugins.config_sections(), self.plugins.transports)
        except ConfigError as exc:
            log.error("reload refused, keeping the running config: config error: %s", exc.message)
            self.notifier.notify("READY=1", f"STATUS=reload failed: {exc.message}")
            return
        await self.apply(new)
        self.notifier.notify("READY=1", f"STATUS={self.status_line()}")
        log.info("configuration reloaded")

    async def apply(self, new: Config) -> None:
        old_ids = {m.id for m in self.config.mailboxes}
        self.config = new
        self.engine.config = new
        self.control.config = new
        self.reactions.config = new
        logs.set_level(new.daemon.log_level)
        for mailbox in new.mailboxes:
            lane = self.scheduler.lanes.get(mailbox.id)
            if lane is not None:
                lane.limiter.update(limits_of(mailbox))
                if lane.paused_reason == "removed from the configuration":
                    lane.paused_reason = None
                lane.invalidate()
            elif self._nursery is not None:
                self.transports[mailbox.id] = self.engine.transports[mailbox.id] = self._transport(mailbox)
                lane = await self._lane(mailbox)
                self.scheduler.add(lane)
                await self._nursery.start(lane.run)
        for removed in old_ids - {m.id for m in new.mailboxes}:
            self.scheduler.lanes[removed].paused_reason = "removed from the configuration"

    async def _maintenance(self) -> None:
        while True:
            await trio.sleep(MAINTENANCE_SECONDS)
            now = self.clock.now()
            await self.store.prune_send_log(now - HISTORY_SECONDS)
            self.notifier.notify(f"STATUS={self.status_line()}")

    async def _watchdog(self, interval: float) -> None:
        """Ping systemd only while every lane's loop keeps turning: each round nudges the lanes
        and pings if all of them came round since. A wedged scheduler stops the pings, so
        systemd restarts the service (WatchdogSec=)."""
        while True:
            asked_at = trio.current_time()
            for lane in self.scheduler.lanes.values():
                lane.nudge()
            await trio.sleep(interval)
            stuck = [lane.mailbox_id for lane in self.scheduler.lanes.values() if lane.last_progress < asked_at]
            if stuck:
                log.error("scheduler not making progress for mailbox(es) %s: withholding the watchdog ping",
                          ", ".join(stuck))
            else:
                self.notifier.notify("WATCHDOG=1")

    def status_line(self) -> str:
        sends_today = sum(lane.limiter.sends_today(self.clock.now()) for lane in self.scheduler.lanes.values())
        return f"queue depth {self.scheduler.queue_depth()}, sends today {sends_today}"
