"""The daemon's one clock.

Wall time is an epoch offset plus ``trio.current_time()``, so a test running under
``trio.testing.MockClock`` (pytest-trio's ``autojump_clock``) moves every cadence, window and
throttle decision in simulated time. Business code asks this clock, never ``time.time()``.
"""

from __future__ import annotations

import datetime as dt
import time

import trio


class Clock:
    """Epoch seconds derived from trio's clock; ``epoch_at_zero`` pins where trio time 0 falls."""

    def __init__(self, epoch_at_zero: float | None = None) -> None:
        if epoch_at_zero is None:
            # The one place that reads the real wall clock: at start-up, to anchor trio time.
            epoch_at_zero = time.time() - trio.current_time()
        self._offset = epoch_at_zero

    @classmethod
    def starting_at(cls, when: dt.datetime) -> "Clock":
        """A clock whose ``now()`` is ``when`` at the current trio time (for simulations)."""
        return cls(when.timestamp() - trio.current_time())

    def now(self) -> float:
        return self._offset + trio.current_time()

    def to_trio(self, epoch: float) -> float:
        """Convert an epoch time into a trio deadline."""
        return epoch - self._offset

    async def sleep_until(self, epoch: float) -> None:
        await trio.sleep_until(self.to_trio(epoch))


def iso(epoch: float | None) -> str | None:
    """RFC 3339 UTC text for an epoch time (API and CLI output)."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat().replace("+00:00", "Z")


class _Offloaded:
    """Counts work running off the trio thread (SQLite, file writes).

    trio cannot see worker threads, so a simulated clock (``MockClock`` with autojump) would
    jump to the next deadline while a query is still running. The test clock reads this count
    and does not jump while it is non-zero; in production it is one integer add per call.
    """

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> None:
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        self.count -= 1


offloaded = _Offloaded()
