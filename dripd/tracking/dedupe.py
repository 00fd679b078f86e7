"""Which tracking hits are worth a row. Pure: the caller passes the time.

Every pixel fetch and click used to be stored: 3,000 GETs of one pixel made 3,000 event rows
(41 MB of WAL, a 1.4 MB contact log). A repeat of the same hit adds nothing the funnel or the
conditions can use: they ask whether a message was opened or clicked by a person, not how often.
So within ``window_seconds`` one row per (message, kind, link, flag reason) is kept, and a
message never gets more than ``per_message`` rows at all, however its tokens are replayed.

Hits with different flags are kept apart on purpose: a prefetcher's open must not hide the
person's open that follows it (the funnel counts only the latter). The visitor is answered the
same either way (the pixel, the redirect): only the write is skipped.

State is in memory and bounded (``max_entries`` of each map); a restart forgets it, which at
worst lets one more row per key through.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Hashable


class HitLimiter:
    def __init__(self, window_seconds: float, per_message: int, max_entries: int = 100_000) -> None:
        self.window_seconds = window_seconds
        self.per_message = per_message
        self.max_entries = max_entries
        self._last: OrderedDict[Hashable, float] = OrderedDict()  # hit key -> when its row was written
        self._rows: OrderedDict[int, int] = OrderedDict()  # message -> rows written (LRU order)

    def admit(self, message: int, key: Hashable, now: float) -> bool:
        """Whether this hit gets a row; counts it when it does."""
        self._forget_before(now - self.window_seconds)
        seen = self._last.get((message, key))
        if seen is not None and now - seen < self.window_seconds:
            return False
        rows = self._rows.get(message, 0)
        if rows >= self.per_message:
            self._rows.move_to_end(message)
            return False
        self._last[(message, key)] = now
        self._last.move_to_end((message, key))
        self._rows[message] = rows + 1
        self._rows.move_to_end(message)
        while len(self._last) > self.max_entries:
            self._last.popitem(last=False)
        while len(self._rows) > self.max_entries:
            self._rows.popitem(last=False)
        return True

    def _forget_before(self, cutoff: float) -> None:
        # Insertion order is time order (each admitted key moves to the end), so the stale ones
        # are at the front.
        while self._last:
            key, at = next(iter(self._last.items()))
            if at >= cutoff:
                return
            del self._last[key]
