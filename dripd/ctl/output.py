"""Human output: aligned tables, key/value blocks, a progress bar on stderr. Stdlib only."""

from __future__ import annotations

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
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


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
