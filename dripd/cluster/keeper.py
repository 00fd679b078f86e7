"""Runs each mailbox this node holds (its lane, its detectors) in a cancel scope of its own,
so a lease coming starts it and a lease going stops it without touching the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Protocol

import trio

log = logging.getLogger("dripd.cluster")

RETRY_FIRST_SECONDS = 1.0  # a lane that failed (its recovery hit a database error) starts again...
RETRY_MAX_SECONDS = 60.0  # ...with backoff, for as long as this node holds the lease

HostMailbox = Callable[[str], Awaitable[None]]
"""Runs one mailbox (crash recovery, detectors, lane) until cancelled (``Daemon.host_mailbox``)."""


class StoppableLane(Protocol):
    stopping: bool

    def nudge(self) -> None: ...
    def busy(self) -> bool: ...


@dataclass
class _Hosted:
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)
    dropping: bool = False
    again: bool = False  # held again while it was being dropped: start anew once it has ended


class LaneKeeper:
    """The mailboxes hosted on this node. ``hold`` starts one, ``drop`` stops it: no new send
    starts, sends in flight get ``grace`` seconds, then the lane and its detectors end."""

    def __init__(self, host: HostMailbox, lane_of: Callable[[str], StoppableLane | None]) -> None:
        self._host = host
        self._lane_of = lane_of  # the mailbox's running lane, if it has started
        self._hosted: dict[str, _Hosted] = {}
        self._nursery: trio.Nursery | None = None

    def hosted(self) -> set[str]:
        return set(self._hosted)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def hold(self, mailbox_id: str) -> None:
        current = self._hosted.get(mailbox_id)
        if current is not None:
            current.again = current.again or current.dropping
            return
        assert self._nursery is not None, "the keeper is not running"
        hosted = self._hosted[mailbox_id] = _Hosted()
        self._nursery.start_soon(self._run_one, mailbox_id, hosted)

    async def _run_one(self, mailbox_id: str, hosted: _Hosted) -> None:
        try:
            with hosted.scope:
                delay = RETRY_FIRST_SECONDS
                while True:
                    try:
                        await self._host(mailbox_id)
                        return
                    except Exception:
                        # The lease is still this node's: a mailbox left without its lane would
                        # send from nowhere. Start it again (the database may be back by then).
                        log.exception("mailbox %s: its lane failed; starting it again in %.0fs", mailbox_id, delay)
                    await trio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_SECONDS)
        finally:
            if self._hosted.get(mailbox_id) is hosted:
                del self._hosted[mailbox_id]
            hosted.done.set()
            if hosted.again:
                self.hold(mailbox_id)

    async def drop(self, mailbox_id: str, grace: float) -> None:
        """Stop the mailbox's lane and wait until it has ended (sends in flight get ``grace``)."""
        hosted = self._hosted.get(mailbox_id)
        if hosted is None:
            return
        hosted.dropping, hosted.again = True, False
        lane = self._lane_of(mailbox_id)
        log.info("mailbox %s: stopping its lane on this node", mailbox_id)
        if lane is not None:
            lane.stopping = True  # the lane's gate refuses every send from now on
            lane.nudge()
            with trio.move_on_after(grace):
                while lane.busy():
                    await trio.sleep(0.02)
        hosted.scope.cancel()
        await hosted.done.wait()
