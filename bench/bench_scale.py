"""Scale: N active enrollments across 100 sequences and 50 mailboxes in SQLite.

For each N the database is built with plain sqlite3 bulk inserts into the real schema (rows as
the store's enroll writes them), due times spread evenly over the next 14 days. Then:

1. the real ``dripd`` process (SMTP transport to Postfix smtp-sink, one connection per mailbox,
   caps 100/h and 2,000/day) is started with NOTIFY_SOCKET: seconds from exec to READY=1, RSS at
   READY, and peak RSS (VmHWM) after it has run and sent for a while in real time;
2. one simulated hour of sending: the same Daemon in a fresh interpreter under the test suite's
   SimulatedClock (tests/conftest.py) with a null transport, on the same database: RSS after the
   hour, sends made, enrollments held in memory.

The reference is the same measurement at the smallest N, in the same run: the ratio shows what
the number of enrollments costs. Targets (issue 7): READY <= 2 s, RSS <= 150 MB, no growth
with N beyond the horizon.

    .venv/bin/python bench/bench_scale.py [--full | --smoke]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

MAILBOXES = [f"mb{i:02d}" for i in range(50)]
SPREAD = 14 * 86400.0
CAPS = {"daily_cap": 2000, "hourly_cap": 100, "burst": 10}


def child(params: dict[str, Any]) -> dict[str, Any]:
    """One simulated hour on the database at ``root`` (fresh interpreter, SimulatedClock)."""
    import trio
    import trio_asyncio

    from dripd.daemon import Daemon
    from tests.conftest import SimulatedClock

    root = Path(params["root"])
    plugin = c.NullPlugin()
    boxes = [c.open_mailbox(m, "null", {}, **CAPS) for m in MAILBOXES]
    config, plugins = c.inprocess_config(root, boxes, (plugin,))
    out: dict[str, Any] = {"rss_before_mb": c.rss_mb()[0]}

    async def main() -> None:
        async with trio_asyncio.open_loop():
            daemon = Daemon(config, plugins, handle_signals=False)
            async with trio.open_nursery() as nursery:
                await nursery.start(daemon.run)
                out["rss_ready_mb"] = c.rss_mb()[0]
                started = time.perf_counter()
                heap = 0
                for _ in range(60):
                    await trio.sleep(60)  # simulated minutes
                    heap = max(heap, daemon.scheduler.heap_size())
                out["wall_s"] = time.perf_counter() - started
                out["heap_max"] = heap
                out["sent"] = plugin.count()
                daemon.stop()
        out["rss_after_mb"], out["peak_mb"] = c.rss_mb()

    trio.run(main, clock=SimulatedClock())
    return out


def measure(root: Path, n: int, port: int, run_seconds: float) -> dict[str, Any]:
    now = c.epoch_now()
    db_path = root / "var" / "dripd.sqlite3"
    build_s = c.build_db(db_path, mailboxes=MAILBOXES, sequences=100, enrollments=n,
                         next_run_at=lambda i: now + 5 + (i * 7919 % n) * SPREAD / n, now=now)
    size_mb = c.db_size_mb(db_path)
    table = {"host": "127.0.0.1", "port": port, "security": "none", "connections": 1, "timeout_seconds": 10}
    boxes = [c.open_mailbox(m, "smtp", table, **CAPS) for m in MAILBOXES]
    daemon = c.Daemon(root, {"daemon": c.daemon_section(root), "mailboxes": boxes})
    ready_s = daemon.start()
    rss_ready, _ = c.rss_mb(daemon.pid)
    time.sleep(run_seconds)
    rss_run, peak_run = c.rss_mb(daemon.pid)
    daemon.stop()
    sent_real = c.outbox_count(db_path)
    sim = c.run_child(Path(__file__), {"root": str(root)})
    return {"n": n, "build_s": build_s, "size_mb": size_mb, "ready_s": ready_s, "rss_ready": rss_ready,
            "rss_run": rss_run, "peak_run": peak_run, "sent_real": sent_real, **sim}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        return
    args = c.arguments("Scale: READY time, RSS and database size with N enrollments")
    sizes = c.pick(args, [200, 2_000], [1_000, 100_000], [1_000, 100_000, 1_000_000])
    run_seconds = c.pick(args, 0.5, 10.0, 20.0)
    results = []
    with c.workdir(args, "dripd-bench-scale-") as root, c.postfix_sink() as port:
        warm = c.Daemon(root, {"daemon": c.daemon_section(root / "warm"),
                               "mailboxes": [c.open_mailbox("w", "smtp", {"host": "127.0.0.1", "port": port,
                                                                          "security": "none"})]})
        warm.start()  # not reported: the first exec pays for a cold page cache
        warm.stop()
        for n in sizes:
            results.append(measure(root / f"n{n}", n, port, run_seconds))
            import shutil
            shutil.rmtree(root / f"n{n}", ignore_errors=True)
    ref = results[0]
    table = c.Table("2. Scale (100 sequences, 50 mailboxes, SQLite)")
    for r in results[1:] or results:
        label = f"N={c.fnum(r['n'])}"
        rn = f"N={c.fnum(ref['n'])}"
        table.row(f"{label}: exec -> READY=1 (real process)", f"{r['ready_s']:.2f} s", f"{ref['ready_s']:.2f} s ({rn})",
                  c.ratio(r["ready_s"], ref["ready_s"]), "target <= 2 s")
        table.row(f"{label}: RSS at READY (real process)", f"{r['rss_ready']:.0f} MB", f"{ref['rss_ready']:.0f} MB ({rn})",
                  c.ratio(r["rss_ready"], ref["rss_ready"]), "target <= 150 MB")
        table.row(f"{label}: peak RSS after {run_seconds:g} s real sending (real process)", f"{r['peak_run']:.0f} MB",
                  f"{ref['peak_run']:.0f} MB ({rn})", c.ratio(r["peak_run"], ref["peak_run"]),
                  f"{c.fnum(r['sent_real'])} sent to smtp-sink (vs {c.fnum(ref['sent_real'])})")
        table.row(f"{label}: RSS after 1 simulated hour (in-process)", f"{r['rss_after_mb']:.0f} MB",
                  f"{ref['rss_after_mb']:.0f} MB ({rn})", c.ratio(r["rss_after_mb"], ref["rss_after_mb"]),
                  f"{c.fnum(r['sent'])} sends in the hour (vs {c.fnum(ref['sent'])}), at most "
                  f"{c.fnum(r['heap_max'])} enrollments in memory (vs {c.fnum(ref['heap_max'])}); "
                  f"{r['wall_s']:.1f} s wall; peak {r['peak_mb']:.0f} MB")
        table.row(f"{label}: database size", f"{r['size_mb']:.0f} MB", f"{ref['size_mb']:.1f} MB ({rn})",
                  c.ratio(r["size_mb"], ref["size_mb"]),
                  f"{r['size_mb'] * 1e6 / r['n']:.0f} bytes/enrollment; built in {r['build_s']:.1f} s")
    table.notes.append("due times spread evenly over 14 days from now; caps 100/h, 2,000/day per mailbox; "
                       "horizon 3,600 s and queue_limit 5,000 (defaults)")
    table.notes.append("RSS after the simulated hour is measured in a fresh interpreter running the same "
                       "dripd.daemon.Daemon (without the HTTP API) under tests/conftest.py SimulatedClock with a "
                       "null transport: an hour of cadence in seconds; RSS at READY is the real process with the API")
    table.print()


if __name__ == "__main__":
    main()
