"""Send windows: when, in a recipient-facing zone, a sequence may send. Pure.

Openness is defined on the local wall clock (weekday and hour of ``t`` in the window's zone);
``next_open`` finds the first instant at which that predicate becomes true, so the two can
never disagree, even across DST jumps. Time is always passed in as epoch seconds.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dripd.calendars import is_closed_day
from dripd.errors import ValidationError

_ONE_DAY = dt.timedelta(days=1)
# A valid window opens within a week of its last closed day (blackouts are at most 366 days);
# the bound only turns a logic error into an exception.
_MAX_DAYS_SEARCHED = 400
# Offset changes are found by sampling each local day at this many points, then bisecting.
_DAY_SAMPLES = 4


def load_zone(name: object, field_name: str = "timezone") -> ZoneInfo:
    """The ``ZoneInfo`` for an IANA name, or a ValidationError naming ``field_name``."""
    if not isinstance(name, str) or not name:
        raise ValidationError(field_name, "must be an IANA time zone name")
    try:
        return ZoneInfo(name)  # ZoneInfo keeps its own cache: repeated names cost a dict lookup
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError(field_name, f"unknown time zone {name!r}") from None


def zone_is_known(name: str) -> bool:
    """Whether ``name`` is an IANA zone this machine knows (a contact's zone may not be)."""
    try:
        load_zone(name)
    except ValidationError:
        return False
    return True


def _wall(t: float, zone: ZoneInfo) -> dt.datetime:
    """Naive local wall time of ``t`` (seconds floored, so fractions never round up a boundary)."""
    return dt.datetime.fromtimestamp(math.floor(t), zone).replace(tzinfo=None)


def local_hour_start(day: dt.date, hour: int, zone: ZoneInfo) -> float:
    """Epoch of local ``day`` at ``hour``:00 (hour 24 = next midnight).

    A wall time skipped by a forward jump maps to the first instant after the gap (the
    transition itself); a repeated one maps to its first occurrence (fold=0).
    """
    if hour == 24:
        day, hour = day + _ONE_DAY, 0
    wall = dt.datetime.combine(day, dt.time(hour))
    first = wall.replace(tzinfo=zone, fold=0).timestamp()
    second = wall.replace(tzinfo=zone, fold=1).timestamp()
    if second >= first:  # exists once (equal) or twice (fold=0 is the earlier instant)
        return first
    # In a gap fold=0 reads the pre-jump offset (too late) and fold=1 the post-jump one (too
    # early); the transition lies in (second, first]. Offsets are whole seconds, so bisect them.
    lo, hi = math.floor(second), math.ceil(first)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _wall(mid, zone) >= wall:
            hi = mid
        else:
            lo = mid
    return float(hi)


def _offset_changes(zone: ZoneInfo, lo: float, hi: float) -> Iterator[float]:
    """Instants in (lo, hi] at which the zone's UTC offset changes (the wall clock jumps)."""

    def offset(t: int) -> dt.timedelta | None:
        return dt.datetime.fromtimestamp(t, zone).utcoffset()

    a0, b0 = math.floor(lo), math.ceil(hi)
    points = [a0 + (b0 - a0) * i // _DAY_SAMPLES for i in range(_DAY_SAMPLES + 1)]
    for a, b in zip(points, points[1:]):
        before = offset(a)
        if before == offset(b):
            continue
        while b - a > 1:  # invariant: offset(a) == before != offset(b)
            mid = (a + b) // 2
            if offset(mid) == before:
                a = mid
            else:
                b = mid
        yield float(b)


@dataclass(frozen=True)
class SendWindow:
    """Local hours [start_hour, end_hour) in ``timezone``, optionally Monday to Friday only,
    never on a holiday of ``holidays`` (calendar names, see dripd.calendars) or a ``blackout``
    date. Days are judged on the local wall clock, like the hours."""

    timezone: str = "UTC"
    weekdays_only: bool = False
    start_hour: int = 0
    end_hour: int = 24
    holidays: tuple[str, ...] = ()
    blackout: frozenset[dt.date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", load_zone(self.timezone, "timezone"))
        # bool is an int subclass; True as an hour is a config mistake, not hour 1.
        if type(self.start_hour) is not int or not 0 <= self.start_hour <= 23:
            raise ValidationError("sendWindowStartHour", "must be an integer from 0 to 23")
        if type(self.end_hour) is not int or not 1 <= self.end_hour <= 24:
            raise ValidationError("sendWindowEndHour", "must be an integer from 1 to 24")
        if self.start_hour >= self.end_hour:
            raise ValidationError("sendWindowEndHour", "must be greater than sendWindowStartHour")

    @property
    def always_open(self) -> bool:
        return (not self.weekdays_only and self.start_hour == 0 and self.end_hour == 24
                and not self.holidays and not self.blackout)

    def is_open(self, t: float) -> bool:
        """Whether a send may happen at epoch ``t`` (judged on the local wall clock)."""
        if self.always_open:
            return True
        wall = _wall(t, self._zone)
        if self.weekdays_only and wall.weekday() >= 5:
            return False
        if not self.start_hour <= wall.hour < self.end_hour:
            return False
        return not (self.holidays or self.blackout) or not is_closed_day(wall.date(), self.holidays, self.blackout)

    def closed_on(self, day: dt.date) -> bool:
        """Whether the whole local ``day`` is shut (weekend, holiday or blackout)."""
        if self.weekdays_only and day.weekday() >= 5:
            return True
        return bool(self.holidays or self.blackout) and is_closed_day(day, self.holidays, self.blackout)

    def next_open(self, t: float) -> float:
        """``t`` if the window is open then, else the earliest later instant at which it opens."""
        if self.is_open(t):
            return t
        zone = self._zone
        # Start a day early: a backward jump can make an earlier local date reappear after t.
        day = _wall(t, zone).date() - _ONE_DAY
        best = math.inf
        for _ in range(_MAX_DAYS_SEARCHED):
            begins = local_hour_start(day, 0, zone)
            if begins > best:  # every candidate of this and later days comes after best
                return best
            if self.closed_on(day) and self.closed_on(day + _ONE_DAY):
                # Shut all day; and since tomorrow is shut too, no forward jump of the clock
                # during today can land in an open hour.
                day += _ONE_DAY
                continue
            for candidate in self._openings(day, begins):
                if t < candidate < best and self.is_open(candidate):
                    best = candidate
            day += _ONE_DAY
        if best < math.inf:
            return best
        raise RuntimeError(f"{self!r} found no opening within {_MAX_DAYS_SEARCHED} days")

    def _openings(self, day: dt.date, begins: float) -> Iterator[float]:
        """Every instant on local ``day`` at which the window can go from closed to open.

        The wall clock rises continuously except at offset changes, so it can only enter the
        window by reaching start_hour (once, or twice when that hour repeats) or by jumping.
        """
        zone = self._zone
        yield local_hour_start(day, self.start_hour, zone)
        wall = dt.datetime.combine(day, dt.time(self.start_hour))
        yield wall.replace(tzinfo=zone, fold=1).timestamp()
        yield from _offset_changes(zone, begins, local_hour_start(day, 24, zone))
