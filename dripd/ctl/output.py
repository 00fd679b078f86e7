"""Human output: aligned tables, key/value blocks, a progress bar on stderr. Stdlib only."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any, Iterable, Sequence, TextIO


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):  # merge fields and the like: readable pairs, never raw JSON
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value) or "-"
    return str(value)


def _parse(at: str) -> dt.datetime:
    return dt.datetime.fromisoformat(at.replace("Z", "+00:00"))


def relative(at: str | None, now: str | None) -> str:
    """``in 6 min (12:48 UTC)`` for an API time ``at`` against the daemon's ``now`` (both ISO);
    the client's own clock is not the daemon's (another host, or a simulated clock)."""
    if at is None:
        return "-"
    when = _parse(at).astimezone(dt.timezone.utc)
    if now is None:
        return when.strftime("%Y-%m-%d %H:%M UTC")
    seconds = (when - _parse(now)).total_seconds()
    if abs(seconds) < 60:
        return f"now ({when:%H:%M} UTC)"
    span = abs(seconds)
    if span < 3600:
        amount = f"{span / 60:.0f} min"
    elif span < 24 * 3600:
        amount = f"{span / 3600:.0f} h" if span >= 3 * 3600 else f"{span // 3600:.0f} h {span % 3600 / 60:.0f} min"
    else:
        days = f"{span / 86400:.1f}".removesuffix(".0")
        amount = f"{days} day" + ("" if days == "1" else "s")
    clock = f"{when:%H:%M} UTC" if span < 20 * 3600 else f"{when:%a %d %b %H:%M} UTC"
    return f"in {amount} ({clock})" if seconds > 0 else f"{amount} ago ({clock})"


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str], out: TextIO | None = None) -> None:
    """Columns padded to their widest cell; numbers right-aligned."""
    out = out or sys.stdout
    raw = [list(row) for row in rows]
    body = [[cell(v) for v in row] for row in raw]
    widths = [len(h) for h in headers]
    for row in body:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
    numeric = [all(isinstance(r[i], (int, float)) and not isinstance(r[i], bool) for r in raw if r[i] is not None)
               and any(r[i] is not None for r in raw) for i in range(len(headers))]

    def line(cells: Sequence[str], align: bool = True) -> str:
        parts = [c.rjust(w) if align and numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    print(line([h.upper() for h in headers], align=False), file=out)
    for row in body:
        print(line(row), file=out)


def block(pairs: Iterable[tuple[str, Any]], out: TextIO | None = None) -> None:
    pairs = list(pairs)
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        if isinstance(value, dict) and value and any(isinstance(v, (dict, list)) for v in value.values()):
            # A nested object (a mailbox's health): its own indented lines, not JSON.
            print(f"{key + ':'}", file=out or sys.stdout)
            for sub, inner in value.items():
                print(f"  {sub + ':':<{width}} {cell(inner)}", file=out or sys.stdout)
            continue
        print(f"{key + ':':<{width + 1}} {cell(value)}", file=out or sys.stdout)


def as_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


class Progress:
    """``[#####.....]  42%  1.2/2.9 MB`` redrawn in place; silent when stderr is not a terminal
    unless forced, so scripts and logs stay clean."""

    def __init__(self, total: int, label: str, *, enabled: bool | None = None, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self.total = max(total, 1)
        self.label = label
        self.done = 0
        self.enabled = self.out.isatty() if enabled is None else enabled
        self._last = -1

    def advance(self, amount: int) -> None:
        self.done += amount
        percent = min(100, self.done * 100 // self.total)
        if self.enabled and percent != self._last:
            self._last = percent
            filled = percent * 30 // 100
            print(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {percent:3d}%  "
                  f"{self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB", end="", file=self.out, flush=True)

    def finish(self, note: str = "") -> None:
        if self.enabled:
            print(f"\r{self.label} [{'#' * 30}] 100%  {note}".rstrip(), file=self.out, flush=True)
