"""Mailbox limiter: exact edges of every limit, restart replay, and a greedy-sender property."""

from __future__ import annotations

import datetime as dt
import math
import random
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dripd.errors import ValidationError
from dripd.throttle import Limits, MailboxLimiter

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 6, 10, 8, 0, tzinfo=UTC).timestamp()  # a Monday


def at(zone: str, *fields: int) -> float:
    return dt.datetime(*fields, tzinfo=ZoneInfo(zone)).timestamp()


def greedy(limiter: MailboxLimiter, start: float, count: int) -> list[float]:
    """Send ``count`` messages as early as the limiter allows, starting at ``start``."""
    sent: list[float] = []
    now = start
    for _ in range(count):
        now = limiter.next_allowed(now)
        limiter.record(now)
        sent.append(now)
    return sent


def test_rolling_hour_edge_is_exactly_sixty_minutes() -> None:
    # Bucket and day cap generous, so only the hard rolling hour binds.
    limiter = MailboxLimiter(Limits(daily_cap=1000, hourly_cap=5, burst=5))
    for minute in range(5):
        limiter.record(T0 + 60 * minute)
    assert limiter.sends_in_last_hour(T0 + 3599) == 5
    assert limiter.next_allowed(T0 + 300) == T0 + 3600
    assert limiter.next_allowed(T0 + 3599.999) == T0 + 3600
    # [T0, T0 + 3600) is half-open: at T0 + 3600 the first send no longer counts.
    assert limiter.sends_in_last_hour(T0 + 3600) == 4
    assert limiter.next_allowed(T0 + 3600) == T0 + 3600
    limiter.record(T0 + 3600)
    assert limiter.next_allowed(T0 + 3600) == T0 + 3660


def test_burst_one_spaces_sends_evenly() -> None:
    limiter = MailboxLimiter(Limits(daily_cap=1000, hourly_cap=10, burst=1))
    sent = greedy(limiter, T0, 12)
    assert sent == [T0 + 360 * k for k in range(12)]


def test_burst_three_then_spacing() -> None:
    limiter = MailboxLimiter(Limits(daily_cap=1000, hourly_cap=10, burst=3))
    assert limiter.tokens(T0) == 3
    sent = greedy(limiter, T0, 6)
    assert sent == [T0, T0, T0, T0 + 360, T0 + 720, T0 + 1080]
    assert limiter.tokens(T0 + 1080) == pytest.approx(0.0)


def test_daily_cap_resets_at_berlin_midnight() -> None:
    limiter = MailboxLimiter(Limits(daily_cap=3, hourly_cap=100, burst=10, timezone="Europe/Berlin"))
    late = at("Europe/Berlin", 2024, 6, 10, 22, 0)
    greedy(limiter, late, 3)
    assert limiter.sends_today(late) == 3
    midnight = at("Europe/Berlin", 2024, 6, 11, 0, 0)  # 22:00 UTC, not 00:00 UTC
    assert limiter.next_allowed(late) == midnight
    assert limiter.sends_today(midnight) == 0
    assert limiter.next_allowed(midnight) == midnight


def test_daily_cap_reset_on_a_23_hour_day() -> None:
    # 2024-03-31 in Berlin has 23 hours; the next day still starts at local 00:00.
    limiter = MailboxLimiter(Limits(daily_cap=2, hourly_cap=100, burst=10, timezone="Europe/Berlin"))
    morning = at("Europe/Berlin", 2024, 3, 31, 10, 0)
    greedy(limiter, morning, 2)
    assert limiter.next_allowed(morning) == dt.datetime(2024, 3, 31, 22, 0, tzinfo=UTC).timestamp()


def test_daily_cap_reset_when_midnight_is_skipped() -> None:
    # Chile's DST starts at midnight: 2024-09-08 begins at 01:00 -03 (04:00 UTC).
    limiter = MailboxLimiter(Limits(daily_cap=1, hourly_cap=10, timezone="America/Santiago"))
    limiter.record(at("America/Santiago", 2024, 9, 7, 12, 0))
    assert limiter.next_allowed(at("America/Santiago", 2024, 9, 7, 12, 0)) == (
        dt.datetime(2024, 9, 8, 4, 0, tzinfo=UTC).timestamp()
    )


def test_warmup_ramp_by_day() -> None:
    limits = Limits(
        daily_cap=50,
        hourly_cap=100,
        burst=100,
        warmup=((7, 10), (14, 25)),
        warmup_start=dt.date(2024, 6, 10),
    )
    limiter = MailboxLimiter(limits)

    def noon(day: int) -> float:
        return T0 + 4 * 3600 + day * 86400

    assert limiter.daily_cap_on(noon(-3)) == 10  # not started yet: first stage
    assert [limiter.daily_cap_on(noon(d)) for d in (0, 6, 7, 13, 14, 40)] == [10, 10, 25, 25, 50, 50]
    # A greedy sender gets exactly the day's cap, then waits for midnight.
    for day, cap in ((0, 10), (7, 25), (14, 50)):
        sent = greedy(limiter, noon(day), cap + 1)
        assert sent[:cap] == [noon(day)] * cap  # burst 100 covers the whole day's cap
        assert limiter.sends_today(noon(day)) == cap
        assert sent[cap] == T0 - 8 * 3600 + (day + 1) * 86400  # next UTC midnight


def test_warmup_never_exceeds_daily_cap() -> None:
    limits = Limits(daily_cap=5, hourly_cap=10, warmup=((7, 20),), warmup_start=dt.date(2024, 6, 10))
    assert MailboxLimiter(limits).daily_cap_on(T0) == 5


def test_history_replay_after_restart_gives_same_answers() -> None:
    limits = Limits(daily_cap=8, hourly_cap=6, burst=2, timezone="Europe/Berlin")
    before = MailboxLimiter(limits)
    rng = random.Random(7)
    sent: list[float] = []
    now = T0
    for _ in range(20):
        now = before.next_allowed(now + rng.uniform(0, 900))
        before.record(now)
        sent.append(now)
    after = MailboxLimiter(limits, history=reversed(sent))  # order from the store is not trusted
    for probe in (now, now + 1, now + 600, now + 3600, now + 86400):
        assert after.next_allowed(probe) == before.next_allowed(probe)
        assert after.tokens(probe) == pytest.approx(before.tokens(probe))
        assert after.sends_today(probe) == before.sends_today(probe)
        assert after.sends_in_last_hour(probe) == before.sends_in_last_hour(probe)


def test_a_send_given_back_leaves_the_limits_as_if_it_had_never_been_recorded() -> None:
    """A claim withdrawn before the wire (dripd/engine.py) gives its token back: every limit
    then answers as for a limiter that never recorded it."""
    limits = Limits(daily_cap=3, hourly_cap=2, burst=1, daily_new_cap=1)
    given, never = MailboxLimiter(limits), MailboxLimiter(limits)
    for limiter in (given, never):
        limiter.record(T0)
    given.record(T0 + 1800, new=True)
    given.give_back(T0 + 1800, new=True)
    for probe in (T0 + 1800, T0 + 2700, T0 + 3600, T0 + 86400):
        assert given.next_allowed(probe) == never.next_allowed(probe)
        assert given.next_allowed_new(probe) == never.next_allowed_new(probe) == given.next_allowed(probe)
        assert given.tokens(probe) == never.tokens(probe)
        assert given.sends_today(probe) == never.sends_today(probe)
        assert given.new_sends_today(probe) == 0
        assert given.sends_in_last_hour(probe) == never.sends_in_last_hour(probe)
    assert given.sends_today(T0 + 1800) == 1


def test_giving_back_an_older_send_never_lets_the_burst_be_exceeded() -> None:
    """A claim withdrawn while a later one went out: its counts come back, but its token only
    if no later send took one (the bucket may have been full in between)."""
    limits = Limits(daily_cap=100, hourly_cap=60, burst=3)
    given, never = MailboxLimiter(limits), MailboxLimiter(limits)
    given.record(T0)
    for limiter in (given, never):
        limiter.record(T0 + 60)
    given.give_back(T0)
    assert given.sends_today(T0 + 60) == never.sends_today(T0 + 60) == 1
    assert given.sends_in_last_hour(T0 + 60) == 1
    assert greedy(given, T0 + 60, 2) == greedy(never, T0 + 60, 2) == [T0 + 60, T0 + 60]
    assert given.next_allowed(T0 + 60) == never.next_allowed(T0 + 60) > T0 + 60  # the burst of 3 holds


def test_giving_back_a_send_out_of_the_rolling_hour_keeps_the_newer_ones_counted() -> None:
    limiter = MailboxLimiter(Limits(daily_cap=100, hourly_cap=2, burst=2))
    limiter.record(T0)
    limiter.record(T0 + 4000)  # T0 has left the rolling hour
    limiter.give_back(T0)
    assert limiter.sends_today(T0 + 4000) == 1
    assert limiter.sends_in_last_hour(T0 + 4000) == 1
    assert limiter.tokens(T0 + 4000) == pytest.approx(1.0)  # as if only T0 + 4000 had been sent


def test_jitter_within_bounds_and_seeded() -> None:
    limits = Limits(daily_cap=1000, hourly_cap=10, burst=1, jitter_seconds=60)
    a = greedy(MailboxLimiter(limits, rng=random.Random(42)), T0, 30)
    b = greedy(MailboxLimiter(limits, rng=random.Random(42)), T0, 30)
    assert a == b
    gaps = [y - x for x, y in zip(a, a[1:])]
    assert all(360 <= gap <= 420 for gap in gaps)
    assert len(set(gaps)) > 1  # really random, not a fixed extra


def test_jitter_delays_even_a_full_bucket() -> None:
    limiter = MailboxLimiter(Limits(daily_cap=100, hourly_cap=10, burst=5, jitter_seconds=30), rng=random.Random(1))
    limiter.record(T0)
    assert T0 <= limiter.next_allowed(T0) <= T0 + 30


def test_update_keeps_history_and_applies_new_caps() -> None:
    limiter = MailboxLimiter(Limits(daily_cap=100, hourly_cap=10, burst=10))
    for k in range(6):
        limiter.record(T0 + k)
    limiter.update(Limits(daily_cap=100, hourly_cap=4, burst=2))
    assert limiter.sends_in_last_hour(T0 + 10) == 6
    # Six sends in the hour with a cap of four: three must leave, the third at T0 + 2 + 1 h.
    assert limiter.next_allowed(T0 + 10) == T0 + 2 + 3600
    limiter.update(Limits(daily_cap=6, hourly_cap=10, burst=10))
    assert limiter.next_allowed(T0 + 10) == dt.datetime(2024, 6, 11, tzinfo=UTC).timestamp()


def test_memory_stays_bounded() -> None:
    limiter = MailboxLimiter(Limits(daily_cap=200, hourly_cap=30, burst=3))
    greedy(limiter, T0, 2000)
    assert limiter.sends_in_last_hour(limiter.next_allowed(T0)) <= 30
    assert len(limiter._recent) <= 31
    assert len(limiter._per_day) <= 2


def test_record_out_of_order_is_refused() -> None:
    limiter = MailboxLimiter(Limits(daily_cap=10, hourly_cap=10))
    limiter.record(T0)
    with pytest.raises(ValueError):
        limiter.record(T0 - 1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"daily_cap": 0}, "dailyCap"),
        ({"daily_cap": True}, "dailyCap"),
        ({"hourly_cap": -1}, "hourlyCap"),
        ({"hourly_cap": 2.5}, "hourlyCap"),
        ({"burst": 0}, "burst"),
        ({"jitter_seconds": -1.0}, "jitterSeconds"),
        ({"jitter_seconds": float("nan")}, "jitterSeconds"),
        ({"warmup": ((7, 10), (7, 25))}, "warmup"),
        ({"warmup": ((14, 10), (7, 25))}, "warmup"),
        ({"warmup": ((0, 10),)}, "warmup"),
        ({"warmup": ((7, 0),)}, "warmup"),
        ({"warmup": ((7,),)}, "warmup"),
        ({"warmup_start": dt.datetime(2024, 1, 1)}, "warmupStart"),
        ({"timezone": "Nowhere/City"}, "timezone"),
    ],
)
def test_invalid_limits_name_the_field(kwargs: dict[str, object], field: str) -> None:
    base: dict[str, object] = {"daily_cap": 50, "hourly_cap": 10}
    with pytest.raises(ValidationError) as caught:
        Limits(**{**base, **kwargs})  # type: ignore[arg-type]
    assert caught.value.field == field


def test_warmup_lists_are_normalised() -> None:
    limits = Limits(daily_cap=50, hourly_cap=10, warmup=[[7, 10], [14, 25]])  # type: ignore[arg-type]
    assert limits.warmup == ((7, 10), (14, 25))
    hash(limits)


@st.composite
def limits_strategy(draw: st.DrawFn) -> Limits:
    daily = draw(st.integers(1, 40))
    stages = draw(st.lists(st.integers(1, 40), max_size=3))
    days = sorted(set(draw(st.lists(st.integers(1, 5), min_size=len(stages), max_size=len(stages)))))
    warmup = tuple(zip(days, stages))
    return Limits(
        daily_cap=daily,
        hourly_cap=draw(st.integers(1, 20)),
        burst=draw(st.integers(1, 6)),
        jitter_seconds=draw(st.sampled_from([0.0, 0.0, 30.0, 600.0])),
        warmup=warmup,
        warmup_start=dt.date(2024, 3, 29) + dt.timedelta(days=draw(st.integers(-2, 3))) if warmup else None,
        timezone=draw(st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Pacific/Auckland"])),
    )


@settings(max_examples=150, deadline=None)
@given(
    limits=limits_strategy(),
    start=st.floats(at("UTC", 2024, 3, 29), at("UTC", 2024, 4, 2)),
    gaps=st.lists(st.floats(0, 4 * 3600), min_size=1, max_size=80),
    seed=st.integers(0, 2**32 - 1),
)
def test_greedy_sender_never_breaks_a_cap(
    limits: Limits, start: float, gaps: list[float], seed: int
) -> None:
    limiter = MailboxLimiter(limits, rng=random.Random(seed))
    sent: list[float] = []
    demand = start
    for gap in gaps:
        demand += gap
        when = limiter.next_allowed(max(demand, sent[-1] if sent else demand))
        assert when >= demand
        assert limiter.next_allowed(when) == when  # the answer is itself allowed
        limiter.record(when)
        sent.append(when)
    for a in sent:
        assert sum(1 for s in sent if a <= s < a + 3600) <= limits.hourly_cap
    per_day: dict[dt.date, int] = {}
    for s in sent:
        day = dt.datetime.fromtimestamp(math.floor(s), ZoneInfo(limits.timezone)).date()
        per_day[day] = per_day.get(day, 0) + 1
    for day, count in per_day.items():
        assert count <= limits.cap_on(day)


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/Havana", "Asia/Kathmandu", "Australia/Lord_Howe"]),
    times=st.lists(st.floats(min_value=1.7e9, max_value=1.9e9, allow_nan=False), min_size=1, max_size=40),
    days=st.lists(st.integers(min_value=0, max_value=2000), min_size=1, max_size=10),
    delta=st.sampled_from([-1.5, -1.0, -0.25, 0.0, 0.25, 1.0]),
)
def test_cached_local_day_matches_the_zone_at_every_instant(
    zone: str, times: list[float], days: list[int], delta: float
) -> None:
    # _local_date keeps the last day's [start, end); any order of questions must get the
    # answer a fresh zone conversion gives, across DST days (Havana skips midnight itself),
    # including just around local midnights.
    tz = ZoneInfo(zone)
    midnights = [dt.datetime.combine(dt.date(2024, 1, 1) + dt.timedelta(days=d), dt.time(0), tzinfo=tz).timestamp()
                 for d in days]
    limiter = MailboxLimiter(Limits(daily_cap=10, hourly_cap=10, timezone=zone))
    for t in times + [m + delta for m in midnights] + [t + 1 for t in times] + sorted(times):
        expected = dt.datetime.fromtimestamp(math.floor(t), tz).date()
        assert limiter._local_date(t) == expected


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/Havana", "Australia/Lord_Howe", "America/Santiago"])
def test_cached_local_day_across_every_dst_change(zone: str) -> None:
    # Every day of 2024-2026 whose offset changes, and the days around it: asked in time order
    # (how the limiter asks), each second around each local midnight gets the zone's own date.
    tz = ZoneInfo(zone)
    start = dt.date(2024, 1, 1)

    def noon_offset(d: int) -> dt.timedelta | None:
        return dt.datetime.combine(start + dt.timedelta(days=d), dt.time(12), tzinfo=tz).utcoffset()

    changes = [d for d in range(1, 1096) if noon_offset(d) != noon_offset(d - 1)]
    assert len(changes) >= 4, "the zone must change offset in these years for the test to mean anything"
    limiter = MailboxLimiter(Limits(daily_cap=10, hourly_cap=10, timezone=zone))
    for d in changes:
        for near in (d - 1, d, d + 1, d + 2):
            midnight = dt.datetime.combine(start + dt.timedelta(days=near), dt.time(0), tzinfo=tz).timestamp()
            for t in (midnight - 3601, midnight - 1, midnight - 0.5, midnight, midnight + 0.5, midnight + 3599,
                      midnight + 3600, midnight + 23 * 3600 + 1):
                assert limiter._local_date(t) == dt.datetime.fromtimestamp(math.floor(t), tz).date(), (zone, t)
