"""The least a sender with dripd's ledger pays per message, in one interpreter: bench_send's floor.

The plain client's shape (bench/_plain_smtp.py: one asyncio loop, the same connections) with the
cheapest SMTP conversation this project has, dripd's own: ``PipeliningSMTP`` and
``wire.transaction`` (two round trips a message against ``sendmail``'s four) on uvloop, as the
SMTP transport runs them. Around each message, the store work of bench_dispatch.py's
``reference`` (bench/_ledger_steps.py: the reads a step's run takes, the ledger claim, the result
recorded, the enrollment ended) and the render and build of the message, with no engine: claims in groups of
``group`` (the headline's sends in flight), each group's COMMIT durable (synchronous=FULL, on a
thread so the conversations go on while it fsyncs) before any of its messages is handed to a
connection, results recorded in groups of the same size. No events consumer, metrics, wire
journal, scheduler, caps or pauses: a floor, not a design.

    python bench/_bare_sender.py PORT CONNECTIONS DATABASE GROUP
prints one JSON line: {"rate": messages/s, "cpu_ms": CPU ms per message, "sent": N, "recorded": N}
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from typing import Any

import _ledger_steps as ledger_steps
import uvloop

from dripd import render
from dripd.hookspecs import OutgoingMessage, SendOutcome
from dripd_smtp.pipelining import PipeliningSMTP
from dripd_smtp.wire import Attempt, transaction

MAILBOX = "sales"
FROM = f"{MAILBOX}@sender.example"


class Ledger:
    """The references' statements (bench/_ledger_steps.py) on one connection, used by one
    coroutine at a time (the lock); the durable COMMIT runs on the default executor's thread."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.lock = asyncio.Lock()
        self.templates: dict[int, Any] = {}
        self.now = time.time()

    async def commit(self, durable: bool) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.db.execute, "COMMIT")
        if durable:
            self.db.execute("PRAGMA synchronous=NORMAL")

    async def claim(self, ids: list[int]) -> list[tuple[ledger_steps.Claimed, bytes]]:
        """The group's claims, each message built before the commit (as the engine builds before
        it claims), committed durably before any of them is handed to a connection."""
        async with self.lock:
            self.db.execute("PRAGMA synchronous=FULL")  # outside a transaction, as the store does
            self.db.execute("BEGIN IMMEDIATE")
            claimed = []
            for eid in ids:
                one = ledger_steps.claim(self.db, eid, MAILBOX, self.now, self.templates)
                envelope = render.Envelope(from_address=FROM, from_name="Sales", to_address=one.contact.email,
                                           to_name=one.contact.first_name, message_id=one.message_id, date=self.now,
                                           list_unsubscribe=(f"mailto:unsubscribe@sender.example?subject={eid}",),
                                           one_click=False)
                claimed.append((one, render.build_message(envelope, one.rendered)))
            await self.commit(durable=True)
        return claimed

    async def record(self, sent: list[ledger_steps.Claimed]) -> None:
        async with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            for one in sent:
                ledger_steps.record_sent(self.db, one, MAILBOX, self.now)
            await self.commit(durable=False)


async def send_all(port: int, connections: int, ledger: Ledger, ids: list[int], group: int) -> int:
    todo: asyncio.Queue[tuple[ledger_steps.Claimed, bytes] | None] = asyncio.Queue(maxsize=group)
    done: list[ledger_steps.Claimed] = []
    sent = 0

    async def claimer() -> None:
        for start in range(0, len(ids), group):
            for item in await ledger.claim(ids[start:start + group]):
                await todo.put(item)  # waits while a group's worth is still waiting for a connection
        for _ in range(connections):
            await todo.put(None)

    async def worker() -> None:
        nonlocal sent, done
        smtp = PipeliningSMTP(hostname="127.0.0.1", port=port, timeout=30, start_tls=False)
        await smtp.connect()
        if smtp.is_ehlo_or_helo_needed:
            await smtp.ehlo()
        while (item := await todo.get()) is not None:
            one, data = item
            message = OutgoingMessage(MAILBOX, one.message_id, FROM, one.contact.email, data)
            result = await transaction(smtp, message, Attempt())
            if result.outcome is not SendOutcome.ACCEPTED:
                raise RuntimeError(f"not accepted: {result}")
            sent += 1
            done.append(one)
            if len(done) >= group:
                batch, done = done, []
                await ledger.record(batch)
        await smtp.quit()

    await asyncio.gather(claimer(), *(worker() for _ in range(connections)))
    if done:
        await ledger.record(done)
    return sent


def main() -> None:
    port, connections, path, group = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    ledger = Ledger(path)
    ids = [r[0] for r in ledger.db.execute("SELECT id FROM enrollments WHERE status = 'active' ORDER BY id")]
    # uvloop's loop made directly, as the SMTP transport's loop thread does: with trio-asyncio
    # imported (by the plugin's package), asyncio's policy would hand out a trio-driven loop.
    loop = uvloop.new_event_loop()
    cpu, wall = time.process_time(), time.perf_counter()
    sent = loop.run_until_complete(send_all(port, connections, ledger, ids, group))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    recorded = ledger.db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'sent'").fetchone()[0]
    print(json.dumps({"rate": sent / wall, "cpu_ms": cpu / max(sent, 1) * 1000, "sent": sent, "recorded": recorded}))


if __name__ == "__main__":
    main()
