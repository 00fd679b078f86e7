"""The PostgreSQL backend's driver choice: psycopg 3's sync API on worker threads (what dripd
uses) against psycopg 3's AsyncConnection driven from trio through ``trio_asyncio.aio_as_trio``
(the bridge DESIGN.md describes), on the send path's hottest write: the ledger claim.

Both run the same claim transaction (read the (enrollment, step) row FOR UPDATE, insert the
'sending' row, add the send to the send log, COMMIT) on a temporary local PostgreSQL server
(Unix socket; fsync off, as in the tests: this compares drivers, not disks). dripd's figure is
``PostgresStore.claim_send`` itself; the reference is the same SQL on AsyncConnection, one bridge
crossing per claim. The SQLite store's claim (its group commit, synchronous=FULL) is printed
beside them for scale.

    .venv/bin/python bench/bench_pg_driver.py [--full | --smoke]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

import psycopg  # noqa: E402
import trio  # noqa: E402
import trio_asyncio  # noqa: E402

from dripd.store import ContactInput, FullStore, Refused, open_store  # noqa: E402
from dripd.store.postgres import open_postgres_store  # noqa: E402
from tests.contract.support import active_sequence  # noqa: E402
from tests.postgres_server import PASSWORD, PostgresServer, postgres_server  # noqa: E402

T0 = 1_800_000_000.0
CONCURRENCY = 8

Claim = Callable[[int, int, str], Awaitable[Any]]


async def prepare(store: FullStore, n: int) -> tuple[list[int], int]:
    """A started one-step sequence with ``n`` enrollments: (enrollment ids, the step's id)."""
    sequence, steps = await active_sequence(store)
    rows = [(i, ContactInput(c.contact_email(i)), {}) for i in range(n)]
    await store.bulk_enroll(sequence.id, rows, T0, strict=True)
    due = await store.due_for_mailbox("sales", (0.0, 0), T0 + 1, n)
    return [r.enrollment_id for r in due], steps[0].id


async def timed(claim: Claim, enrollments: list[int], step_id: int, concurrency: int) -> tuple[list[float], float]:
    """Per-claim latencies (s) and the wall time of the whole run."""
    latencies: list[float] = []
    queue = list(enrollments)

    async def worker(tag: int) -> None:
        while queue:
            enrollment = queue.pop()
            start = time.perf_counter()
            result = await claim(enrollment, step_id, f"<{enrollment}.{tag}@bench.example>")
            latencies.append(time.perf_counter() - start)
            assert result is not None and not isinstance(result, Refused), result  # a claim, not a refusal

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for tag in range(concurrency):
            nursery.start_soon(worker, tag)
    return latencies, time.perf_counter() - start


class AsyncClaims:
    """The same claim transaction on psycopg AsyncConnections, each call one aio_as_trio crossing."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.idle: list[psycopg.AsyncConnection[Any]] = []

    async def open(self, count: int) -> None:
        async def connect() -> psycopg.AsyncConnection[Any]:
            return await psycopg.AsyncConnection.connect(self.url, password=PASSWORD, autocommit=True)
        for _ in range(count):
            self.idle.append(await trio_asyncio.aio_as_trio(connect)())

    async def close(self) -> None:
        for conn in self.idle:
            await trio_asyncio.aio_as_trio(conn.close)()

    async def claim(self, enrollment: int, step_id: int, message_id: str) -> Any:
        conn = self.idle.pop()
        try:
            return await trio_asyncio.aio_as_trio(self._claim)(conn, enrollment, step_id, message_id)
        finally:
            self.idle.append(conn)

    @staticmethod
    async def _claim(conn: psycopg.AsyncConnection[Any], enrollment: int, step_id: int, message_id: str) -> Any:
        async with conn.transaction():
            cursor = await conn.execute("SELECT * FROM outbox WHERE enrollment_id = %s AND step_id = %s FOR UPDATE",
                                        (enrollment, step_id))
            if await cursor.fetchone() is not None:
                return None
            cursor = await conn.execute("SELECT 1 FROM enrollments e JOIN sequences s ON s.id = e.sequence_id"
                                        " WHERE e.id = %s AND e.status = 'active' AND s.status = 'active'"
                                        " FOR SHARE OF e", (enrollment,))
            if await cursor.fetchone() is None:
                return None
            cursor = await conn.execute(
                "INSERT INTO outbox (enrollment_id, step_id, mailbox_id, message_id, subject, status, attempts,"
                " created_at, attempted_at, variant) VALUES (%s,%s,'sales',%s,'s','sending',1,%s,%s,NULL)"
                " ON CONFLICT DO NOTHING RETURNING id", (enrollment, step_id, message_id, T0, T0))
            row = await cursor.fetchone()
            await conn.execute("INSERT INTO send_log (mailbox_id, at, first_email) VALUES ('sales', %s,"
                               " (SELECT (sent_count = 0)::int FROM enrollments WHERE id = %s))", (T0, enrollment))
            return row


def summary(latencies: list[float], wall: float) -> tuple[float, float, float]:
    """(mean µs, p99 µs, claims/s)."""
    return (statistics.fmean(latencies) * 1e6, c.percentile(latencies, 99) * 1e6, len(latencies) / wall)


async def measure(server: PostgresServer, root: Path, n: int) -> dict[str, dict[int, tuple[float, float, float]]]:
    out: dict[str, dict[int, tuple[float, float, float]]] = {"thread": {}, "bridge": {}, "sqlite": {}}
    async with trio_asyncio.open_loop():
        for concurrency in (1, CONCURRENCY):
            url = server.fresh_database()
            store = await open_postgres_store(url, password=PASSWORD, pool_size=CONCURRENCY)
            try:
                enrollments, step_id = await prepare(store, n)

                async def by_thread(enrollment: int, step: int, message_id: str) -> Any:
                    return await store.claim_send(enrollment, step, "sales", message_id, "s", T0)
                out["thread"][concurrency] = summary(*await timed(by_thread, enrollments, step_id, concurrency))
            finally:
                await store.close()

            url = server.fresh_database()
            store = await open_postgres_store(url, password=PASSWORD)
            try:
                enrollments, step_id = await prepare(store, n)
            finally:
                await store.close()
            bridge = AsyncClaims(url)
            await bridge.open(concurrency)
            try:
                out["bridge"][concurrency] = summary(*await timed(bridge.claim, enrollments, step_id, concurrency))
            finally:
                await bridge.close()

            lite = await open_store(root / f"ref{concurrency}.sqlite3")
            try:
                enrollments, step_id = await prepare(lite, n)

                async def by_sqlite(enrollment: int, step: int, message_id: str) -> Any:
                    return await lite.claim_send(enrollment, step, "sales", message_id, "s", T0)
                out["sqlite"][concurrency] = summary(*await timed(by_sqlite, enrollments, step_id, concurrency))
            finally:
                await lite.close()
    return out


def main() -> None:
    args = c.arguments(__doc__ or "")
    n = c.pick(args, 100, 2000, 10000)
    with c.workdir(args, "dripd-bench-pgdriver-") as root, postgres_server() as server:
        figures = trio.run(measure, server, root, n)
    table = c.Table(f"PostgreSQL driver: a ledger claim, {c.fnum(n)} claims per run")
    for concurrency in (1, CONCURRENCY):
        mine, bridge, lite = (figures[k][concurrency] for k in ("thread", "bridge", "sqlite"))
        table.row(f"claim latency, {concurrency} at once: mean µs (sync psycopg on a thread vs AsyncConnection"
                  " over aio_as_trio)", c.fnum(mine[0]), c.fnum(bridge[0]), c.ratio(mine[0], bridge[0]),
                  f"p99 {c.fnum(mine[1])} vs {c.fnum(bridge[1])} µs")
        table.row(f"claims/s, {concurrency} at once (same two drivers)", c.fnum(mine[2]), c.fnum(bridge[2]),
                  c.ratio(mine[2], bridge[2]))
        table.row(f"claim latency, {concurrency} at once: mean µs (PostgreSQL store vs the SQLite store)",
                  c.fnum(mine[0]), c.fnum(lite[0]), c.ratio(mine[0], lite[0]),
                  "SQLite: group commit, synchronous=FULL on claims")
    table.notes.append("PostgreSQL: a temporary local cluster over a Unix socket, fsync off (as in the tests)")
    table.print()


if __name__ == "__main__":
    main()
