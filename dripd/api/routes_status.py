"""The daemon's status and its mailboxes (read-only from config, with live limiter numbers)."""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from dripd import __version__
from dripd.api.deps import ServicesDep
from dripd.api.schemas import PauseBody
from dripd.clock import iso
from dripd.config import MailboxConfig
from dripd.errors import NotFound
from dripd.throttle import Limits

if TYPE_CHECKING:
    from dripd.root import Services

status_router = APIRouter(prefix="/api", tags=["status"])
mailboxes = APIRouter(prefix="/api/mailboxes", tags=["mailboxes"])


@status_router.get("/status", summary="Version, uptime, queue depth and uncertain sends")
async def status(services: ServicesDep) -> dict[str, Any]:
    now = services.clock.now()
    lanes = services.scheduler.lanes.values()
    counters = services.engine.counters
    return {
        "version": __version__,
        "startedAt": iso(services.started_at),
        "uptimeSeconds": round(now - services.started_at, 3),
        "queueDepth": services.scheduler.queue_depth(),
        "inMemory": services.scheduler.heap_size(),
        "uncertainSends": await services.store.count_outbox("uncertain"),
        "uncertainAtStart": services.uncertain_at_start,
        "mailboxes": len(services.config.mailboxes),
        "pausedMailboxes": sorted(lane.mailbox_id for lane in lanes if lane.paused_reason),
        "sendsToday": sum(lane.limiter.sends_today(now) for lane in lanes),
        "counters": {"sent": counters.sent, "retried": counters.retried, "bounced": counters.bounced,
                     "uncertain": counters.uncertain},
        # Several nodes: every node and each mailbox's lease holder. None: one node, no leases.
        "cluster": await services.cluster.status() if services.cluster is not None else None,
    }


def _warmup(limits: Limits, now: float) -> dict[str, Any] | None:
    if limits.warmup_start is None or not limits.warmup:
        return None
    today = dt.datetime.fromtimestamp(math.floor(now), limits.zone).date()
    day = (today - limits.warmup_start).days
    stage = next((i + 1 for i, (days, _) in enumerate(limits.warmup) if day < days), None)
    return {"start": limits.warmup_start.isoformat(), "day": day, "stage": stage, "stages": len(limits.warmup),
            "done": stage is None, "capToday": limits.cap_on(today)}


def mailbox_json(services: "Services", mailbox: MailboxConfig) -> dict[str, Any]:
    now = services.clock.now()
    out: dict[str, Any] = {"id": mailbox.id, "address": mailbox.address, "name": mailbox.name,
                           "transport": mailbox.transport, "timezone": mailbox.timezone,
                           "dailyCap": mailbox.daily_cap, "hourlyCap": mailbox.hourly_cap, "burst": mailbox.burst,
                           "concurrency": mailbox.concurrency}
    if services.cluster is not None:
        out["node"] = services.cluster.holder_of(mailbox.id)  # the live numbers below come from that node
    lane = services.scheduler.lanes.get(mailbox.id)
    if lane is None:
        return out
    out["concurrency"] = lane.concurrency  # in force: the setting, or what the transport carries
    limiter = lane.limiter
    out.update({
        "dailyCapToday": limiter.daily_cap_on(now), "sendsToday": limiter.sends_today(now),
        "sendsLastHour": limiter.sends_in_last_hour(now), "tokensNow": round(limiter.tokens(now), 3),
        "nextSendAt": iso(limiter.next_allowed(now)), "warmup": _warmup(limiter.limits, now),
        "paused": lane.paused_reason is not None, "pausedReason": lane.paused_reason,
        "queueDepth": lane.queue_depth(),
        "dailyNewCap": limiter.limits.daily_new_cap, "newToday": limiter.new_sends_today(now),
    })
    out["health"] = services.health.json_of(mailbox.id)
    return out


def _configured(services: "Services", mailbox_id: str) -> MailboxConfig:
    mailbox = services.config.mailbox(mailbox_id)
    if mailbox is None:
        raise NotFound(f"no mailbox {mailbox_id!r} in the configuration", details={"mailboxId": mailbox_id})
    return mailbox


@mailboxes.get("", summary="Configured mailboxes: caps, sends today, tokens, warm-up, next send time")
async def all_mailboxes(services: ServicesDep) -> dict[str, Any]:
    await services.health.refresh()
    return {"mailboxes": [mailbox_json(services, m) for m in services.config.mailboxes],
            "now": iso(services.clock.now())}  # the daemon's clock: clients show "in 6 min" against it


@mailboxes.get("/{mailbox_id}", summary="One mailbox")
async def one_mailbox(mailbox_id: str, services: ServicesDep) -> dict[str, Any]:
    await services.health.refresh()
    return mailbox_json(services, _configured(services, mailbox_id))


@mailboxes.post("/{mailbox_id}/pause", summary="Stop every send from this mailbox (kept across restarts)")
async def pause_mailbox(mailbox_id: str, services: ServicesDep, body: PauseBody | None = None) -> dict[str, Any]:
    mailbox = _configured(services, mailbox_id)
    await services.control.pause_mailbox(mailbox_id, body.reason if body else PauseBody().reason)
    return mailbox_json(services, mailbox)


@mailboxes.post("/{mailbox_id}/resume", summary="Resume a paused mailbox (e.g. after a bounce-rate pause)")
async def resume_mailbox(mailbox_id: str, services: ServicesDep) -> dict[str, Any]:
    mailbox = _configured(services, mailbox_id)
    await services.control.resume_mailbox(mailbox_id)
    return mailbox_json(services, mailbox)
