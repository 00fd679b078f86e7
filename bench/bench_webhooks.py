"""Send throughput with webhooks to a receiver that answers 500 or hangs, against no webhooks.

N single-step enrollments, all due, in one mailbox (concurrency 8); the daemon (in-process in a
fresh interpreter, real clock, the engine, store and webhook dispatcher the dripd command runs)
sends them through a transport that accepts at once, so the figure is dripd's own work, not a
disk's or a mail server's. Runs: no webhooks (the reference), an endpoint wanting every event
kind whose receiver (a real HTTP process on loopback) answers 500 to everything, one whose
receiver holds every request until the 10 s timeout, and, for scale, one answering 200 at once
(every delivery made, in the same process as the sends). Each send queues its 'sent' and
'completed' deliveries in the event's own commit. Runs are interleaved over rounds and each
figure is the median (the machine is shared). The issue's target: a hanging or erring receiver
changes send throughput by < 5 %.

    .venv/bin/python bench/bench_webhooks.py [--full | --smoke] [--sends N] [--rounds R]
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

MAILBOX = "m"
SCRIPT = Path(__file__).resolve()


def child(params: dict[str, Any]) -> dict[str, Any]:
    import trio
    import trio_asyncio

    from dripd.config import parse_config
    from dripd.daemon import Daemon
    from dripd.plugins import Plugins
    from dripd.webhooks.signing import new_secret

    root = Path(params["root"])
    n = params["n"]
    now = c.epoch_now()
    c.build_db(root / "var" / "dripd.sqlite3", mailboxes=[MAILBOX], sequences=10, enrollments=n,
               next_run_at=lambda i: now - 60 + i * 1e-6, now=now - 60, steps=c.ONE_STEP)
    plugin = c.NullPlugin()
    plugins = Plugins((plugin,))
    data: dict[str, Any] = {"daemon": c.daemon_section(root),
                            "mailboxes": [c.open_mailbox(MAILBOX, "null", {}, concurrency=8)]}
    if params["url"]:
        secret = root / "hook.secret"
        secret.write_text(new_secret())
        data["webhooks"] = [{"name": "bench", "url": params["url"], "secret_file": str(secret),
                             "timeout_seconds": 10}]
    config = parse_config(data, plugins.config_sections(), plugins.transports)
    result: dict[str, Any] = {}

    async def main() -> None:
        async with trio_asyncio.open_loop():
            daemon = Daemon(config, plugins, handle_signals=False)
            async with trio.open_nursery() as nursery:
                await nursery.start(daemon.run)
                while plugin.count() < 1:
                    await trio.sleep(0.001)
                started, cpu, at_first = time.perf_counter(), time.process_time(), plugin.count()
                while plugin.count() < n:
                    await trio.sleep(0.01)
                sent = plugin.count() - at_first
                result["rate"] = sent / (time.perf_counter() - started)
                # CPU time (every thread of the process) per send: far steadier than the rate on a
                # shared machine, and what a webhook receiver could take from the sends.
                result["cpu_us"] = (time.process_time() - cpu) / sent * 1e6
                daemon.stop()

    trio.run(main)
    db = sqlite3.connect(str(root / "var" / "dripd.sqlite3"))
    result["outbox"] = dict(db.execute("SELECT status, COUNT(*) FROM webhook_deliveries GROUP BY status").fetchall())
    db.close()
    return result


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        return

    def extra(p: Any) -> None:
        p.add_argument("--child", help=argparse_hidden())
        p.add_argument("--sends", type=int, help="enrollments per run (default by size)")
        p.add_argument("--rounds", type=int, help="interleaved rounds (default by size)")

    args = c.arguments("send throughput with a failing webhook receiver vs no webhooks", extra)
    n = args.sends or c.pick(args, 300, 5_000, 50_000)
    rounds = args.rounds or c.pick(args, 1, 3, 7)
    from tests.integration.webhook_receiver import webhook_receiver

    rates: dict[str, list[float]] = {"none": [], "500": [], "hang": [], "200": []}
    cpu: dict[str, list[float]] = {name: [] for name in rates}
    outboxes: dict[str, dict[str, int]] = {}
    with c.workdir(args, "dripd-bench-webhooks-") as root, \
            webhook_receiver(root / "r500", then=500) as erring, \
            webhook_receiver(root / "rhang", hang_seconds=30) as hanging, \
            webhook_receiver(root / "r200", then=200) as healthy:
        urls = {"none": None, "500": erring.url, "hang": hanging.url, "200": healthy.url}
        for index in range(rounds):
            for name, url in urls.items():
                got = c.run_child(SCRIPT, {"root": str(root / f"{name}-{index}"), "n": n, "url": url})
                rates[name].append(got["rate"])
                cpu[name].append(got["cpu_us"])
                outboxes[name] = got["outbox"]
    median = {name: statistics.median(values) for name, values in rates.items()}
    ref = median["none"]
    table = c.Table("Webhooks: send throughput beside a failing receiver (null transport)")
    table.row(f"{c.fnum(n)} sends, no webhooks: sends/s", c.fnum(ref), c.fnum(ref) + " (itself)", "1.00x",
              f"median of {rounds}: {', '.join(c.fnum(r) for r in rates['none'])}")
    for name, what in (("500", "receiver answers 500 to everything"), ("hang", "receiver hangs (10 s timeout)"),
                       ("200", "receiver answers 200 (every delivery made)")):
        change = (median[name] - ref) / ref * 100
        target = "" if name == "200" else "target: change < 5 %; "
        outbox = ", ".join(f"{c.fnum(v)} {k}" for k, v in sorted(outboxes[name].items()))
        table.row(f"{c.fnum(n)} sends, {what}: sends/s", c.fnum(median[name]), f"{c.fnum(ref)} (no webhooks)",
                  c.ratio(median[name], ref),
                  f"{target}change {change:+.1f} %; median of {rounds}: "
                  f"{', '.join(c.fnum(r) for r in rates[name])}; outbox when the last send was made: {outbox}")
    cpu_median = {name: statistics.median(values) for name, values in cpu.items()}
    for name, what in (("500", "receiver answers 500"), ("hang", "receiver hangs"), ("200", "receiver answers 200")):
        change = (cpu_median[name] - cpu_median["none"]) / cpu_median["none"] * 100
        table.row(f"daemon CPU per send, {what}: us", c.fnum(cpu_median[name]),
                  f"{c.fnum(cpu_median['none'])} (no webhooks)", c.ratio(cpu_median[name], cpu_median["none"]),
                  f"change {change:+.1f} %; median of {rounds}: {', '.join(c.fnum(v) for v in cpu[name])}")
    table.notes.append("every event kind is wanted: each send queues 'sent' and 'completed' deliveries in the "
                       "event's own commit (a trigger on events); the dispatcher runs beside the lanes")
    table.print()


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
