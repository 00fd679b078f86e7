"""Keeps this node's lanes in step with what other nodes write: work made due sooner (a
NOTIFY from the store wakes the lane at once) and, every ``poll_seconds``, a re-read of each
lane's due work and pause state (the fallback when a notification was missed, and how a pause
given on another node's API reaches the lane).
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable, Protocol

import trio

from dripd.errors import StoreError
from dripd.scheduler import Scheduler

log = logging.getLogger("dripd.cluster")

REMOVED = "removed from the configuration"  # dripd.reload's reason: kept, it is this node's own


class PauseSource(Protocol):
    async def mailbox_paused(self, mailbox_id: str) -> str | None: ...


Listen = Callable[..., Awaitable[None]]
"""``PostgresStore.listen_due(on_due, task_status=...)``."""


async def keep_lanes_fresh(scheduler: Scheduler, store: PauseSource, listen: Listen | None, poll_seconds: float,
                           *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    async with trio.open_nursery() as nursery:
        if listen is not None:
            # A hint only: started in the background, so a database slow to answer LISTEN
            # never holds the daemon back; polling covers it.
            nursery.start_soon(_listen_forever, listen, scheduler.invalidate)
        task_status.started()
        while True:
            await trio.sleep(poll_seconds)
            for lane in list(scheduler.lanes.values()):
                try:
                    reason = await store.mailbox_paused(lane.mailbox_id)
                except StoreError as exc:
                    log.warning("cluster: cannot read mailbox %s's pause state: %s", lane.mailbox_id, exc.message)
                    break
                if lane.paused_reason != REMOVED and lane.paused_reason != reason:
                    lane.paused_reason = reason
                lane.invalidate()


async def _listen_forever(listen: Listen, on_due: Callable[[str | None], None]) -> None:
    await listen(lambda mailbox_id: on_due(mailbox_id or None))
