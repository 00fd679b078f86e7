"""holds.next_run: the real next moment of an active contact and the limit that holds it."""

from __future__ import annotations

import datetime as dt

from dripd import holds
from dripd.model import SequenceStatus
from dripd.throttle import Limits, MailboxLimiter
from dripd.window import SendWindow

UTC = dt.timezone.utc
MONDAY_10 = dt.datetime(2024, 6, 10, 10, 0, tzinfo=UTC).timestamp()
HOUR = 3600.0
ACTIVE = SequenceStatus.ACTIVE
OPEN = SendWindow("UTC")
NINE_TO_FIVE = SendWindow("UTC", False, 9, 17)


def limiter(sends: list[float] = [], **limits: object) -> MailboxLimiter:  # noqa: B006 - never mutated
    values: dict[str, object] = {"daily_cap": 100, "hourly_cap": 100, "burst": 100, **limits}
    return MailboxLimiter(Limits(**values), history=sends)  # type: ignore[arg-type]


def run(due_at: float | None, now: float = MONDAY_10, *, window: SendWindow | None = OPEN,
        lim: MailboxLimiter | None = None, paused: str | None = None, status: SequenceStatus = ACTIVE,
        known: bool = True) -> holds.NextRun:
    return holds.next_run(due_at=due_at, now=now, sequence_status=status, window=window,
                          limiter=lim if lim is not None else limiter(), paused_reason=paused, mailbox_known=known)


def test_a_future_step_waits_for_its_own_time() -> None:
    assert run(MONDAY_10 + 2 * HOUR) == holds.NextRun(MONDAY_10 + 2 * HOUR, holds.STEP_WAIT)


def test_due_now_and_free_runs_now() -> None:
    assert run(MONDAY_10 - 60) == holds.NextRun(MONDAY_10, holds.DUE)


def test_the_hourly_cap_holds_until_the_hour_after_the_last_send() -> None:
    lim = limiter([MONDAY_10 - 600], hourly_cap=1, burst=1)
    got = run(MONDAY_10 - 60, lim=lim)
    assert got.reason == holds.HOURLY_CAP and got.at == MONDAY_10 - 600 + HOUR


def test_the_daily_cap_holds_until_the_next_day() -> None:
    lim = limiter([MONDAY_10 - 600, MONDAY_10 - 300], daily_cap=2)
    got = run(MONDAY_10, lim=lim)
    assert got.reason == holds.DAILY_CAP
    assert got.at == dt.datetime(2024, 6, 11, tzinfo=UTC).timestamp()


def test_a_warm_up_stage_below_the_daily_cap_is_named() -> None:
    lim = limiter([MONDAY_10 - 600], daily_cap=50, warmup=((7, 1),), warmup_start=dt.date(2024, 6, 10))
    assert run(MONDAY_10, lim=lim).reason == holds.WARMUP


def test_spacing_when_the_bucket_is_empty_but_the_hour_is_not_full() -> None:
    lim = limiter([MONDAY_10 - 60], hourly_cap=10, burst=1)
    got = run(MONDAY_10, lim=lim)
    assert got.reason == holds.SPACING and got.at == MONDAY_10 - 60 + HOUR / 10


def test_a_closed_window_then_the_cap() -> None:
    evening = dt.datetime(2024, 6, 10, 18, 0, tzinfo=UTC).timestamp()
    got = run(evening - 60, evening, window=NINE_TO_FIVE)
    assert got == holds.NextRun(dt.datetime(2024, 6, 11, 9, 0, tzinfo=UTC).timestamp(), holds.WINDOW)
    # Planned for the window's opening second: the window is what held it.
    assert run(got.at, evening, window=NINE_TO_FIVE).reason == holds.WINDOW
    full = limiter([evening - 600, evening - 300], daily_cap=2)
    assert run(evening - 60, evening - 30, window=OPEN, lim=full).reason == holds.DAILY_CAP


def test_paused_mailbox_and_sequence_states_have_no_time() -> None:
    assert run(MONDAY_10, paused="bounce rate").reason == "mailbox paused: bounce rate"
    assert run(MONDAY_10, paused="x").at is None
    assert "not started" in run(MONDAY_10, status=SequenceStatus.DRAFT).reason
    assert "paused" in run(MONDAY_10, status=SequenceStatus.PAUSED).reason


def test_stuck_when_long_due_with_nothing_holding_it_or_its_mailbox_gone() -> None:
    late = run(MONDAY_10 - holds.STUCK_AFTER_SECONDS - 1)
    assert late.stuck and "not sent" in late.reason
    assert not run(MONDAY_10 - holds.STUCK_AFTER_SECONDS + 1).stuck
    held = run(MONDAY_10 - 2 * HOUR, lim=limiter([MONDAY_10 - 60], hourly_cap=1, burst=1))
    assert not held.stuck and held.reason == holds.HOURLY_CAP  # late because of the cap, not stuck
    gone = run(MONDAY_10, known=False)
    assert gone.stuck and gone.at is None and "not in the configuration" in gone.reason


def test_a_retry_backoff_is_named_with_the_failure() -> None:
    got = holds.next_run(due_at=MONDAY_10 + 300, now=MONDAY_10, sequence_status=ACTIVE, window=OPEN,
                         limiter=limiter(), paused_reason=None, retry="attempt 2: 451 try later")
    assert got == holds.NextRun(MONDAY_10 + 300, f"{holds.RETRY}: attempt 2: 451 try later")
