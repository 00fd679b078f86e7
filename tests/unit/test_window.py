"""Send windows: exact openings (weekends, DST, far zones) and a property over random windows."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dripd.errors import ValidationError
from dripd.window import SendWindow, local_hour_start

UTC = dt.timezone.utc


def at(zone: str, *fields: int, fold: int = 0) -> float:
    """Epoch of a local wall time in ``zone``."""
    return dt.datetime(*fields, tzinfo=ZoneInfo(zone), fold=fold).timestamp()


def utc(*fields: int) -> float:
    return dt.datetime(*fields, tzinfo=UTC).timestamp()


OFFICE_NY = SendWindow("America/New_York", weekdays_only=True, start_hour=9, end_hour=17)


def test_friday_after_end_opens_monday_morning() -> None:
    friday_close = at("America/New_York", 2024, 3, 1, 17, 0)  # 2024-03-01 is a Friday
    assert not OFFICE_NY.is_open(friday_close)
    assert OFFICE_NY.is_open(friday_close - 1)
    assert OFFICE_NY.next_open(friday_close) == at("America/New_York", 2024, 3, 4, 9, 0)


def test_before_start_opens_same_day() -> None:
    tuesday_early = at("America/New_York", 2024, 3, 5, 7, 30)
    assert OFFICE_NY.next_open(tuesday_early) == at("America/New_York", 2024, 3, 5, 9, 0)


def test_open_returns_t_itself_and_fractions_never_round_into_the_window() -> None:
    opening = at("America/New_York", 2024, 3, 5, 9, 0)
    assert OFFICE_NY.next_open(opening + 12.25) == opening + 12.25
    assert not OFFICE_NY.is_open(opening - 0.000_01)
    assert OFFICE_NY.next_open(opening - 0.5) == opening


def test_berlin_spring_forward_start_in_gap_opens_at_transition() -> None:
    # 2024-03-31 02:00 CET does not exist: clocks jump to 03:00 CEST at 01:00 UTC.
    window = SendWindow("Europe/Berlin", start_hour=2, end_hour=5)
    assert window.next_open(at("Europe/Berlin", 2024, 3, 31, 1, 30)) == utc(2024, 3, 31, 1, 0)
    assert window.is_open(utc(2024, 3, 31, 1, 0))
    assert not window.is_open(utc(2024, 3, 31, 1, 0) - 1)


def test_berlin_window_inside_skipped_hour_waits_a_day() -> None:
    window = SendWindow("Europe/Berlin", start_hour=2, end_hour=3)
    assert window.next_open(at("Europe/Berlin", 2024, 3, 31, 1, 30)) == at(
        "Europe/Berlin", 2024, 4, 1, 2, 0
    )


def test_berlin_fall_back_opens_at_first_occurrence() -> None:
    # 2024-10-27 02:00-03:00 happens twice in Berlin; the first (CEST) is at 00:00 UTC.
    window = SendWindow("Europe/Berlin", start_hour=2, end_hour=6)
    assert window.next_open(at("Europe/Berlin", 2024, 10, 27, 1, 15)) == utc(2024, 10, 27, 0, 0)


def test_new_york_dst_days() -> None:
    spring = SendWindow("America/New_York", start_hour=2, end_hour=8)
    # 2024-03-10 02:00 EST is skipped; 03:00 EDT = 07:00 UTC.
    assert spring.next_open(at("America/New_York", 2024, 3, 10, 1, 0)) == utc(2024, 3, 10, 7, 0)
    fall = SendWindow("America/New_York", start_hour=1, end_hour=8)
    # 2024-11-03 01:00 happens twice; the first is 01:00 EDT = 05:00 UTC.
    assert fall.next_open(at("America/New_York", 2024, 11, 3, 0, 30)) == utc(2024, 11, 3, 5, 0)
    after_fold = SendWindow("America/New_York", start_hour=2, end_hour=8)
    # The day has 25 hours: 02:00 EST is 07:00 UTC.
    assert after_fold.next_open(at("America/New_York", 2024, 11, 3, 0, 30)) == utc(2024, 11, 3, 7)


def test_end_hour_24_runs_to_midnight() -> None:
    window = SendWindow("UTC", weekdays_only=True, start_hour=22, end_hour=24)
    assert window.is_open(utc(2024, 3, 1, 23, 59, 59))  # Friday
    assert not window.is_open(utc(2024, 3, 2, 0, 0))  # Saturday
    assert window.next_open(utc(2024, 3, 2, 0, 0)) == utc(2024, 3, 4, 22, 0)
    evenings = SendWindow("UTC", start_hour=22, end_hour=24)
    assert evenings.next_open(utc(2024, 3, 2, 0, 0)) == utc(2024, 3, 2, 22, 0)


def test_auckland_weekday_is_the_local_one() -> None:
    window = SendWindow("Pacific/Auckland", weekdays_only=True, start_hour=9, end_hour=17)
    # Friday 20:00 UTC is Saturday 09:00 NZDT (UTC+13): closed until Monday 09:00 NZDT.
    assert not window.is_open(utc(2024, 1, 5, 20, 0))
    assert window.next_open(utc(2024, 1, 5, 20, 0)) == utc(2024, 1, 7, 20, 0)
    # Sunday 19:00 UTC is Monday 08:00 local.
    assert window.next_open(utc(2024, 1, 7, 19, 0)) == utc(2024, 1, 7, 20, 0)


def test_full_day_every_day_is_always_open() -> None:
    window = SendWindow("Asia/Kathmandu")
    for t in (0.0, 1.5, utc(2024, 3, 31, 1, 0), utc(2031, 7, 4, 12, 34, 56)):
        assert window.is_open(t)
        assert window.next_open(t) == t


def test_local_hour_start_midnight_skipped_in_santiago() -> None:
    # Chile starts DST at local midnight: 2024-09-08 00:00 does not exist; 01:00 -03 does.
    assert local_hour_start(dt.date(2024, 9, 8), 0, ZoneInfo("America/Santiago")) == utc(
        2024, 9, 8, 4, 0
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"timezone": "../etc/passwd"}, "timezone"),
        ({"start_hour": -1}, "sendWindowStartHour"),
        ({"start_hour": 24}, "sendWindowStartHour"),
        ({"end_hour": 0}, "sendWindowEndHour"),
        ({"end_hour": 25}, "sendWindowEndHour"),
        ({"start_hour": 9, "end_hour": 9}, "sendWindowEndHour"),
        ({"start_hour": 17, "end_hour": 9}, "sendWindowEndHour"),
    ],
)
def test_invalid_windows_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SendWindow(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


# Zones with unusual rules: 30-minute DST (Lord Howe), 2-hour DST (Troll), a skipped day
# (Apia, 2011-12-30), DST at midnight (Santiago), +13/+13:45 offsets, quarter-hour offsets.
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "Antarctica/Troll",
    "Pacific/Apia",
    "America/Santiago",
    "Asia/Kathmandu",
    "America/St_Johns",
]


@st.composite
def windows(draw: st.DrawFn) -> SendWindow:
    start = draw(st.integers(0, 23))
    end = draw(st.integers(start + 1, 24))
    return SendWindow(draw(st.sampled_from(ZONES)), draw(st.booleans()), start, end)


@settings(max_examples=300, deadline=None)
@given(
    window=windows(),
    t=st.floats(utc(2005, 1, 1), utc(2040, 1, 1), allow_nan=False, allow_infinity=False),
)
def test_next_open_is_the_first_open_moment(window: SendWindow, t: float) -> None:
    opens = window.next_open(t)
    assert opens >= t
    assert window.is_open(opens)
    if opens > t:
        assert opens == int(opens)  # openings fall on whole seconds
        assert not window.is_open(opens - 1)
        # Sample [t, opens): t itself and a quarter-hour grid.
        grid = (int(t) // 900 + 1) * 900
        samples = [t, *range(grid, int(opens), 900)]
        assert not any(window.is_open(s) for s in samples)
