"""A reload (SIGHUP) puts a new configuration in force without dropping work.

The configuration is swapped in one place (``LiveConfig``); this module then applies what the
services cannot simply read afresh: lanes' caps, concurrency, horizon and queue limit; a changed
transport (an SMTP host, credentials, a From address) is rebuilt and the old one closed once
its sends are done; new mailboxes get a lane, removed ones are held. Listeners and detectors
are bound at start: a change there is named in the log as needing a restart.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import trio

from dripd.config import Config, MailboxConfig
from dripd.hookspecs import Transport
from dripd.root import Services
from dripd.scheduler import Lane
from dripd.throttle import Limits

log = logging.getLogger("dripd.reload")

REMOVED = "removed from the configuration"
CLOSE_GRACE_SECONDS = 300.0  # a replaced transport closes once its lane is idle, or after this


def _transport_key(mailbox: MailboxConfig) -> tuple[Any, ...]:
    """What a mailbox's transport is built from: a change here means a new transport."""
    return (mailbox.transport, mailbox.address, mailbox.name, mailbox.domain,
            repr(mailbox.plugin_section(mailbox.transport)))


def _detector_key(mailbox: MailboxConfig, detectors: list[str]) -> tuple[Any, ...]:
    return tuple(repr(mailbox.plugin_section(name)) for name in detectors)


def needs_restart(old: Config, new: Config, detectors: list[str]) -> list[str]:
    """The settings that changed but only take effect after a restart."""
    changed = []
    for label, before, after in (
        ("[daemon] socket", old.daemon.socket, new.daemon.socket),
        ("[daemon] database", old.daemon.database, new.daemon.database),
        ("[store]", old.store, new.store),
        ("[api] listen", old.api.listen, new.api.listen),
        ("[tracking] listen", old.tracking.listen, new.tracking.listen),
        ("[tracking] base_url", old.tracking.base_url, new.tracking.base_url),
        ("[tracking] secret_file", old.tracking.secret_file, new.tracking.secret_file),
        ("[metrics] listen", old.metrics.listen, new.metrics.listen),
    ):
        if before != after:
            changed.append(label)
    before_boxes = {m.id: m for m in old.mailboxes}
    for mailbox in new.mailboxes:
        previous = before_boxes.get(mailbox.id)
        if previous is not None and _detector_key(previous, detectors) != _detector_key(mailbox, detectors):
            changed.append(f"mailbox {mailbox.id}: detector settings")
    return changed


async def _close_when_idle(transport: Transport, lane: Lane | None) -> None:
    with trio.move_on_after(CLOSE_GRACE_SECONDS):
        while lane is not None and lane.busy():
            await trio.sleep(0.05)
    try:
        await transport.aclose()
    except Exception:
        log.exception("closing a replaced transport failed")


async def apply_config(
    services: Services, new: Config, start_lane: Callable[[MailboxConfig], Awaitable[object]],
    limits_of: Callable[[MailboxConfig], Limits], spawn: Callable[..., None],
) -> None:
    """Swap in ``new`` and apply it to the running lanes and transports; ``spawn`` starts a
    background task in the daemon's nursery (closing replaced transports when idle)."""
    old = services.live.swap(new)
    for setting in needs_restart(old, new, list(services.plugins.detectors)):
        log.warning("reload: %s changed; it takes effect after a restart", setting)
    before = {m.id: m for m in old.mailboxes}
    lanes = services.scheduler.lanes
    for mailbox in new.mailboxes:
        lane = lanes.get(mailbox.id)
        if lane is None:
            services.transports[mailbox.id] = services.build_transport(mailbox)
            await start_lane(mailbox)
            log.info("reload: mailbox %s added", mailbox.id)
            continue
        previous = before.get(mailbox.id)
        if previous is None or _transport_key(previous) != _transport_key(mailbox):
            replaced = services.transports.get(mailbox.id)
            services.transports[mailbox.id] = services.build_transport(mailbox)
            log.info("reload: mailbox %s uses its new transport settings from the next send", mailbox.id)
            if replaced is not None:
                spawn(_close_when_idle, replaced, lane)
        lane.limiter.update(limits_of(mailbox))
        lane.horizon = new.daemon.horizon_seconds
        lane.limit = new.daemon.queue_limit
        parallelism = services.plugins.lane_parallelism(mailbox, f"mailbox {mailbox.id}",
                                                        queues=services.engine.hand_over.hands_ahead(mailbox.id))
        if (lane.concurrency, lane.handed) != (parallelism.concurrency, parallelism.handed):
            lane.set_concurrency(parallelism.concurrency, parallelism.handed)
        if lane.paused_reason == REMOVED:
            lane.paused_reason = None
        lane.invalidate()
    for removed in set(before) - {m.id for m in new.mailboxes}:
        if removed not in lanes:
            continue  # run by another node of a cluster, or released: nothing to hold here
        lanes[removed].paused_reason = REMOVED
        log.info("reload: mailbox %s removed: its lane holds its contacts", removed)
