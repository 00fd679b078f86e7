"""The least a sender with dripd's ledger pays per message, in one interpreter: bench_send's floor.

The plain client's shape (bench/_plain_smtp.py: one asyncio loop, the same connections) with the
cheapest SMTP conversation this project has, dripd's own: ``PipeliningSMTP`` and
``wire.transaction`` (two round trips a message against ``sendmail``'s four) on uvloop, as the
SMTP transport runs them. Around each message, the store work of bench_dispatch.py's
``reference`` (the reads a step's run takes, the ledger claim, the result recorded, the
enrollment ended) and the render and build of the message, with no engine: claims in groups of
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

import uvloop

from dripd import render
from dripd.hookspecs import OutgoingMessage, SendOutcome
from dripd.model import Contact
from dripd_smtp.pipelining import PipeliningSMTP
from dripd_smtp.wire import Attempt, transaction

MAILBOX = "sales"
FROM = f"{MAILBOX}@sender.example"

class Ledger:
    """The reference's statements on one connection, used by one coroutine at a time (the lock);
    the durable COMMIT runs on the default executor's thread."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.lock = asyncio.Lock()
        self.templates: dict[int, Any] = {}
        self.rows: dict[int, tuple[int, int, int, int]] = {}  # outbox id: enrollment, sequence, contact, step
        self.now = time.time()

    async def commit(self, durable: bool) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.db.execute, "COMMIT")
        if durable:
            self.db.execute("PRAGMA synchronous=NORMAL")

    async def claim(self, ids: list[int]) -> list[tuple[int, str, bytes]]:
        db, now = self.db, self.now
        async with self.lock:
            db.execute("PRAGMA synchronous=FULL")  # outside a transaction, as the store does
            db.execute("BEGIN IMMEDIATE")
            claimed = []
            for eid in ids:
                e = db.execute("SELECT * FROM enrollments WHERE id = ?", (eid,)).fetchone()
                db.execute("SELECT * FROM sequences WHERE id = ?", (e["sequence_id"],)).fetchone()
                row = db.execute("SELECT * FROM contacts WHERE id = ?", (e["contact_id"],)).fetchone()
                contact = Contact(row["id"], row["email"], row["first_name"], row["last_name"], row["company"],
                                  json.loads(row["fields"]))
                steps = db.execute("SELECT * FROM steps WHERE sequence_id = ? AND deleted = 0 ORDER BY ord",
                                   (e["sequence_id"],)).fetchall()
                db.execute("SELECT message_id, subject FROM outbox WHERE enrollment_id = ?", (eid,)).fetchall()
                db.execute("SELECT DISTINCT kind FROM events WHERE enrollment_id = ? AND flagged = 0"
                           " AND kind IN ('replied', 'opened', 'clicked')", (eid,)).fetchall()
                db.execute("SELECT reason FROM suppressions WHERE email = ?", (contact.email,)).fetchone()
                step = steps[0]
                template = self.templates.get(step["id"])
                if template is None:
                    data = json.loads(step["data"])
                    template = self.templates[step["id"]] = render.compile_template(
                        data.get("subject", ""), data.get("body", ""), data.get("text"))
                rendered = template.render(contact.merge_fields())
                message_id = render.make_message_id("sender.example", f"{eid}.{step['id']}.0011223344556677")
                envelope = render.Envelope(from_address=FROM, from_name="Sales", to_address=contact.email,
                                           to_name=contact.first_name, message_id=message_id, date=now,
                                           list_unsubscribe=(f"mailto:unsubscribe@sender.example?subject={eid}",),
                                           one_click=False)
                data_bytes = render.build_message(envelope, rendered)
                cur = db.execute("INSERT INTO outbox (enrollment_id, step_id, mailbox_id, message_id, subject, status,"
                                 " attempts, created_at, attempted_at) VALUES (?,?,?,?,?, 'sending', 1, ?, ?)",
                                 (eid, step["id"], MAILBOX, message_id, rendered.subject, now, now))
                db.execute("INSERT INTO send_log (mailbox_id, at) VALUES (?, ?)", (MAILBOX, now))
                claimed.append((cur.lastrowid, contact.email, data_bytes))
                self.rows[cur.lastrowid] = (eid, e["sequence_id"], e["contact_id"], step["id"])
            await self.commit(durable=True)
        return claimed

    async def record(self, outbox_ids: list[int]) -> None:
        db, now = self.db, self.now
        async with self.lock:
            db.execute("BEGIN IMMEDIATE")
            for outbox_id in outbox_ids:
                eid, sequence_id, contact_id, step_id = self.rows.pop(outbox_id)
                db.execute("UPDATE outbox SET status = 'sent', resolved_at = ? WHERE id = ?", (now, outbox_id))
                db.execute("INSERT INTO events (at, kind, mailbox_id, sequence_id, enrollment_id, contact_id, step_id,"
                           " outbox_id, flagged, data) VALUES (?, 'sent', ?, ?, ?, ?, ?, ?, 0, '{}')",
                           (now, MAILBOX, sequence_id, eid, contact_id, step_id, outbox_id))
                db.execute("UPDATE enrollments SET status = 'completed', sent_count = 1, next_run_at = NULL,"
                           " due_at = NULL, ended_at = ?, updated_at = ? WHERE id = ?", (now, now, eid))
            await self.commit(durable=False)


async def send_all(port: int, connections: int, ledger: Ledger, ids: list[int], group: int) -> int:
    todo: asyncio.Queue[tuple[int, str, bytes] | None] = asyncio.Queue(maxsize=group)
    done: list[int] = []
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
            outbox_id, to, data = item
            result = await transaction(smtp, OutgoingMessage(MAILBOX, "", FROM, to, data), Attempt())
            if result.outcome is not SendOutcome.ACCEPTED:
                raise RuntimeError(f"not accepted: {result}")
            sent += 1
            done.append(outbox_id)
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
