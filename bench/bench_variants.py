"""A/B variants on the send path: steps/s of a one-step sequence whose email has variants (with an
auto-winner: the per-variant tallies are read from the ledger, at most once a minute) against the
same step without variants, measured in the same run on the same in-process daemon and null
transport (bench_dispatch.py's setup). Every send also writes what was sent (subject, HTML, text,
variant) to its ledger row, in both columns.

    .venv/bin/python bench/bench_variants.py [--full | --smoke]
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
PLAIN = c.ONE_STEP
VARIANTS = [{**c.ONE_STEP[0], "variants": [
    {"name": "A"}, {"name": "B", "subject": "{{firstName|Hi}}, worth a chat?"},
    {"name": "C", "weight": 2, "body": "<p>Hi {{firstName|there}}, would a short call help {{company}}?</p>"}],
    "autoWinner": {"after": 100, "metric": "replied"}}]


def child(params: dict[str, Any]) -> dict[str, Any]:
    import trio
    import trio_asyncio

    from dripd.daemon import Daemon

    root = Path(params["root"])
    n, concurrency = params["n"], params["concurrency"]
    now = c.epoch_now()
    c.build_db(root / "var" / "dripd.sqlite3", mailboxes=[MAILBOX], sequences=10, enrollments=n,
               next_run_at=lambda i: now - 60 + i * 1e-6, now=now - 60,
               steps=VARIANTS if params["variants"] else PLAIN)
    plugin = c.NullPlugin()
    config, plugins = c.inprocess_config(root, [c.open_mailbox(MAILBOX, "null", {}, concurrency=concurrency)],
                                         (plugin,))
    result: dict[str, Any] = {}

    async def main() -> None:
        async with trio_asyncio.open_loop():
            daemon = Daemon(config, plugins, handle_signals=False)
            async with trio.open_nursery() as nursery:
                await nursery.start(daemon.run)
                while plugin.count() < 1:
                    await trio.sleep(0.001)
                t_first = time.perf_counter()
                at_first = plugin.count()
                while plugin.count() < n:
                    await trio.sleep(0.01)
                t_last = time.perf_counter()
                sent = plugin.count()
                daemon.stop()
        result.update(sent=sent, rate=(sent - at_first) / (t_last - t_first))

    trio.run(main)
    db = sqlite3.connect(str(root / "var" / "dripd.sqlite3"))
    result["by_variant"] = dict(db.execute("SELECT COALESCE(variant, '-'), COUNT(*) FROM outbox"
                                           " WHERE status = 'sent' AND body IS NOT NULL GROUP BY variant").fetchall())
    db.close()
    return result


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        return
    args = c.arguments("A/B variants on the send path")
    n = c.pick(args, 200, 5_000, 20_000)
    table = c.Table("A/B variants: dispatch rate (null transport)")
    with c.workdir(args, "dripd-bench-variants-") as root:
        for conc in (1, 32):
            plain = c.run_child(Path(__file__), {"root": str(root / f"plain{conc}"), "n": n, "concurrency": conc,
                                                 "variants": False})
            ab = c.run_child(Path(__file__), {"root": str(root / f"ab{conc}"), "n": n, "concurrency": conc,
                                              "variants": True})
            split = ", ".join(f"{k} {c.fnum(v)}" for k, v in sorted(ab["by_variant"].items()))
            table.row(f"N={c.fnum(n)}, concurrency {conc}: steps/s, 3 variants + auto-winner",
                      c.fnum(ab["rate"]), f"{c.fnum(plain['rate'])} (same step, no variants)",
                      c.ratio(ab["rate"], plain["rate"]), f"sent per variant (weights 1:1:2): {split}")
    table.notes.append("both columns keep the sent subject, HTML and text on each ledger row, written with the result")
    table.print()


if __name__ == "__main__":
    main()
