"""Heap of due enrollments, one lane per mailbox.

Each lane holds in memory only enrollments due within the horizon, at most ``limit`` of them,
refilled from the store's index on ``next_run_at`` with keyset paging, so memory does not grow
with the number of enrollments. A send the limiter refuses waits in the lane's ready queue
(follow-ups first, then oldest due first) and the lane sleeps until the limiter's next
allowed moment: throttled work is pushed back, not polled.
"""

from __future__ import annotations

import enum
import heapq
import logging
import math
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol

import trio

from dripd.clock import Clock
from dripd.errors import StoreError
from dripd.parallelism import workers_for
from dripd.quick_init import quick_init
from dripd.send_slots import SendSlots
from dripd.store.api import DueRow
from dripd.throttle import MailboxLimiter

log = logging.getLogger("dripd.scheduler")

MAX_ID = 2**63 - 1  # SQLite INTEGER maximum
_INF_KEY = (math.inf, MAX_ID)


class RunStatus(enum.Enum):
    DONE = "done"  # handled; any new due time was reported through Scheduler.schedule
    THROTTLED = "throttled"  # a send is due but the limiter (or a higher-priority item) said not now
    DROPPED = "dropped"  # nothing to run (ended, held, unknown)


@quick_init
@dataclass(frozen=True)
class RunResult:
    status: RunStatus
    followup: bool = False
    due_at: float = 0.0


class Gate(Protocol):
    """What a run gets from its lane, in the order a send uses it: ``claim_turn()``, its turn to
    claim (in dispatch order); the check-and-take of a send token (``gate(followup, due_at)``),
    right before the ledger claim; and ``on_the_wire()``, held while the transport sends.
    ``paused()``: the mailbox was paused since (a claim made ahead is then released, not sent);
    ``give_back()``: the token bought no send (the claim was refused or failed, its message could
    not be built, or it was withdrawn before the wire)."""

    async def claim_turn(self) -> None: ...

    def paused(self) -> bool: ...

    def __call__(self, followup: bool, due_at: float) -> bool: ...

    def on_the_wire(self) -> AbstractAsyncContextManager[None]: ...

    def give_back(self) -> None: ...


Runner = Callable[[int, Gate], Awaitable[RunResult]]

# Runs a worker makes in a row, the first handed over by the dispatcher and the others taken
# itself, before it waits for the dispatcher again (a checkpoint): runs that never yield cannot
# keep the other tasks from their turn for long (Lane._worker).
TAKEN_IN_A_ROW = 16


class _RunGate:
    """One run's gate: the lane's token check and the run's own place in the slots' order."""

    __slots__ = ("_lane", "_ticket", "_taken")

    def __init__(self, lane: "Lane", ticket: int) -> None:
        self._lane = lane
        self._ticket = ticket
        self._taken: tuple[float, bool] | None = None  # when its token was taken, and for a follow-up

    async def claim_turn(self) -> None:
        await self._lane.slots.claim_turn(self._ticket)

    def __call__(self, followup: bool, due_at: float) -> bool:
        try:
            taken_at = self._lane.take_token(followup, due_at)
        finally:
            self._lane.slots.gated(self._ticket)  # the next ticket may take its turn at the gate
        if taken_at is None:
            return False
        self._taken = (taken_at, followup)
        return True

    def give_back(self) -> None:
        if self._taken is not None:
            self._lane.give_back(*self._taken)
            self._taken = None

    def on_the_wire(self) -> AbstractAsyncContextManager[None]:
        return self._lane.slots.on_the_wire(self._ticket)

    def paused(self) -> bool:
        return self._lane.paused_reason is not None


class DueSource(Protocol):
    """The lane's view of the store (``dripd.store.api.DueSource`` is the full one)."""

    async def due_for_mailbox(self, mailbox_id: str, after: tuple[float, int], until: float, limit: int
                              ) -> list[DueRow]: ...


class Lane:
    """The due work of one mailbox and the loop that dispatches it to ``concurrency`` workers."""

    # Rows read per refill. The lane may hold up to ``limit`` (queue_limit), but reading that
    # many at once made startup with 50 mailboxes and a large backlog read 250,000 rows before
    # the sends got going (bench/bench_dispatch.py); smaller pages keep each read short.
    REFILL_BATCH = 512

    def __init__(
        self, mailbox_id: str, limiter: MailboxLimiter, clock: Clock, source: DueSource, run: Runner,
        *, horizon: float, limit: int, concurrency: int = 1, handed: int | None = None, claim_ahead: bool = True,
        dispatch_after: trio.Event | None = None,
    ) -> None:
        self.mailbox_id = mailbox_id
        self.limiter = limiter
        self._clock = clock
        self._source = source
        self._run = run
        self.horizon = horizon
        self.limit = limit
        self.concurrency = concurrency  # sends on the wire at once
        # Sends handed to the transport at once: more than ``concurrency`` only where the
        # transport queues them itself (dripd/parallelism.py, ``handed``).
        self.handed = handed or concurrency
        self.slots = SendSlots(self.handed, ahead=claim_ahead)  # ahead: only where a wire journal is kept
        self._dispatch_after = dispatch_after  # the lane runs, but hands out no work before it is set
        self._due: list[tuple[float, int]] = []  # (next_run_at, id), lazily invalidated
        self._wanted: dict[int, float] = {}  # id -> the due time its live heap entry carries
        self._followup: dict[int, bool] = {}
        self._ready: list[tuple[int, float, int]] = []  # (0 follow-up | 1 first email, due_at, id)
        self._ready_ids: set[int] = set()
        self._inflight: set[int] = set()
        self._watermark: tuple[float, int] = (-math.inf, 0)  # all runnable rows <= this are in memory
        self._lowered = 0  # times the watermark was lowered (a refill in flight must not cover them)
        self._wake = trio.Event()
        self.paused_reason: str | None = None
        self._backoff_until = -math.inf  # the store failed: no dispatch before this time
        self._store_failures = 0
        self.stopping = False
        self.last_progress = 0.0  # trio time of the last loop turn (the watchdog reads it)
        self._workers = 0
        self._workers_nursery: trio.Nursery | None = None
        self._work: trio.MemoryReceiveChannel[tuple[int, int]] | None = None

    # -- what the engine and API tell the lane -----------------------------------------------

    def schedule(self, enrollment_id: int, at: float, followup: bool) -> None:
        """An enrollment's next run is ``at``; keep it if it falls inside what is loaded."""
        self._followup[enrollment_id] = followup
        if (at, enrollment_id) > self._watermark:
            self._forget(enrollment_id)  # the refill will find it in the store when its time nears
            return
        if enrollment_id in self._inflight:
            self._wanted[enrollment_id] = at  # pushed when its worker finishes
            return
        if self.loaded() >= self.limit and enrollment_id not in self._wanted:
            # Full: stop claiming everything up to the watermark; the refill re-reads from here.
            self._watermark = min(self._watermark, (at, enrollment_id - 1))
            self._lowered += 1
            self._forget(enrollment_id)
            return
        self._wanted[enrollment_id] = at
        heapq.heappush(self._due, (at, enrollment_id))
        self._wake.set()

    def invalidate(self) -> None:
        """Rows changed in bulk (start, resume, enrollment): re-read the index from the start."""
        self._watermark = (-math.inf, 0)
        self._lowered += 1
        self._wake.set()

    def nudge(self) -> None:
        self._wake.set()

    def busy(self) -> bool:
        """A worker holds an enrollment (a send may be in flight)."""
        return bool(self._inflight)

    def loaded(self) -> int:
        return len(self._wanted) + len(self._ready_ids)

    def sending(self) -> bool:
        """A worker holds an enrollment now. At full rate that is nearly always; a mailbox held
        back by its caps, with a backlog waiting for tokens, is idle between sends and does
        not count (the API need not yield to a lane that is only waiting)."""
        return bool(self._inflight)

    def queue_depth(self) -> int:
        return len(self._ready_ids) + sum(1 for t in self._wanted.values() if t <= self._clock.now())

    def _forget(self, enrollment_id: int) -> None:
        self._wanted.pop(enrollment_id, None)
        self._followup.pop(enrollment_id, None)

    # -- the loop ----------------------------------------------------------------------------

    def take_token(self, followup: bool, due_at: float) -> float | None:
        """Right before a send: may it go now? Takes the limiter's token when it may and says
        when (None: it may not). Called with no await between the check and the take, so
        concurrent workers cannot both pass."""
        now = self._clock.now()
        if self.paused_reason is not None or self.stopping:
            return None
        if self._allowed_at(not followup, now) > now:
            return None
        if self._ready and self._ready[0][:2] < (0 if followup else 1, due_at):
            return None  # an older or higher-class send is waiting: it goes first
        self.limiter.record(now, new=not followup)
        return now

    def give_back(self, taken_at: float, followup: bool) -> None:
        """The token taken at ``taken_at`` bought no send (see ``Gate``)."""
        self.limiter.give_back(taken_at, new=not followup)

    def _allowed_at(self, new: bool, now: float) -> float:
        # A first email also waits for the daily new-contact cap; a follow-up does not.
        return self.limiter.next_allowed_new(now) if new else self.limiter.next_allowed(now)

    def set_concurrency(self, concurrency: int, handed: int | None = None) -> None:
        """Change how many sends run at once (and are handed to the transport at once): extra
        workers start now, surplus ones stop after the send they hold (a reload applies a
        changed ``concurrency`` this way)."""
        self.concurrency = concurrency
        self.handed = handed or concurrency
        self.slots.resize(self.handed)
        if self._workers_nursery is not None and self._work is not None:
            while self._workers < self.worker_count():
                self._workers += 1
                self._workers_nursery.start_soon(self._worker, self._work.clone())
        self._wake.set()

    def worker_count(self) -> int:
        return workers_for(self.concurrency, self.handed)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        send_channel, receive_channel = trio.open_memory_channel[tuple[int, int]](0)
        async with trio.open_nursery() as nursery:
            self._workers_nursery, self._work = nursery, receive_channel
            self.set_concurrency(self.concurrency, self.handed)
            task_status.started()
            if self._dispatch_after is not None:
                await self._dispatch_after.wait()
            async with send_channel:
                while not self.stopping:
                    self.last_progress = trio.current_time()
                    now = self._clock.now()
                    if self._needs_refill(now):
                        try:
                            await self._refill(now)
                        except StoreError as exc:
                            self._store_failures += 1
                            delay = min(60.0, 2.0 ** min(self._store_failures, 6))
                            self._backoff_until = now + delay
                            log.error("mailbox %s: cannot read due work: %s; retrying in %.0fs",
                                      self.mailbox_id, exc.message, delay)
                            continue
                    item = self._take(now)
                    if item is not None:
                        try:
                            try:
                                # To a worker already waiting, without a scheduler pass per item:
                                # the lane hands out what is due in one turn.
                                send_channel.send_nowait(item)
                            except trio.WouldBlock:
                                await send_channel.send(item)
                        except BaseException:
                            self.slots.withdraw(item[1])
                            raise
                        continue
                    await self._sleep(now)
            # Workers drain: the channel is closed, they finish what they hold and return.

    def _take(self, now: float) -> tuple[int, int] | None:
        """The next enrollment to run, in flight from now on, and its send ticket (None: none is
        due, or the lane may not send now)."""
        enrollment_id = self._next_ready(now) or self._next_due(now)
        if enrollment_id is None:
            return None
        self._inflight.add(enrollment_id)
        return enrollment_id, self.slots.issue()

    def _take_next(self, receive_channel: trio.MemoryReceiveChannel[tuple[int, int]]) -> tuple[int, int] | None:
        """A worker that finished a run takes its next one without waiting: the item the
        dispatcher is waiting to hand over (its ticket is the older), else the next due one
        itself. The dispatcher's hand-off cost a scheduler pass per send (issue 14). None: wait
        for the dispatcher (nothing due, a store read due first, the lane stopping or shrinking)."""
        try:
            return receive_channel.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            pass
        if self.stopping or self._workers > self.worker_count():
            return None
        now = self._clock.now()
        if self._needs_refill(now):
            return None  # the dispatcher reads the store; _settle has woken it
        return self._take(now)

    def _next_ready(self, now: float) -> int | None:
        if not self._ready or self.paused_reason is not None or now < self._backoff_until:
            return None
        if self._allowed_at(self._ready[0][0] == 1, now) > now:
            return None
        _, _, enrollment_id = heapq.heappop(self._ready)
        self._ready_ids.discard(enrollment_id)
        return enrollment_id

    def _next_due(self, now: float) -> int | None:
        if self.paused_reason is not None or now < self._backoff_until:
            return None
        while self._due and self._due[0][0] <= now:
            at, enrollment_id = heapq.heappop(self._due)
            if self._wanted.get(enrollment_id) != at:
                continue  # stale entry: rescheduled or forgotten since
            del self._wanted[enrollment_id]
            return enrollment_id
        return None

    async def _sleep(self, now: float) -> None:
        deadline = self._refill_due_at()
        while self._due and self._wanted.get(self._due[0][1]) != self._due[0][0]:
            heapq.heappop(self._due)  # drop stale heads so they do not wake us for nothing
        if self.paused_reason is None:
            if self._due:
                deadline = min(deadline, max(self._due[0][0], self._backoff_until))
            if self._ready:
                deadline = min(deadline, max(self._allowed_at(self._ready[0][0] == 1, now), self._backoff_until))
        if deadline <= now:
            await trio.sleep(0)
            return
        with trio.move_on_at(self._clock.to_trio(deadline) if deadline != math.inf else math.inf):
            await self._wake.wait()
        self._wake = trio.Event()

    def _refill_due_at(self) -> float:
        """When the lane must next read the store's index (inf: not until something changes)."""
        if self.paused_reason is not None or self._watermark == _INF_KEY:
            return math.inf
        if self._watermark[0] == -math.inf:
            return self._backoff_until
        if self.loaded() >= min(self.limit, self.REFILL_BATCH) // 2:
            return math.inf  # plenty in memory; dispatching will bring us back here
        return max(self._watermark[0] - self.horizon / 2, self._backoff_until)

    def _needs_refill(self, now: float) -> bool:
        return self._refill_due_at() <= now

    async def _refill(self, now: float) -> None:
        until = now + self.horizon
        room = min(self.limit - self.loaded(), self.REFILL_BATCH)
        if room <= 0:
            return
        lowered = self._lowered
        rows = await self._source.due_for_mailbox(self.mailbox_id, self._watermark, until, room)
        for row in rows:
            known = row.enrollment_id in self._wanted or row.enrollment_id in self._ready_ids
            if known or row.enrollment_id in self._inflight:
                continue
            self._wanted[row.enrollment_id] = row.next_run_at
            self._followup[row.enrollment_id] = row.followup
            heapq.heappush(self._due, (row.next_run_at, row.enrollment_id))
        if len(rows) >= room:
            reached = (rows[-1].next_run_at, rows[-1].enrollment_id)
        else:
            reached = (until, MAX_ID)
        # An invalidate() or a full-lane schedule() during the read lowered the watermark: keep
        # the lower one, or work that changed meanwhile would be lost from memory. Counted, not
        # compared: an invalidate() during the lane's first read sets the very value the read
        # began from, and the start that caused it waited half a horizon (tests/unit/
        # test_scheduler_lanes.py; it showed once lanes waited for READY=1 to dispatch).
        self._watermark = reached if self._lowered == lowered else min(reached, self._watermark)

    async def _worker(self, receive_channel: trio.MemoryReceiveChannel[tuple[int, int]]) -> None:
        async with receive_channel:
            item: tuple[int, int] | None = None
            taken = 0  # runs since this worker last waited for the dispatcher
            while True:
                if item is None:
                    try:
                        item = await receive_channel.receive()  # a checkpoint, whatever it finds
                    except trio.EndOfChannel:
                        return
                    taken = 0
                enrollment_id, ticket = item
                if self._workers > self.worker_count():
                    # Lowered by a reload: this worker hands its item back and stops.
                    self.slots.withdraw(ticket)
                    self._workers -= 1
                    self._inflight.discard(enrollment_id)
                    self._retry_later(enrollment_id, 0.0)
                    return
                try:
                    result = await self._run(enrollment_id, _RunGate(self, ticket))
                    self._store_failures = 0
                except StoreError as exc:
                    # The database refuses work (locked, read-only, full): every enrollment
                    # would fail alike, so the whole lane backs off instead of spinning.
                    self._store_failures += 1
                    delay = min(60.0, 2.0 ** min(self._store_failures, 6))
                    self._backoff_until = self._clock.now() + delay
                    if self._store_failures == 1 or self._store_failures % 10 == 0:
                        log.error("mailbox %s: %s; pausing sends for %.0fs and retrying", self.mailbox_id,
                                  exc.message, delay)
                    result = RunResult(RunStatus.DROPPED)
                    self._retry_later(enrollment_id, delay)
                except Exception:
                    # One enrollment's failure must not stop the mailbox; it is retried later.
                    log.exception("mailbox %s: running enrollment %d failed", self.mailbox_id, enrollment_id)
                    result = RunResult(RunStatus.DROPPED)
                    self._retry_later(enrollment_id, 60.0)
                finally:
                    self.slots.withdraw(ticket)  # a run that sent nothing gives its place up
                    self._inflight.discard(enrollment_id)
                self.last_progress = trio.current_time()
                self._settle(enrollment_id, result)
                # A run done (sent, ended, planned) awaited the store or the transport on the way,
                # all but a wake-up whose plan had not changed (SQLite may read without yielding);
                # one dropped or held back may not have yielded at all. So the worker takes its
                # next run itself only after a run done, and makes TAKEN_IN_A_ROW runs at most.
                taken += 1
                take = result.status is RunStatus.DONE and taken < TAKEN_IN_A_ROW
                item = self._take_next(receive_channel) if take else None

    def _retry_later(self, enrollment_id: int, delay: float) -> None:
        self._wanted.pop(enrollment_id, None)
        at = self._clock.now() + delay
        self._inflight.discard(enrollment_id)
        self.schedule(enrollment_id, at, self._followup.get(enrollment_id, False))

    def _settle(self, enrollment_id: int, result: RunResult) -> None:
        if result.status is RunStatus.THROTTLED:
            self._wanted.pop(enrollment_id, None)
            if enrollment_id not in self._ready_ids:
                heapq.heappush(self._ready, (0 if result.followup else 1, result.due_at, enrollment_id))
                self._ready_ids.add(enrollment_id)
        elif enrollment_id in self._wanted:
            # Rescheduled while in flight: make sure its heap entry exists.
            heapq.heappush(self._due, (self._wanted[enrollment_id], enrollment_id))
        else:
            self._followup.pop(enrollment_id, None)  # it left memory: keep nothing of it
        self._wake.set()


class Scheduler:
    """All lanes, addressed by mailbox id."""

    def __init__(self) -> None:
        self.lanes: dict[str, Lane] = {}

    def add(self, lane: Lane) -> None:
        self.lanes[lane.mailbox_id] = lane

    def schedule(self, mailbox_id: str, enrollment_id: int, at: float, followup: bool) -> None:
        lane = self.lanes.get(mailbox_id)
        if lane is not None:
            lane.schedule(enrollment_id, at, followup)

    def invalidate(self, mailbox_id: str | None = None) -> None:
        for lane in self.lanes.values():
            if mailbox_id is None or lane.mailbox_id == mailbox_id:
                lane.invalidate()

    def queue_depth(self) -> int:
        return sum(lane.queue_depth() for lane in self.lanes.values())

    def sending(self) -> bool:
        return any(lane.sending() for lane in self.lanes.values())

    def heap_size(self) -> int:
        return sum(lane.loaded() for lane in self.lanes.values())

    def stop(self) -> None:
        for lane in self.lanes.values():
            lane.stopping = True
            lane.nudge()
