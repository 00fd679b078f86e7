"""Holiday calendars and blackout dates: the days a send window stays shut. Pure.

Calendars are named ``CC`` (a country, ISO 3166-1 alpha-2) or ``CC-SUB`` (a subdivision, as the
``holidays`` package spells it: ``DE-BY``, ``US-CA``). The package is data, not I/O: the same name
and year always give the same dates, so a window stays a pure function of the clock.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence

import holidays

from dripd.errors import ValidationError

MAX_BLACKOUT_DATES = 366  # a year of single days; longer pauses are what pausing the sequence is for


@functools.lru_cache(maxsize=256)
def _dates(name: str, year: int) -> frozenset[dt.date]:
    country, _, subdivision = name.partition("-")
    calendar = holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    return frozenset(calendar)


def check_calendars(names: Iterable[object], field_name: str = "holidays") -> tuple[str, ...]:
    """The calendar names, upper-cased and checked against the package, or ValidationError
    naming the entry (``holidays[1]``) and the rule."""
    checked: list[str] = []
    for index, name in enumerate(names):
        where = f"{field_name}[{index}]"
        if not isinstance(name, str) or not name.strip():
            raise ValidationError(where, "must be a calendar name such as 'US' or 'DE-BY'")
        code = name.strip().upper()
        try:
            _dates(code, 2026)
        except NotImplementedError:
            raise ValidationError(where, f"unknown holiday calendar {name!r} (a country code such as 'US', "
                                         "or country-subdivision such as 'DE-BY')") from None
        checked.append(code)
    return tuple(dict.fromkeys(checked))


def check_blackout_dates(values: Iterable[object], field_name: str = "blackoutDates") -> tuple[dt.date, ...]:
    """Blackout days from ISO dates (``2026-12-24``) or dates, sorted, or ValidationError."""
    days: set[dt.date] = set()
    for index, value in enumerate(values):
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            days.add(value)
            continue
        try:
            days.add(dt.date.fromisoformat(value) if isinstance(value, str) else _not_a_date())
        except ValueError:
            raise ValidationError(f"{field_name}[{index}]", "must be a date written YYYY-MM-DD") from None
    if len(days) > MAX_BLACKOUT_DATES:
        raise ValidationError(field_name, f"at most {MAX_BLACKOUT_DATES} dates (pause the sequence for longer breaks)")
    return tuple(sorted(days))


def _not_a_date() -> dt.date:
    raise ValueError("not a date")


def is_closed_day(day: dt.date, calendars: Sequence[str], blackout: frozenset[dt.date]) -> bool:
    """Whether ``day`` (a local date) is a holiday in any calendar or a blackout date."""
    if day in blackout:
        return True
    return any(day in _dates(name, day.year) for name in calendars)
