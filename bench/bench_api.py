"""API under load: 50 concurrent clients enrolling over the Unix socket while the daemon sends.

The real ``dripd`` process (SMTP transport to Postfix smtp-sink, 4 connections, caps lifted)
on a database with M due enrollments in sequence 1, which starts paused. Three phases of T
seconds each, in one run:

  R. the clients enroll (into draft sequence 2, so enrolling adds no sends) while nothing sends:
     the reference latency and requests/s;
  A. sequence 1 is resumed: the daemon sends at full rate, no clients: the reference send rate;
  B. both at once: latency p50/p99 and requests/s of the API, and the send rate, which must not
     fall behind phase A's.

Send rates are the growth of the store's 'sent' outbox rows (read-only polling).

    .venv/bin/python bench/bench_api.py [--full | --smoke] [--clients 50]
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

MAILBOX = "sales"


async def clients(socket: Path, count: int, seconds: float, tag: str) -> tuple[list[float], int, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def one(w: int) -> None:
        nonlocal errors
        transport = httpx.AsyncHTTPTransport(uds=str(socket))
        async with httpx.AsyncClient(transport=transport, base_url="http://dripd", timeout=60) as client:
            j = 0
            while time.perf_counter() < stop_at:
                body = {"contactEmail": f"api-{tag}-{w}-{j}@example.net", "mergeFields": {"firstName": f"W{w}"}}
                started = time.perf_counter()
                response = await client.post("/api/sequences/2/enroll", json=body)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 201:
                    errors += 1
                j += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(w) for w in range(count)))
    return latencies, errors, time.perf_counter() - started


def sent_rate(db_path: Path, seconds: float) -> tuple[float, int]:
    start_n, t0 = c.outbox_count(db_path), time.monotonic()
    time.sleep(seconds)
    n = c.outbox_count(db_path)
    return (n - start_n) / (time.monotonic() - t0), n


def main() -> None:
    args = c.arguments("API under load", lambda p: p.add_argument("--clients", type=int, default=50))
    seconds = c.pick(args, 0.7, 8.0, 30.0)
    m = c.pick(args, 2_000, 40_000, 150_000)
    with c.workdir(args, "dripd-bench-api-") as root, c.postfix_sink() as port:
        now = c.epoch_now()
        db_path = root / "var" / "dripd.sqlite3"
        c.build_db(db_path, mailboxes=[MAILBOX], sequences=2, enrollments=m, next_run_at=lambda i: now - 60,
                   now=now - 60, steps=c.ONE_STEP)
        db = sqlite3.connect(str(db_path), isolation_level=None)
        db.execute("UPDATE sequences SET status = 'paused' WHERE id = 1")
        db.execute("UPDATE sequences SET status = 'draft' WHERE id = 2")
        db.execute("UPDATE enrollments SET next_run_at = NULL WHERE sequence_id IN (1, 2)")
        db.execute("UPDATE enrollments SET due_at = NULL, anchor_at = NULL WHERE sequence_id = 2")
        db.close()
        smtp = {"host": "127.0.0.1", "port": port, "security": "none", "connections": 4, "timeout_seconds": 30}
        box = c.open_mailbox(MAILBOX, "smtp", smtp, concurrency=16)
        daemon = c.Daemon(root, {"daemon": c.daemon_section(root), "mailboxes": [box]},
                          profile=args.profile / "api-daemon.txt" if args.profile else None)
        daemon.start()
        try:
            ref_lat, ref_err, ref_s = c.stock_asyncio_run(clients(daemon.socket, args.clients, seconds, "r"))
            with daemon.client() as client:
                response = client.post("/api/sequences/1/resume")
                assert response.status_code == 200, response.text
            time.sleep(min(1.0, seconds))
            rate_a, _ = sent_rate(db_path, seconds)
            before_b, t_b = c.outbox_count(db_path), time.monotonic()
            lat, err, load_s = c.stock_asyncio_run(clients(daemon.socket, args.clients, seconds, "b"))
            rate_b = (c.outbox_count(db_path) - before_b) / (time.monotonic() - t_b)
            left = m // 2 - c.outbox_count(db_path)
        finally:
            daemon.stop()
    table = c.Table(f"6. API under load ({args.clients} concurrent clients enrolling over the Unix socket)")
    for p in (50, 99):
        ours, ref = c.percentile(lat, p), c.percentile(ref_lat, p)
        table.row(f"enroll latency p{p}, daemon sending", f"{ours * 1000:.1f} ms", f"{ref * 1000:.1f} ms (not sending)",
                  c.ratio(ours, ref), f"{err} errors (reference {ref_err})" if p == 50 else "")
    table.row("enroll requests/s, daemon sending", c.fnum(len(lat) / load_s), f"{c.fnum(len(ref_lat) / ref_s)} (not sending)",
              c.ratio(len(lat) / load_s, len(ref_lat) / ref_s), f"{c.fnum(len(lat))} requests in {load_s:.1f} s")
    table.row("sends/s to smtp-sink while the API is loaded", c.fnum(rate_b), f"{c.fnum(rate_a)} (no API load)",
              c.ratio(rate_b, rate_a), "below 1.0x = sends fell behind; "
              + (f"{c.fnum(max(left, 0))} of the first batch still unsent at the end" if left > 0 else "backlog kept"))
    table.notes.append(f"phases of {seconds:g} s each; the clients are asyncio (the stock loop) + httpx (uds) in the benchmark process, "
                       "on the same 2 cores as the daemon and the sink; new enrollments go to a draft sequence so "
                       "the API work is the same in both phases")
    table.print()


if __name__ == "__main__":
    main()
