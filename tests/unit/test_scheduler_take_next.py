"""A lane's workers take their next runs themselves (dripd/scheduler.py, ``Lane._take_next``), in
simulated time, with the lanes' in-memory due source and stand-in engine."""

from __future__ import annotations

import trio

from dripd.parallelism import workers_for
from dripd.scheduler import TAKEN_IN_A_ROW, Gate, RunResult, RunStatus
from tests.unit.test_scheduler_lanes import MemoryDueSource, at, lane_for, running, until


class StepCounter(trio.abc.Instrument):
    """Counts the scheduler's task steps: two moments with the same count are in one step."""

    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1


async def test_a_worker_that_sent_takes_its_next_run_itself(autojump_clock: trio.abc.Clock) -> None:
    # After a send a worker takes the next due run itself (Lane._take_next), in the same step of
    # the scheduler, instead of waiting for the dispatcher to hand it over (a pass of each).
    source = MemoryDueSource()
    for enrollment_id in range(1, 101):
        source.put(enrollment_id, at(10))
    lane, engine = lane_for(source, concurrency=4)
    engine.send_seconds = 1.0
    counter = StepCounter()
    ended: dict[trio.lowlevel.Task, int] = {}  # a worker -> the step its last run ended in
    at_once = 0  # runs begun in the step in which their worker's previous run ended
    run = lane._run

    async def observed(enrollment_id: int, gate: Gate) -> RunResult:
        nonlocal at_once
        task = trio.lowlevel.current_task()
        at_once += ended.get(task) == counter.steps
        try:
            return await run(enrollment_id, gate)
        finally:
            ended[task] = counter.steps

    lane._run = observed
    trio.lowlevel.add_instrument(counter)
    async with running(lane):
        await until(100)
    trio.lowlevel.remove_instrument(counter)
    assert engine.sent_at() == [10 + k // 4 for k in range(100)] and sorted(engine.order()) == list(range(1, 101))
    assert at_once >= 100 - lane.worker_count()  # all but the first run of each worker


async def test_runs_that_drop_wait_for_the_dispatcher_so_other_tasks_keep_their_turns(
        autojump_clock: trio.abc.Clock) -> None:
    # A run whose enrollment has gone returns without awaiting anything: a worker taking the
    # next one itself could take every one in a single turn. Such a worker waits for the
    # dispatcher instead, which hands one run to each waiting worker per turn.
    source = MemoryDueSource()
    count = 320
    for enrollment_id in range(1, count + 1):
        source.put(enrollment_id, at(10))
    lane, engine = lane_for(source, concurrency=4)
    seen: list[int] = []  # the runs done so far, each time another task had a turn
    async with running(lane):
        await until(5)  # read into the lane's memory; now gone from the store, so each run drops
        assert lane.loaded() == count
        source.rows.clear()
        await until(10)
        while sum(engine.runs.values()) < count:
            seen.append(sum(engine.runs.values()))
            await trio.lowlevel.checkpoint()
    assert sorted(engine.runs) == list(range(1, count + 1)) and set(engine.runs.values()) == {1}
    assert trio.current_time() == 10
    # Between two turns of the other task, each worker ran at most one run before it in one
    # batch of the scheduler and one after it in the previous.
    steps = [b - a for a, b in zip([0, *seen], [*seen, count])]
    assert max(steps) <= 2 * lane.worker_count()


async def test_runs_done_without_yielding_are_taken_only_so_many_in_a_row(autojump_clock: trio.abc.Clock) -> None:
    # A run can be done without yielding (a wake-up whose plan had not changed, read without a
    # wait): a worker takes at most TAKEN_IN_A_ROW runs in a row before it waits for the
    # dispatcher, so one worker cannot do every due run in a single turn.
    source = MemoryDueSource()
    count = 2000
    for enrollment_id in range(1, count + 1):
        source.put(enrollment_id, at(10))
    lane, _ = lane_for(source, concurrency=4)
    lane.REFILL_BATCH = 2 * count  # all in memory at once: no read of due work stops a worker
    runs: list[int] = []

    async def done_at_once(enrollment_id: int, gate: Gate) -> RunResult:
        runs.append(enrollment_id)
        return RunResult(RunStatus.DONE)

    lane._run = done_at_once
    seen: list[int] = []
    async with running(lane):
        await until(10)
        while len(runs) < count:
            seen.append(len(runs))
            await trio.lowlevel.checkpoint()
    assert sorted(runs) == list(range(1, count + 1))
    steps = [b - a for a, b in zip([0, *seen], [*seen, count])]
    assert max(steps) <= 2 * lane.worker_count() * TAKEN_IN_A_ROW  # without the limit one worker took 1,992


async def test_a_reload_that_lowers_concurrency_while_workers_take_their_own_runs(
        autojump_clock: trio.abc.Clock) -> None:
    # Workers taking their next runs themselves still stop when a reload leaves the lane with
    # more of them than it needs: each sends once, and the lane goes on at the new concurrency.
    source = MemoryDueSource()
    for enrollment_id in range(1, 201):
        source.put(enrollment_id, at(10))
    lane, engine = lane_for(source, concurrency=8)
    engine.send_seconds = 1.0
    async with running(lane):
        await until(12.5)
        assert engine.in_flight == 8 and lane._workers == workers_for(8, 8)
        lane.set_concurrency(1)
        await until(400)
        assert lane._workers == workers_for(1, 1) < workers_for(8, 8)
    assert sorted(engine.order()) == list(range(1, 201)) and set(engine.runs.values()) == {1}
    assert engine.sent_at()[:24] == [10] * 8 + [11] * 8 + [12] * 8
    later = engine.sent_at()[24:]
    assert later == sorted(later) and len(set(later)) == len(later)  # one at a time after the reload
