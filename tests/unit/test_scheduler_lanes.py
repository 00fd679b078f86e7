"""The scheduler's lanes (dripd/scheduler.py) in simulated time, each against an in-memory due
source and a real ``MailboxLimiter``: exact virtual times of every send and every read.

The engine is stood in for by ``Engine`` below, which does what ``dripd.engine.Engine.run``
does with the lane: asks the gate, sends (records the time) or answers THROTTLED, and reports
the enrollment's next step through ``Lane.schedule``. Times are epoch seconds; ``at(s)`` is
``s`` seconds after ``EPOCH`` (whole seconds, so clock arithmetic is exact).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator

import pytest
import trio

from dripd.clock import Clock
from dripd.errors import StoreError
from dripd.scheduler import Gate, Lane, RunResult, RunStatus, Scheduler
from dripd.throttle import Limits, MailboxLimiter

EPOCH = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.timezone.utc).timestamp()  # a Monday, 09:00 UTC
UNLIMITED = Limits(daily_cap=100_000, hourly_cap=100_000, burst=100_000, timezone="UTC")
HORIZON = 3600.0


def at(seconds: float) -> float:
    return EPOCH + seconds


def after_epoch(stamps: list[float]) -> list[float]:
    return [t - EPOCH for t in stamps]


@dataclass(frozen=True)
class Row:
    """What the lane reads of a due enrollment (the store's ``DueRow`` has these fields)."""

    enrollment_id: int
    next_run_at: float
    followup: bool = False


@dataclass(frozen=True)
class Read:
    trio_time: float
    after: tuple[float, int]
    until: float
    limit: int
    rows: int


class MemoryDueSource:
    """The ``DueSource`` protocol over an in-memory index of (next_run_at, id) rows."""

    def __init__(self) -> None:
        self.rows: dict[int, Row] = {}
        self.reads: list[Read] = []
        self.failures = 0  # the next reads that raise StoreError, as a locked database does

    def put(self, enrollment_id: int, next_run_at: float, followup: bool = False) -> None:
        self.rows[enrollment_id] = Row(enrollment_id, next_run_at, followup)

    async def due_for_mailbox(self, mailbox_id: str, after: tuple[float, int], until: float, limit: int) -> list[Row]:
        await trio.lowlevel.checkpoint()  # a real store awaits; the lane must not rely on it not
        if self.failures:
            self.failures -= 1
            self.reads.append(Read(trio.current_time(), after, until, limit, -1))
            raise StoreError("database is locked")
        keys = sorted((r.next_run_at, r.enrollment_id) for r in self.rows.values()
                      if (r.next_run_at, r.enrollment_id) > after and r.next_run_at <= until)
        found = [self.rows[enrollment_id] for _, enrollment_id in keys[:limit]]
        self.reads.append(Read(trio.current_time(), after, until, limit, len(found)))
        return found


@dataclass
class Engine:
    """Runs one due enrollment the way the real engine does, as far as the lane can tell."""

    source: MemoryDueSource
    clock: Clock
    lane: Lane | None = None
    send_seconds: float = 0.0  # how long each send takes (a slow server)
    next_step_after: dict[int, float] = field(default_factory=dict)  # id -> wait before its follow-up
    raises: dict[int, list[Exception]] = field(default_factory=dict)  # id -> errors its next runs raise
    sent: list[tuple[float, int]] = field(default_factory=list)  # (epoch at the gate, enrollment id)
    runs: Counter[int] = field(default_factory=Counter)
    run_times: list[float] = field(default_factory=list)  # epoch of every run, sent or not
    in_flight: int = 0
    peak_in_flight: int = 0
    peak_loaded: int = 0

    async def run(self, enrollment_id: int, gate: Gate) -> RunResult:
        self.runs[enrollment_id] += 1
        self.run_times.append(self.clock.now())
        assert self.lane is not None
        self.peak_loaded = max(self.peak_loaded, self.lane.loaded())
        errors = self.raises.get(enrollment_id)
        if errors:
            raise errors.pop(0)
        row = self.source.rows.get(enrollment_id)
        if row is None:
            return RunResult(RunStatus.DROPPED)
        now = self.clock.now()
        await gate.claim_turn()  # as the engine: the gate and the claim in the claim stage, then the wire
        if not gate(row.followup, row.next_run_at):
            return RunResult(RunStatus.THROTTLED, row.followup, row.next_run_at)
        async with gate.on_the_wire():
            self.sent.append((self.clock.now(), enrollment_id))
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                await trio.sleep(self.send_seconds)
            finally:
                self.in_flight -= 1
        del self.source.rows[enrollment_id]
        wait = self.next_step_after.pop(enrollment_id, None)
        if wait is not None:  # the cadence has a next step: a follow-up, due after the wait
            self.source.put(enrollment_id, now + wait, followup=True)
            self.lane.schedule(enrollment_id, now + wait, True)
        return RunResult(RunStatus.DONE)

    def sent_at(self) -> list[float]:
        return after_epoch([t for t, _ in self.sent])

    def order(self) -> list[int]:
        return [enrollment_id for _, enrollment_id in self.sent]


def lane_for(source: MemoryDueSource, *, limits: Limits = UNLIMITED, mailbox_id: str = "m", concurrency: int = 1,
             limit: int = 10_000) -> tuple[Lane, Engine]:
    clock = Clock(epoch_at_zero=EPOCH)  # trio time 0 (the start of each test) is EPOCH
    engine = Engine(source, clock)
    engine.lane = Lane(mailbox_id, MailboxLimiter(limits), clock, source, engine.run, horizon=HORIZON, limit=limit,
                       concurrency=concurrency)
    return engine.lane, engine


@asynccontextmanager
async def running(*lanes: Lane) -> AsyncIterator[None]:
    """The lanes' loops for the body; stopped as ``Scheduler.stop`` does on the way out."""
    scheduler = Scheduler()
    for lane in lanes:
        scheduler.add(lane)
    async with trio.open_nursery() as nursery:
        for lane in lanes:
            await nursery.start(lane.run)
        yield
        scheduler.stop()


async def until(seconds: float) -> None:
    """Let simulated time run to ``at(seconds)``."""
    await trio.sleep_until(seconds)  # trio time 0 is EPOCH


# -- tests ---------------------------------------------------------------------------------------


async def test_due_work_runs_exactly_at_its_due_time(autojump_clock: trio.abc.Clock) -> None:
    source = MemoryDueSource()
    for enrollment_id, due in ((1, 10), (2, 60), (3, 3599), (4, 0)):
        source.put(enrollment_id, at(due))
    lane, engine = lane_for(source)
    async with running(lane):
        await until(9)
        assert engine.order() == [4]  # due at once; the others wait for their time
        await until(4000)
    assert engine.sent_at() == [0, 10, 60, 3599]
    assert engine.order() == [4, 1, 2, 3]
    assert sum(engine.runs.values()) == 4  # each run once: the lane sleeps to the due time, it does not poll


async def test_a_follow_up_scheduled_by_a_run_goes_at_its_time(autojump_clock: trio.abc.Clock) -> None:
    source = MemoryDueSource()
    source.put(1, at(0))
    lane, engine = lane_for(source)
    engine.next_step_after = {1: 90.0}
    async with running(lane):
        await until(1000)
    assert engine.sent_at() == [0, 90]
    assert source.rows == {}


async def test_follow_ups_go_first_then_oldest_due_when_the_limiter_holds_sends(autojump_clock: trio.abc.Clock) -> None:
    # One send per 10 minutes (6 an hour, burst 1). First emails 1, 3, 2 come due at 0, 1 and
    # 5 s; follow-up 10 comes due at 60 s, while all three wait for a token.
    tight = Limits(daily_cap=1000, hourly_cap=6, burst=1, timezone="UTC")
    source = MemoryDueSource()
    source.put(1, at(0))
    source.put(3, at(1))
    source.put(2, at(5))
    source.put(10, at(60), followup=True)
    lane, engine = lane_for(source, limits=tight)
    scheduler = Scheduler()
    scheduler.add(lane)
    async with running(lane):
        await until(100)
        assert engine.order() == [1]
        assert scheduler.queue_depth() == 3 and scheduler.heap_size() == 3  # held in the ready queue
        assert not scheduler.sending()  # waiting for a token is not sending
        await until(2000)
    assert list(zip(engine.sent_at(), engine.order())) == [(0, 1), (600, 10), (1200, 3), (1800, 2)]
    # Held sends are pushed back to the limiter's next moment, never polled: runs happen only
    # when something came due or a token came free.
    assert sorted(set(after_epoch(engine.run_times))) == [0, 1, 5, 60, 600, 1200, 1800]


async def test_more_than_a_refill_batch_is_read_in_keyset_pages(autojump_clock: trio.abc.Clock) -> None:
    batch = Lane.REFILL_BATCH
    count = 2 * batch + 76
    source = MemoryDueSource()
    for enrollment_id in range(1, count + 1):
        source.put(enrollment_id, at(0))
    source.put(5000, at(2 * HORIZON))  # beyond the first horizon
    lane, engine = lane_for(source)
    async with running(lane):
        await until(2 * HORIZON + 60)
    assert engine.order() == [*range(1, count + 1), 5000]
    assert engine.sent_at() == [0] * count + [2 * HORIZON]
    # Pages of at most one batch, each after the last row of the one before, all at time 0;
    # the next page is read once half the batch is left in memory.
    first = source.reads[:3]
    assert [(r.trio_time, r.after, r.limit, r.rows) for r in first] == [
        (0, (-math.inf, 0), batch, batch), (0, (at(0), batch), batch, batch), (0, (at(0), 2 * batch), batch, 76)]
    assert engine.peak_loaded < batch + batch // 2  # a page is added once half of one is left
    # Then the horizon moves on: a read half a horizon before what is loaded runs out.
    later = [(r.trio_time, r.until, r.rows) for r in source.reads[3:6]]
    assert later == [(HORIZON / 2, at(HORIZON / 2 + HORIZON), 0), (HORIZON, at(2 * HORIZON), 1),
                     (HORIZON * 1.5, at(2.5 * HORIZON), 0)]
    assert all(r.limit <= batch for r in source.reads)


async def test_the_queue_limit_bounds_memory_and_the_rest_is_read_later(autojump_clock: trio.abc.Clock) -> None:
    source = MemoryDueSource()
    for enrollment_id in range(1, 301):
        source.put(enrollment_id, at(enrollment_id))  # one a second
    lane, engine = lane_for(source, limit=40)
    async with running(lane):
        await until(400)
    assert engine.order() == list(range(1, 301))
    assert engine.sent_at() == [float(i) for i in range(1, 301)]  # each exactly on time
    assert engine.peak_loaded <= 40
    assert all(r.limit <= 40 for r in source.reads)


async def test_schedule_brings_an_enrollment_forward_and_the_old_time_is_dropped(
        autojump_clock: trio.abc.Clock) -> None:
    source = MemoryDueSource()
    source.put(1, at(3000))
    lane, engine = lane_for(source)
    scheduler = Scheduler()
    scheduler.add(lane)
    async with running(lane):
        await until(100)
        source.put(1, at(200))
        scheduler.schedule("m", 1, at(200), False)
        source.put(2, at(300))  # a new enrollment inside what the lane has loaded
        scheduler.schedule("m", 2, at(300), False)
        scheduler.schedule("elsewhere", 3, at(300), False)  # no such lane: ignored
        await until(4000)
    assert list(zip(engine.sent_at(), engine.order())) == [(200, 1), (300, 2)]
    assert engine.runs == Counter({1: 1, 2: 1})  # the stale entry at 3000 never ran


async def test_invalidate_rereads_the_index_so_bulk_changes_go_on_time(autojump_clock: trio.abc.Clock) -> None:
    source = MemoryDueSource()
    lane, engine = lane_for(source)
    scheduler = Scheduler()
    scheduler.add(lane)
    async with running(lane):
        await until(10)
        source.put(1, at(50))  # a bulk enrollment: written to the store, then the lane told
        scheduler.invalidate("m")
        await until(20)
        assert source.reads[-1].trio_time == 10  # re-read at once
        source.put(2, at(60))  # written without telling the lane
        await until(100)
        scheduler.invalidate()  # every lane
        await until(HORIZON)
    # Announced: on time. The lane trusts the index it has read (every writer in dripd announces
    # its change through schedule or invalidate), so the unannounced row waits for the next
    # invalidate, which re-reads from the start and sends it at once.
    assert list(zip(engine.sent_at(), engine.order())) == [(50, 1), (100, 2)]


async def test_pause_holds_the_lane_and_resume_sends_what_came_due(autojump_clock: trio.abc.Clock) -> None:
    source = MemoryDueSource()
    source.put(1, at(10))
    source.put(2, at(2000))
    lane, engine = lane_for(source)
    lane.paused_reason = "bounce rate above 5%"  # as the daemon starts a lane paused in the store
    async with running(lane):
        await until(1000)
        assert engine.sent == [] and source.reads == []  # paused: not even the index is read
        lane.paused_reason = None  # what Control.resume_mailbox does
        lane.invalidate()
        await until(1500)
        lane.paused_reason = "operator"  # what Control.pause_mailbox does
        lane.nudge()
        await until(5000)
        assert engine.order() == [1]  # item 2 came due at 2000 while paused: held
        lane.paused_reason = None
        lane.invalidate()
        await until(6000)
    assert list(zip(engine.sent_at(), engine.order())) == [(1000, 1), (5000, 2)]


async def test_concurrency_runs_that_many_sends_at_once(autojump_clock: trio.abc.Clock) -> None:
    source = MemoryDueSource()
    for enrollment_id in range(1, 8):
        source.put(enrollment_id, at(0))
    lane, engine = lane_for(source, concurrency=3)
    engine.send_seconds = 60.0
    async with running(lane):
        await until(30)
        assert lane.busy() and engine.in_flight == 3
        await until(1000)
    assert engine.sent_at() == [0, 0, 0, 60, 60, 60, 120]
    assert engine.peak_in_flight == 3


async def test_a_store_error_reading_due_work_backs_off_and_the_lane_carries_on(
        autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture) -> None:
    source = MemoryDueSource()
    source.put(1, at(0))
    source.failures = 2
    lane, engine = lane_for(source)
    async with running(lane):
        await until(100)
    # Backoff 2 s after the first failure, 4 s after the second: reads at 0, 2 and 6 s.
    assert [(r.trio_time, r.rows) for r in source.reads[:3]] == [(0, -1), (2, -1), (6, 1)]
    assert engine.sent_at() == [6]
    assert sum("cannot read due work" in r.getMessage() for r in caplog.records) == 2


async def test_a_store_error_in_a_run_pauses_the_lane_briefly_and_retries_it(autojump_clock: trio.abc.Clock) -> None:
    source = MemoryDueSource()
    source.put(1, at(0))
    source.put(2, at(1))
    lane, engine = lane_for(source)
    engine.raises = {1: [StoreError("database or disk is full")]}
    async with running(lane):
        await until(100)
    # The whole lane waits 2 s (every run would fail alike); then 2, overdue, and 1 go.
    assert list(zip(engine.sent_at(), engine.order())) == [(2, 2), (2, 1)]


async def test_one_enrollment_failing_is_retried_a_minute_later_and_others_go_on(
        autojump_clock: trio.abc.Clock) -> None:
    source = MemoryDueSource()
    source.put(1, at(0))
    source.put(2, at(1))
    lane, engine = lane_for(source)
    engine.raises = {1: [RuntimeError("a bug in one enrollment's data")]}
    async with running(lane):
        await until(100)
    assert list(zip(engine.sent_at(), engine.order())) == [(1, 2), (60, 1)]


async def test_stop_lets_the_sends_in_flight_and_claimed_finish_and_starts_no_other(autojump_clock: trio.abc.Clock) -> None:
    source = MemoryDueSource()
    for enrollment_id in (1, 2):
        source.put(enrollment_id, at(0))
    mailbox_b = MemoryDueSource()
    mailbox_b.put(7, at(30))
    lane_a, engine_a = lane_for(source)
    lane_b, engine_b = lane_for(mailbox_b, mailbox_id="b")
    engine_a.send_seconds = 60.0
    scheduler = Scheduler()
    scheduler.add(lane_a)
    scheduler.add(lane_b)
    async with trio.open_nursery() as nursery:
        await nursery.start(lane_a.run)
        await nursery.start(lane_b.run)
        await until(1)
        assert scheduler.sending()
        scheduler.stop()
    # Enrollment 2 was claimed ahead while 1 was on the wire (its claim is durable, its token
    # taken): it goes once 1 is done, then the lanes return. Nothing else starts.
    assert trio.current_time() == 120
    assert engine_a.sent_at() == [0, 60] and source.rows == {}
    assert engine_b.sent == []  # due at 30, after the stop: never started


async def test_a_lane_started_before_ready_hands_out_no_work_until_it(autojump_clock: trio.abc.Clock) -> None:
    # The daemon starts its lanes before READY=1 and sets the event right after it: start-up
    # must not share the scheduler with 32 workers a lane sending a backlog.
    source = MemoryDueSource()
    for enrollment_id in (1, 2, 3):
        source.put(enrollment_id, at(0))
    ready = trio.Event()
    clock = Clock(epoch_at_zero=EPOCH)
    engine = Engine(source, clock)
    lane = engine.lane = Lane("m", MailboxLimiter(UNLIMITED), clock, source, engine.run, horizon=HORIZON,
                              limit=10_000, dispatch_after=ready)
    async with running(lane):
        await until(30)
        assert engine.runs == Counter() and source.reads == []  # running, but nothing read or run
        ready.set()
        await until(31)
    assert engine.sent_at() == [30, 30, 30]  # all due at 0: they go the moment READY is sent
    assert engine.order() == [1, 2, 3]


class HeldFirstRead(MemoryDueSource):
    """Its first read finds the rows, then holds its answer until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = trio.Event()
        self.release = trio.Event()

    async def due_for_mailbox(self, mailbox_id: str, after: tuple[float, int], until: float, limit: int) -> list[Row]:
        rows = await super().due_for_mailbox(mailbox_id, after, until, limit)
        if not self.release.is_set():
            self.reading.set()
            await self.release.wait()
        return rows


async def test_an_invalidate_while_the_first_read_is_out_is_not_lost(autojump_clock: trio.abc.Clock) -> None:
    # The lane's first read (nothing runnable yet) is on its way back when a start makes rows
    # runnable and invalidates the lane: the watermark it set was the one the read began from,
    # and the read's answer must not cover it, or the start waits half a horizon (1,800 s).
    source = HeldFirstRead()
    lane, engine = lane_for(source)
    async with running(lane):
        await source.reading.wait()
        source.put(1, at(0))
        lane.invalidate()
        source.release.set()
        await until(10)
    assert engine.sent_at() == [0]
    assert [read.trio_time for read in source.reads] == [0, 0]  # read again at once
