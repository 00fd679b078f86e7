"""Scheduling lateness: p50/p99 of (sent time - due time) for unthrottled work at 50% of the
measured maximum rate.

First the maximum rate is measured in this run (bench_dispatch's measurement: all due at once,
null transport). Then M enrollments are given due times evenly spaced at half that rate, over D
seconds, starting just after the daemon starts; the null transport notes when each send reaches
it. The reference, in the same process: a plain trio task sleeping until each of the same due
times (the timer's own lateness, the floor for any trio program on this machine under no load).

    .venv/bin/python bench/bench_lateness.py [--full | --smoke]
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

MAILBOX = "m"
LEAD = 1.5  # seconds between daemon start and the first due time


def child(params: dict[str, Any]) -> dict[str, Any]:
    import trio
    import trio_asyncio

    from dripd.daemon import Daemon

    root = Path(params["root"])
    rate, seconds, concurrency = params["rate"], params["seconds"], params["concurrency"]
    m = max(1, int(rate * seconds))
    db_path = root / "var" / "dripd.sqlite3"
    c.build_db(db_path, mailboxes=[MAILBOX], sequences=10, enrollments=m, next_run_at=lambda i: i / rate, now=0.0,
               steps=c.ONE_STEP)
    plugin = c.NullPlugin(keep=True)
    config, plugins = c.inprocess_config(root, [c.open_mailbox(MAILBOX, "null", {}, concurrency=concurrency)],
                                         (plugin,))
    out: dict[str, Any] = {"m": m}

    async def floor() -> list[float]:
        t0 = time.time() + 0.2
        late = []
        for i in range(m):
            due = t0 + i / rate
            await trio.sleep_until(trio.current_time() + (due - time.time()))
            late.append(time.time() - due)
        return late

    async def main() -> None:
        out["floor"] = await floor()
        t0 = time.time() + LEAD
        db = sqlite3.connect(str(db_path), isolation_level=None)
        db.execute("UPDATE enrollments SET next_run_at = next_run_at + ?, due_at = due_at + ?, anchor_at = ?,"
                   " enrolled_at = ?", (t0, t0, t0 - 60, t0 - 60))
        db.close()
        async with trio_asyncio.open_loop():
            daemon = Daemon(config, plugins, handle_signals=False)
            async with trio.open_nursery() as nursery:
                await nursery.start(daemon.run)
                deadline = trio.current_time() + LEAD + seconds + 60
                while plugin.count() < m and trio.current_time() < deadline:
                    await trio.sleep(0.05)
                daemon.stop()
        sent = [t for tr in plugin.transports.values() for t in tr.sent]
        out["late"] = [at - (t0 + int(to[1:to.index("@")]) / rate) for at, to in sent]

    trio.run(main)
    return out


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        return
    args = c.arguments("Scheduling lateness at 50% of the measured maximum rate")
    seconds = c.pick(args, 0.3, 8.0, 30.0)
    k = c.pick(args, 200, 5_000, 20_000)
    table = c.Table("4. Scheduling lateness at 50% of the measured max rate (null transport)")
    here = Path(__file__).resolve().parent
    with c.workdir(args, "dripd-bench-lateness-") as root:
        for conc in (1, 32):
            peak = c.run_child(here / "bench_dispatch.py", {"root": str(root / f"max{conc}"), "n": k, "k": k,
                                                             "concurrency": conc})
            rate = peak["rate"] / 2
            r = c.run_child(Path(__file__), {"root": str(root / f"late{conc}"), "rate": rate, "seconds": seconds,
                                             "concurrency": conc})
            late, floor = r["late"], r["floor"]
            for p in (50, 99):
                ours, ref = c.percentile(late, p), c.percentile(floor, p)
                table.row(f"concurrency {conc}, {c.fnum(rate)} due/s (50% of {c.fnum(peak['rate'])}): p{p} lateness",
                          f"{ours * 1000:.1f} ms", f"{ref * 1000:.2f} ms (trio.sleep_until)", c.ratio(ours, ref, "{:.0f}x"),
                          f"target p99 <= 1 s; {c.fnum(len(late))}/{c.fnum(r['m'])} sent; max "
                          f"{max(late, default=float('nan')) * 1000:.0f} ms" if p == 99 else
                          f"{c.fnum(r['m'])} enrollments over {seconds:g} s")
    table.notes.append("lateness = the moment the null transport is handed the message - the enrollment's due time "
                       "(in-process daemon, real clock); the max rate is measured first in the same run")
    table.print()


if __name__ == "__main__":
    main()
