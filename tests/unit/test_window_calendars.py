"""Holidays, blackout dates and the contact's own zone in the send window."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings, strategies as st

from dripd.errors import ValidationError
from dripd.model import SequenceSettings, contact_fields

UTC = dt.timezone.utc


def _at(year: int, month: int, day: int, hour: int = 12, zone: str = "UTC") -> float:
    return dt.datetime(year, month, day, hour, tzinfo=ZoneInfo(zone)).timestamp()


def test_holidays_and_blackouts_are_skipped_like_weekends() -> None:
    settings_ = SequenceSettings(name="s", mailbox_id="m", timezone="America/New_York", weekdays_only=True,
                                 start_hour=9, end_hour=17, holidays=("us", "DE-BY"), blackout_dates=("2026-12-24",))
    window = settings_.window()
    opens = window.next_open(_at(2026, 12, 24, 12, "America/New_York"))
    # 24th blackout, 25th US Christmas, 26th Bavaria's second Christmas day and a Saturday, 27th Sunday.
    assert dt.datetime.fromtimestamp(opens, ZoneInfo("America/New_York")) == \
        dt.datetime(2026, 12, 28, 9, tzinfo=ZoneInfo("America/New_York"))
    assert window.is_open(_at(2026, 12, 23, 12, "America/New_York"))
    assert not window.is_open(_at(2026, 7, 3, 12, "America/New_York"))  # Independence Day observed (Friday)


def test_calendar_and_date_errors_name_the_entry() -> None:
    with pytest.raises(ValidationError) as refused:
        SequenceSettings(name="s", mailbox_id="m", holidays=("US", "Narnia"))
    assert refused.value.field == "holidays[1]"
    with pytest.raises(ValidationError) as refused:
        SequenceSettings(name="s", mailbox_id="m", blackout_dates=("2026-02-30",))
    assert refused.value.field == "blackoutDates[0]"
    with pytest.raises(ValidationError) as refused:
        SequenceSettings(name="s", mailbox_id="m", window_zone="recipient")
    assert refused.value.field == "windowZone"


US_DAYS = sorted(d for d in holidays.country_holidays("US", years=range(2024, 2027)))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 3 * 366 * 24 * 12), st.sampled_from(["UTC", "America/New_York", "Europe/Berlin", "Asia/Tokyo"]))
def test_a_send_never_lands_on_a_holiday_or_outside_the_hours(offset: int, zone: str) -> None:
    settings_ = SequenceSettings(name="s", mailbox_id="m", timezone=zone, start_hour=8, end_hour=18,
                                 weekdays_only=True, holidays=("US",), blackout_dates=("2025-06-02",))
    window = settings_.window()
    t = _at(2024, 1, 1, 0) + offset * 300
    opens = window.next_open(t)
    local = dt.datetime.fromtimestamp(opens, ZoneInfo(zone))
    assert opens >= t
    assert local.date() not in US_DAYS and local.date() != dt.date(2025, 6, 2)
    assert local.weekday() < 5 and 8 <= local.hour < 18
    # nothing open was skipped: one minute before the opening (if after t) the window was shut
    if opens > t:
        assert not window.is_open(max(t, opens - 60))


def _dst_changes(zone: str) -> list[float]:
    """Every instant in 2024-2026 at which ``zone``'s UTC offset changes."""
    tz = ZoneInfo(zone)
    out, t = [], _at(2024, 1, 1, 0)
    end = _at(2027, 1, 1, 0)
    previous = dt.datetime.fromtimestamp(t, tz).utcoffset()
    while t < end:
        t += 3600
        offset = dt.datetime.fromtimestamp(t, tz).utcoffset()
        if offset != previous:
            out.append(t)
            previous = offset
    return out


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin", "Australia/Sydney"])
def test_the_contact_zone_window_opens_at_local_nine_across_every_dst_change(zone: str) -> None:
    settings_ = SequenceSettings(name="s", mailbox_id="m", timezone="Asia/Tokyo", window_zone="contact",
                                 start_hour=9, end_hour=17)
    window = settings_.window(zone)
    changes = _dst_changes(zone)
    assert len(changes) == 6  # two a year, 2024-2026
    for change in changes:
        for days_later in (0, 1):
            t = change + days_later * 86400
            opens = window.next_open(t)
            local = dt.datetime.fromtimestamp(opens, ZoneInfo(zone))
            if opens == t:
                assert 9 <= local.hour < 17  # already open
            else:
                assert (local.hour, local.minute, local.second) == (9, 0, 0)  # the next local 9:00
                assert opens - t < 86400


def test_the_contact_zone_falls_back_to_the_sequence_zone() -> None:
    settings_ = SequenceSettings(name="s", mailbox_id="m", timezone="Europe/Berlin", window_zone="contact",
                                 start_hour=9, end_hour=17)
    assert settings_.window(None).timezone == "Europe/Berlin"
    assert settings_.window("Not/AZone").timezone == "Europe/Berlin"
    assert settings_.window("America/Chicago").timezone == "America/Chicago"
    # windowZone "sequence" ignores the contact's zone
    assert settings_.replace(window_zone="sequence").window("America/Chicago").timezone == "Europe/Berlin"


def test_a_contact_timezone_is_checked_where_it_is_given() -> None:
    assert contact_fields({"plan": "pro"}, " Europe/Paris ") == {"plan": "pro", "timezone": "Europe/Paris"}
    assert contact_fields({"timezone": "Asia/Kolkata"}) == {"timezone": "Asia/Kolkata"}
    with pytest.raises(ValidationError) as refused:
        contact_fields({"timezone": "Mars/Olympus"})
    assert refused.value.field == "fields.timezone"
    with pytest.raises(ValidationError) as refused:
        contact_fields({}, "GMT+25")
    assert refused.value.field == "timezone"
