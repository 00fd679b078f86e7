"""One step's store work without the engine, as plain sqlite3 statements: shared by
bench_dispatch.py's ``reference`` and bench/_bare_sender.py, the references that say what the
ledger itself costs.

``claim`` runs the reads of a step's run (``run_context``), renders the step and writes the
ledger claim (``claim_send``); ``record_sent`` writes the result, its event and the end of a
one-step enrollment (``record_sent``). Transactions and their durability are the caller's.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from dripd import render
from dripd.model import Contact, Step
from dripd.store.rows import contact_from_row, step_from_row


@dataclass
class Claimed:
    enrollment_id: int
    sequence_id: int
    contact: Contact
    step: Step
    rendered: render.Rendered
    message_id: str
    outbox_id: int


def claim(db: sqlite3.Connection, enrollment_id: int, mailbox: str, now: float, templates: dict[int, Any]) -> Claimed:
    e = db.execute("SELECT * FROM enrollments WHERE id = ?", (enrollment_id,)).fetchone()
    db.execute("SELECT * FROM sequences WHERE id = ?", (e["sequence_id"],)).fetchone()
    contact = contact_from_row(db.execute("SELECT * FROM contacts WHERE id = ?", (e["contact_id"],)).fetchone())
    steps = [step_from_row(r) for r in db.execute(
        "SELECT * FROM steps WHERE sequence_id = ? AND deleted = 0 ORDER BY ord", (e["sequence_id"],))]
    db.execute("SELECT message_id, subject FROM outbox WHERE enrollment_id = ?", (enrollment_id,)).fetchall()
    db.execute("SELECT DISTINCT kind FROM events WHERE enrollment_id = ? AND flagged = 0"
               " AND kind IN ('replied', 'opened', 'clicked')", (enrollment_id,)).fetchall()
    db.execute("SELECT reason FROM suppressions WHERE email = ?", (contact.email,)).fetchone()
    step = steps[0]
    template = templates.get(step.id)
    if template is None:
        template = templates[step.id] = render.compile_template(step.subject, step.body, step.text)
    rendered = template.render(contact.merge_fields())
    message_id = render.make_message_id("sender.example", f"{enrollment_id}.{step.id}.0011223344556677")
    cur = db.execute("INSERT INTO outbox (enrollment_id, step_id, mailbox_id, message_id, subject, status,"
                     " attempts, created_at, attempted_at) VALUES (?,?,?,?,?, 'sending', 1, ?, ?)",
                     (enrollment_id, step.id, mailbox, message_id, rendered.subject, now, now))
    db.execute("INSERT INTO send_log (mailbox_id, at) VALUES (?, ?)", (mailbox, now))
    assert cur.lastrowid is not None
    return Claimed(enrollment_id, e["sequence_id"], contact, step, rendered, message_id, cur.lastrowid)


def record_sent(db: sqlite3.Connection, claimed: Claimed, mailbox: str, now: float) -> None:
    db.execute("UPDATE outbox SET status = 'sent', resolved_at = ? WHERE id = ?", (now, claimed.outbox_id))
    db.execute("INSERT INTO events (at, kind, mailbox_id, sequence_id, enrollment_id, contact_id, step_id,"
               " outbox_id, flagged, data) VALUES (?, 'sent', ?, ?, ?, ?, ?, ?, 0, '{}')",
               (now, mailbox, claimed.sequence_id, claimed.enrollment_id, claimed.contact.id, claimed.step.id,
                claimed.outbox_id))
    db.execute("UPDATE enrollments SET status = 'completed', sent_count = 1, next_run_at = NULL, due_at = NULL,"
               " ended_at = ?, updated_at = ? WHERE id = ?", (now, now, claimed.enrollment_id))
