"""The SMTP transport alone: dripd's SmtpTransport driven from trio against a plain aiosmtplib client.

N messages rendered beforehand (bench_send's), C connections to Postfix's smtp-sink on loopback.
dripd: C trio tasks calling ``SmtpTransport.send`` inside ``trio_asyncio.open_loop()`` as in the
daemon (the transport runs its conversations on its own asyncio loop thread, see
plugins/dripd_smtp/transport.py). Reference: aiosmtplib's ``sendmail`` on a clean asyncio loop,
C workers. Each measurement runs in a fresh interpreter; CPU per message is the process's
``time.process_time`` (every thread) over the sends; the two alternate, and medians are shown.
The reference's interpreter imports neither dripd nor bench/_common: once trio-asyncio is
imported, its event loop policy makes ``asyncio.run`` a trio-asyncio loop (``SyncTrioEventLoop``),
on which the same client took 0.75-0.98 ms of CPU per message instead of 0.20-0.41.

    .venv/bin/python bench/bench_smtp_transport.py [--full | --smoke] [--connections C]
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SENDER = "sales@sender.example"


def transport_child(port: int, connections: int, items: list[tuple[str, bytes]]) -> tuple[float, float]:
    import trio
    import trio_asyncio

    sys.path.insert(0, str(ROOT / "plugins"))
    from types import SimpleNamespace

    from dripd.gc_tuning import tune_collector
    from dripd.hookspecs import OutgoingMessage, PluginContext
    from dripd_smtp.config import SmtpConfig
    from dripd_smtp.transport import SmtpTransport

    class NoState:
        async def get(self, key: str) -> str | None:
            return None

        async def set(self, key: str, value: str) -> None:
            pass

    tune_collector()  # as the dripd process does before its event loop (dripd/cli.py)

    async def main() -> tuple[float, float]:
        async with trio_asyncio.open_loop():
            config = SmtpConfig.model_validate({"host": "127.0.0.1", "port": port, "security": "none",
                                                "connections": connections, "timeout_seconds": 30})
            transport = SmtpTransport(SimpleNamespace(id="sales", address=SENDER), config,  # type: ignore[arg-type]
                                      PluginContext(now=trio.current_time, state=NoState()))
            queue = [OutgoingMessage("sales", f"<{i}@sender.example>", SENDER, to, data)
                     for i, (to, data) in enumerate(reversed(items))]
            accepted = 0

            async def worker() -> None:
                nonlocal accepted
                while queue:
                    result = await transport.send(queue.pop())
                    accepted += result.outcome.value == "accepted"

            cpu, wall = time.process_time(), time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(connections):
                    nursery.start_soon(worker)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            await transport.aclose()
            assert accepted == len(items), f"{accepted} of {len(items)} accepted"
            return len(items) / wall, cpu / len(items) * 1000

    return trio.run(main)


def plain_child(port: int, connections: int, items: list[tuple[str, bytes]]) -> tuple[float, float]:
    """bench_send's reference client (bench/_plain_smtp.py), in this clean interpreter."""
    from _plain_smtp import send_all

    cpu = time.process_time()
    rate, _loop = asyncio.run(send_all(port, connections, items))
    return rate, (time.process_time() - cpu) / len(items) * 1000


def child(params: dict[str, Any]) -> None:
    with open(params["items"], "rb") as f:
        items: list[tuple[str, bytes]] = pickle.load(f)
    run = transport_child if params["what"] == "transport" else plain_child
    rate, cpu_ms = run(params["port"], params["connections"], items)
    print(json.dumps({"rate": rate, "cpu_ms": cpu_ms}))


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _common as c
    import bench_send

    def extra(p: Any) -> None:
        p.add_argument("--connections", type=int, default=4)

    args = c.arguments("The SMTP transport alone vs a plain aiosmtplib client", extra)
    n = c.pick(args, 200, 5_000, 20_000)
    rounds = c.pick(args, 1, 5, 7)
    conns = args.connections
    results: dict[str, list[dict[str, float]]] = {"transport": [], "plain": []}
    script = Path(__file__).resolve()
    with c.workdir(args, "dripd-bench-smtp-") as root, c.postfix_sink() as port:
        items = root / "messages.pickle"
        items.write_bytes(pickle.dumps(bench_send.messages(n)))
        for _ in range(rounds):  # alternated: the machine's load drifts
            for what in ("plain", "transport"):
                params = {"what": what, "port": port, "items": str(items), "connections": conns}
                results[what].append(c.run_child(script, params))

    def median(what: str, key: str) -> float:
        return statistics.median(r[key] for r in results[what])

    table = c.Table("SMTP transport alone to Postfix smtp-sink (no daemon, no store)")
    reference = "plain aiosmtplib, clean asyncio"
    table.row(f"SmtpTransport.send from {conns} trio tasks, {conns} connections, {c.fnum(n)} pre-rendered messages: "
              "messages/s", c.fnum(median("transport", "rate")), f"{c.fnum(median('plain', 'rate'))} ({reference})",
              c.ratio(median("transport", "rate"), median("plain", "rate")),
              "pipelined: 2 round trips per message against sendmail's 4")
    table.row("the same: CPU ms per message (every thread of the process)", f"{median('transport', 'cpu_ms'):.3f}",
              f"{median('plain', 'cpu_ms'):.3f} ({reference})",
              c.ratio(median("transport", "cpu_ms"), median("plain", "cpu_ms")), "lower is better")
    table.notes.append(f"medians of {rounds} alternated runs each, every run a fresh interpreter; load average at the "
                       f"end: {os.getloadavg()[0]:.2f}")
    table.print()


if __name__ == "__main__":
    main()
