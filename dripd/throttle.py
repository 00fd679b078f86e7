"""Per-mailbox send limits, all owned by one ``MailboxLimiter``. Pure.

One object per mailbox holds every limit (token bucket, hard rolling hour, daily cap with
warm-up, jitter) so caps hold across all sequences and tasks; per-worker throttles multiply.
Time is always passed in as epoch seconds; nothing here reads a clock.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from dripd.errors import ValidationError
from dripd.window import load_zone, local_hour_start

HOUR = 3600.0
_ONE_DAY = dt.timedelta(days=1)


def _positive_int(value: object) -> bool:
    return type(value) is int and value > 0  # bool is an int subclass; reject it


@dataclass(frozen=True)
class Limits:
    """A mailbox's caps. ``warmup`` stages are ((days_since_start, cap), ...), days ascending."""

    daily_cap: int
    hourly_cap: int
    burst: int = 1
    jitter_seconds: float = 0.0
    warmup: tuple[tuple[int, int], ...] = ()
    warmup_start: dt.date | None = None
    timezone: str = "UTC"
    daily_new_cap: int | None = None  # first emails to new contacts per local day (None: no own cap)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", load_zone(self.timezone, "timezone"))
        if not _positive_int(self.daily_cap):
            raise ValidationError("dailyCap", "must be a positive integer")
        if not _positive_int(self.hourly_cap):
            raise ValidationError("hourlyCap", "must be a positive integer")
        if self.daily_new_cap is not None and not _positive_int(self.daily_new_cap):
            raise ValidationError("dailyNewCap", "must be a positive integer")
        if not _positive_int(self.burst):
            raise ValidationError("burst", "must be an integer >= 1")
        jitter = self.jitter_seconds
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not (
            math.isfinite(jitter) and jitter >= 0
        ):
            raise ValidationError("jitterSeconds", "must be a finite number >= 0")
        # Config may hand lists; normalise so the value stays hashable and immutable.
        try:
            stages = tuple((days, cap) for days, cap in self.warmup)
        except (TypeError, ValueError):
            raise ValidationError("warmup", "must be a list of [days, cap] pairs") from None
        object.__setattr__(self, "warmup", stages)
        previous = 0
        for days, cap in stages:
            if not _positive_int(days) or days <= previous:
                raise ValidationError("warmup", "stage days must be positive, strictly increasing")
            if not _positive_int(cap):
                raise ValidationError("warmup", "stage caps must be positive integers")
            previous = days
        # datetime is a date subclass, but a day index needs a calendar date.
        if self.warmup_start is not None and (
            not isinstance(self.warmup_start, dt.date) or isinstance(self.warmup_start, dt.datetime)
        ):
            raise ValidationError("warmupStart", "must be a date")

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    def cap_on(self, day: dt.date) -> int:
        """Effective daily cap for local ``day``: the warm-up stage's cap, never above daily_cap."""
        if self.warmup_start is None or not self.warmup:
            return self.daily_cap
        index = (day - self.warmup_start).days  # negative (not started yet) -> first stage
        for days, cap in self.warmup:
            if index < days:
                return min(cap, self.daily_cap)
        return self.daily_cap


class MailboxLimiter:
    """Answers "when may this mailbox send next?" and records the sends that happened."""

    def __init__(
        self,
        limits: Limits,
        *,
        rng: random.Random | None = None,
        history: Iterable[float] = (),
        new_history: Iterable[float] = (),
    ) -> None:
        self._limits = limits
        self._rng = rng if rng is not None else random.Random()
        # Token bucket as (level, time of level); the bucket starts full.
        self._level = float(limits.burst)
        self._level_at: float | None = None
        # Sends that may still count toward the rolling hour (bounded by the hourly rate).
        self._recent: deque[float] = deque()
        # Sends per local date; only the last send's day and the one before are kept.
        self._per_day: dict[dt.date, int] = {}
        self._last: float | None = None
        self._jitter = 0.0
        self._day_span: tuple[float, float, dt.date] | None = None  # see _local_date
        # First emails to new contacts per local date (the daily_new_cap), kept like _per_day.
        self._new_per_day: dict[dt.date, int] = {}
        for t in new_history:
            self._count_new(t)
        times = sorted(history)
        for t in times:
            self._apply(t)
        # Past gaps already contain the jitter they had; only the send after the last one
        # still needs a delay, so one draw replaces replaying every draw.
        if times:
            self._jitter = self._draw_jitter()

    @property
    def limits(self) -> Limits:
        return self._limits

    # -- queries -------------------------------------------------------------------------

    def next_allowed(self, now: float) -> float:
        """Earliest time >= ``now`` at which one more send is allowed by every limit."""
        if self._last is None:
            return self._earliest(now)
        # Jitter stretches the gap after the last send beyond what the caps alone allow;
        # it is anchored to that send, so the answer does not drift as ``now`` moves.
        gate = self._earliest(self._last) + self._jitter
        return self._earliest(max(now, gate))

    def daily_cap_on(self, now: float) -> int:
        """Effective cap for the mailbox-local day of ``now`` (warm-up stage included)."""
        return self._limits.cap_on(self._local_date(now))

    def sends_today(self, now: float) -> int:
        return self._per_day.get(self._local_date(now), 0)

    def new_sends_today(self, now: float) -> int:
        """First emails to new contacts on the mailbox-local day of ``now``."""
        return self._new_per_day.get(self._local_date(now), 0)

    def next_allowed_new(self, now: float) -> float:
        """Earliest time >= ``now`` for a first email to a new contact: every limit of
        ``next_allowed`` and the daily new-contact cap (follow-ups are not held by it)."""
        s = self.next_allowed(now)
        cap = self._limits.daily_new_cap
        for _ in range(4):
            day = self._local_date(s)
            if cap is None or self._new_per_day.get(day, 0) < cap:
                return s
            s = self.next_allowed(local_hour_start(day + _ONE_DAY, 0, self._limits.zone))
        raise RuntimeError("daily new-contact cap did not reset at local midnight")

    def tokens(self, now: float) -> float:
        """Token bucket level at ``now`` (negative only if sends outran the limiter)."""
        if self._level_at is None:
            return float(self._limits.burst)
        refill = (now - self._level_at) * self._limits.hourly_cap / HOUR
        return min(float(self._limits.burst), self._level + refill)

    def sends_in_last_hour(self, now: float) -> int:
        """Sends in (now - 1 h, now]."""
        return sum(1 for t in self._recent if t <= now < t + HOUR)

    # -- changes -------------------------------------------------------------------------

    def record(self, t: float, new: bool = False) -> None:
        """A send happened at ``t`` (not before the previous one); ``new``: a first email to
        a new contact, counted against the daily new-contact cap too."""
        self._apply(t)
        if new:
            self._count_new(t)
        self._jitter = self._draw_jitter()

    def give_back(self, t: float, new: bool = False) -> None:
        """The send recorded at ``t`` did not happen (withdrawn before it reached the transport):
        its place in the rolling hour and its count for the day (and for new contacts, when
        ``new``) are given back, and its token when it is the latest send. A token taken before
        a later send is not: the bucket may have been full between them, and only replaying the
        later sends could tell. The gap drawn after it stays too: the next send may wait a
        little longer than it had to, never less."""
        if t in self._recent:
            self._recent.remove(t)
        day = self._local_date(t)
        for counts, counted in ((self._per_day, True), (self._new_per_day, new)):
            if counted and counts.get(day, 0) > 0:
                counts[day] -= 1
        if t == self._level_at:
            # Exact: the level before the send, carried to ``t``, is the level after it plus one.
            self._level = min(self._level + 1.0, float(self._limits.burst))

    def update(self, limits: Limits) -> None:
        """Apply reloaded limits, keeping what was sent.

        Day counters stay keyed by the dates they were counted under, even if the zone changed.
        """
        if self._level_at is None:
            self._level = float(limits.burst)
        else:
            self._level = min(self._level, float(limits.burst))
        self._limits = limits
        self._day_span = None  # the zone may have changed

    # -- internals -----------------------------------------------------------------------

    def _apply(self, t: float) -> None:
        if self._last is not None and t < self._last:
            raise ValueError(f"send at {t} recorded after a later one at {self._last}")
        self._level = self.tokens(t) - 1.0
        self._level_at = t
        self._recent.append(t)
        # Same expression as in _hour_ready (t + HOUR), so float rounding cannot split them.
        while self._recent[0] + HOUR <= t:
            self._recent.popleft()
        day = self._local_date(t)
        self._per_day[day] = self._per_day.get(day, 0) + 1
        for old in [d for d in self._per_day if d < day - _ONE_DAY]:
            del self._per_day[old]
        self._last = t

    def _count_new(self, t: float) -> None:
        day = self._local_date(t)
        self._new_per_day[day] = self._new_per_day.get(day, 0) + 1
        for old in [d for d in self._new_per_day if d < day - _ONE_DAY]:
            del self._new_per_day[old]

    def _draw_jitter(self) -> float:
        jitter = self._limits.jitter_seconds
        return self._rng.uniform(0.0, jitter) if jitter > 0 else 0.0

    def _bucket_ready(self) -> float:
        """When the bucket next holds one whole token (a constant until the next send)."""
        if self._level_at is None or self._level >= 1.0:
            return -math.inf
        return self._level_at + (1.0 - self._level) * HOUR / self._limits.hourly_cap

    def _hour_ready(self) -> float:
        """When fewer than hourly_cap sends remain in the trailing half-open hour."""
        excess = len(self._recent) - self._limits.hourly_cap + 1
        if excess <= 0:
            return -math.inf
        # The excess oldest sends must leave [s - 1 h, s): the last of them at exactly +1 h.
        return self._recent[excess - 1] + HOUR

    def _earliest(self, x: float) -> float:
        """Earliest s >= x allowed by the bucket, the rolling hour and the daily cap."""
        s = max(x, self._bucket_ready(), self._hour_ready())
        # Both constants are <= s, so moving s to a later midnight keeps them satisfied; a new
        # day starts at zero sends and every cap is >= 1, so this settles in one or two turns.
        for _ in range(4):
            day = self._local_date(s)
            if self._per_day.get(day, 0) < self._limits.cap_on(day):
                return s
            s = max(s, local_hour_start(day + _ONE_DAY, 0, self._limits.zone))
        raise RuntimeError("daily cap did not reset at local midnight")

    def _local_date(self, t: float) -> dt.date:
        # The limiter asks several times per send, nearly always about the same day; a zone
        # conversion each time was ~1.5 % of the event loop (bench/bench_dispatch.py), so the
        # last day's bounds are kept. [start, end) holds exactly the instants of that local date.
        span = self._day_span
        if span is not None and span[0] <= t < span[1]:
            return span[2]
        # Floor like window.py does: a fraction must never round a send into the next day.
        day = dt.datetime.fromtimestamp(math.floor(t), self._limits.zone).date()
        zone = self._limits.zone
        self._day_span = (local_hour_start(day, 0, zone), local_hour_start(day + _ONE_DAY, 0, zone), day)
        return day
