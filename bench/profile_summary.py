"""Summarise a py-spy ``-f raw`` profile (collapsed stacks): where the samples went, per thread.

    .venv/bin/py-spy record --threads --idle -r 200 -f raw -o prof.txt -- .venv/bin/python bench/...
    .venv/bin/python bench/profile_summary.py prof.txt [--exclude build_db] [--top 25]

Prints, per thread, the share of samples by leaf function (self time) and by function anywhere on
the stack (inclusive time). Line numbers are dropped so one function is one row.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m["file"]
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{m['func']} ({path})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile", type=Path)
    parser.add_argument("--exclude", action="append", default=[], help="drop stacks containing this text")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--thread", help="only threads whose name contains this")
    args = parser.parse_args()
    self_time: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    incl: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    totals: collections.Counter[str] = collections.Counter()
    for line in args.profile.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or any(x in stack for x in args.exclude):
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1] if frames[0].startswith("thread") else frames[0]
        thread = "MainThread" if "MainThread" in thread else ("sqlite" if "connection_worker" in stack else thread)
        if args.thread and args.thread not in thread:
            continue
        names = [frame_name(f) for f in frames[1:]]
        totals[thread] += count
        if names:
            self_time[thread][names[-1]] += count
        for name in set(names):
            incl[thread][name] += count
    for thread, total in totals.most_common():
        print(f"== {thread}: {total} samples")
        print("  self:")
        for name, n in self_time[thread].most_common(args.top):
            print(f"    {100 * n / total:5.1f}%  {name}")
        print("  inclusive:")
        for name, n in incl[thread].most_common(args.top):
            print(f"    {100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
