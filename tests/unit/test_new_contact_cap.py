"""The daily new-contact cap of a mailbox: first emails to new contacts stop at it for the
mailbox-local day while follow-ups keep flowing under the daily cap."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, strategies as st

from dripd.errors import ValidationError
from dripd.throttle import Limits, MailboxLimiter

DAY0 = dt.datetime(2026, 12, 7, tzinfo=dt.timezone.utc).timestamp()  # midnight UTC
BIG = {"daily_cap": 100, "hourly_cap": 1000, "burst": 1000}


def test_first_emails_wait_for_the_next_local_day_follow_ups_do_not() -> None:
    limiter = MailboxLimiter(Limits(**BIG, daily_new_cap=2, timezone="Europe/Berlin"))
    t = DAY0 + 10 * 3600
    for _ in range(2):
        assert limiter.next_allowed_new(t) == t
        limiter.record(t, new=True)
    berlin_midnight = dt.datetime(2026, 12, 8, tzinfo=dt.timezone(dt.timedelta(hours=1))).timestamp()
    assert limiter.next_allowed_new(t) == berlin_midnight
    assert limiter.next_allowed(t) == t  # a follow-up goes now
    limiter.record(t)
    assert (limiter.sends_today(t), limiter.new_sends_today(t)) == (3, 2)
    assert limiter.next_allowed_new(berlin_midnight) == berlin_midnight


def test_the_daily_cap_still_holds_first_emails_too() -> None:
    limiter = MailboxLimiter(Limits(daily_cap=2, hourly_cap=1000, burst=1000, daily_new_cap=5))
    limiter.record(DAY0 + 1)
    limiter.record(DAY0 + 2)
    assert limiter.next_allowed_new(DAY0 + 3) == DAY0 + 86400


def test_no_cap_means_only_the_others_hold() -> None:
    limiter = MailboxLimiter(Limits(**BIG))
    for i in range(50):
        limiter.record(DAY0 + i, new=True)
    assert limiter.next_allowed_new(DAY0 + 60) == DAY0 + 60


def test_the_count_is_rebuilt_from_history() -> None:
    sends = [DAY0 + 3600 * h for h in range(1, 6)]
    limiter = MailboxLimiter(Limits(**BIG, daily_new_cap=3), history=sends, new_history=sends[:3])
    assert limiter.new_sends_today(DAY0 + 6 * 3600) == 3
    assert limiter.next_allowed_new(DAY0 + 6 * 3600) == DAY0 + 86400


@pytest.mark.parametrize("bad", [0, -1, True])
def test_a_bad_cap_is_refused(bad: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Limits(**BIG, daily_new_cap=bad)  # type: ignore[arg-type]
    assert caught.value.details["field"] == "dailyNewCap"


@given(st.lists(st.tuples(st.floats(0, 3 * 86400), st.booleans()), max_size=120), st.integers(1, 6))
def test_first_emails_never_exceed_the_cap_and_follow_ups_are_never_held_by_it(
    requests: list[tuple[float, bool]], cap: int,
) -> None:
    # Each request sends as soon as the limiter allows, as the lane does (times only move on).
    limiter = MailboxLimiter(Limits(daily_cap=40, hourly_cap=1000, burst=1000, daily_new_cap=cap))
    uncapped = MailboxLimiter(Limits(daily_cap=40, hourly_cap=1000, burst=1000))
    now = DAY0
    new_per_day: dict[int, int] = {}
    for offset, new in sorted(requests):
        now = max(now, DAY0 + offset)
        if not new:  # the same sends so far: a follow-up goes exactly when it would without the cap
            assert limiter.next_allowed(now) == uncapped.next_allowed(now)
        at = limiter.next_allowed_new(now) if new else limiter.next_allowed(now)
        now = at
        limiter.record(at, new=new)
        uncapped.record(at)
        if new:
            day = int((at - DAY0) // 86400)
            new_per_day[day] = new_per_day.get(day, 0) + 1
    assert all(count <= cap for count in new_per_day.values())


def test_mailbox_caps_and_days_off_in_the_config_name_the_key() -> None:
    from dripd.config import parse_config
    from dripd.errors import ConfigError
    from dripd.plugins import Plugins

    plugins = Plugins()

    def error_of(**overrides: object) -> str:
        box = {"id": "sales", "address": "alice@example.com", "maildir": {"path": "var/outbox"}, **overrides}
        with pytest.raises(ConfigError) as info:
            parse_config({"mailboxes": [box]}, plugins.config_sections(), plugins.transports)
        return info.value.message

    assert "mailboxes[0].daily_new_cap" in error_of(daily_new_cap=0)
    assert "mailboxes[0].holidays" in error_of(holidays=["US", "Atlantis"])
    assert "holidays[1]" in error_of(holidays=["US", "Atlantis"])
    assert "mailboxes[0].blackout_dates" in error_of(blackout_dates=["24.12.2026"])
    box = {"id": "sales", "address": "alice@example.com", "maildir": {"path": "var/outbox"}, "holidays": ["de-by"],
           "blackout_dates": [dt.date(2026, 12, 24)], "daily_new_cap": 20}
    [mailbox] = parse_config({"mailboxes": [box]}, plugins.config_sections(), plugins.transports).mailboxes
    assert (mailbox.holidays, mailbox.daily_new_cap) == (["DE-BY"], 20)
