"""Store operations of the send path: due work, run context, the outbox ledger, endings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dripd.cadence import Signals
from dripd.model import Contact, Enrollment, EnrollmentStatus, Sequence, SequenceStatus, Step
from dripd.store.rows import (
    enrollment_from_row,
    sequence_from_row,
    step_from_row,
)
from dripd.store.sqlite import Conn, fetch_all, fetch_one, thread_operation


@dataclass(frozen=True)
class DueRow:
    enrollment_id: int
    next_run_at: float
    followup: bool  # already sent at least one email: goes first when caps are tight


@dataclass(frozen=True)
class RunContext:
    """Everything the engine needs to decide and render one enrollment's next step."""

    enrollment: Enrollment
    sequence: Sequence
    steps: list[Step]
    contact: Contact
    thread: list[tuple[str, str]]  # (Message-ID, subject) of emails already sent, in order
    signals: Signals
    suppressed: str | None  # the suppression reason when the address may not be mailed


@dataclass(frozen=True)
class Claim:
    outbox_id: int
    message_id: str
    attempts: int
    first_attempt_at: float


@dataclass(frozen=True)
class OutboxRow:
    id: int
    enrollment_id: int
    step_id: int
    mailbox_id: str
    message_id: str
    status: str
    attempted_at: float


def add_event(db: Conn, kind: str, at: float, enrollment_id: int | None = None, **fields: Any) -> None:
    data = fields.pop("data", None)
    row = fetch_one(
        db,
        "SELECT sequence_id, contact_id, mailbox_id FROM enrollments WHERE id = ?",
        (enrollment_id,),
    ) if enrollment_id is not None else None
    db.execute(
        "INSERT INTO events (at, kind, mailbox_id, sequence_id, enrollment_id, contact_id, step_id,"
        " outbox_id, flagged, data) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            at,
            kind,
            fields.get("mailbox_id", row["mailbox_id"] if row else None),
            fields.get("sequence_id", row["sequence_id"] if row else None),
            enrollment_id,
            fields.get("contact_id", row["contact_id"] if row else None),
            fields.get("step_id"),
            fields.get("outbox_id"),
            int(fields.get("flagged", False)),
            json.dumps(data or {}),
        ),
    )


def end_now(
    db: Conn, enrollment_id: int, status: EnrollmentStatus, reason: str | None, now: float
) -> int | None:
    """End one active enrollment inside the caller's transaction; returns the sequence id it
    auto-completed, if ending it left no active contact in an autoComplete sequence."""
    cursor = db.execute(
        "UPDATE enrollments SET status = ?, end_reason = ?, ended_at = ?, updated_at = ?,"
        " last_event_at = ?, next_run_at = NULL, due_at = NULL WHERE id = ? AND status = 'active'",
        (status.value, reason, now, now, now, enrollment_id),
    )
    if cursor.rowcount == 0:
        return None
    if status is not EnrollmentStatus.COMPLETED:
        add_event(db, status.value if status is not EnrollmentStatus.CANCELLED else "cancelled",
                     now, enrollment_id, data={"reason": reason} if reason else None)
    row = fetch_one(db, "SELECT sequence_id FROM enrollments WHERE id = ?", (enrollment_id,))
    assert row is not None
    return autocomplete(db, row["sequence_id"], now)


def autocomplete(db: Conn, sequence_id: int, now: float) -> int | None:
    seq_row = fetch_one(
        db, "SELECT status, json_extract(settings, '$.auto_complete') AS auto FROM sequences WHERE id = ?",
        (sequence_id,))
    if seq_row is None or seq_row["status"] != SequenceStatus.ACTIVE.value or not seq_row["auto"]:
        return None
    left = fetch_one(
        db, "SELECT 1 FROM enrollments WHERE sequence_id = ? AND status = 'active' LIMIT 1", (sequence_id,)
    )
    if left is not None:
        return None
    db.execute(
        "UPDATE sequences SET status = 'completed', status_reason = 'all contacts finished',"
        " updated_at = ? WHERE id = ?",
        (now, sequence_id),
    )
    return sequence_id


class RunOps:
    """Mixin of send-path operations; ``self._db`` comes from SqliteConnection."""

    # Parsed sequences and their live steps by id: parsing settings JSON and steps for every
    # send was a measurable share of the connection thread. Every catalog operation that edits a
    # sequence or its steps drops its entry (forget_sequence); status is checked on each use,
    # since auto-complete and auto-pause change it from the send path too.
    _sequence_cache: dict[int, tuple[str, Sequence, list[Step]]]

    def _cache(self) -> dict[int, tuple[str, Sequence, list[Step]]]:
        cache = self.__dict__.get("_sequence_cache")
        if cache is None:
            cache = self.__dict__["_sequence_cache"] = {}
            self.caches.append(cache)  # type: ignore[attr-defined]
        return cache

    def forget_sequence(self, sequence_id: int) -> None:
        self._cache().pop(sequence_id, None)

    def _sequence_and_steps(self, db: Conn, sequence_id: int, status: str) -> tuple[Sequence, list[Step]]:
        """The parsed sequence and its live steps; ``status`` is the sequence's status as just read."""
        cache = self._cache()
        cached = cache.get(sequence_id)
        if cached is not None and cached[0] == status:
            return cached[1], cached[2]
        seq_row = fetch_one(db, "SELECT * FROM sequences WHERE id = ?", (sequence_id,))
        steps = [step_from_row(r) for r in fetch_all(
            db, "SELECT * FROM steps WHERE sequence_id = ? AND deleted = 0 ORDER BY ord", (sequence_id,))]
        sequence = sequence_from_row(seq_row)
        if len(cache) > 10_000:
            cache.clear()
        cache[sequence_id] = (sequence.status.value, sequence, steps)
        return sequence, steps

    @thread_operation
    def due_for_mailbox(
        self, db: Conn, mailbox_id: str, after: tuple[float, int], until: float, limit: int
    ) -> list[DueRow]:
        """Runnable enrollments of one mailbox after the keyset ``after``, due by ``until``."""
        rows = fetch_all(
            db,
            "SELECT id, next_run_at, sent_count FROM enrollments INDEXED BY enrollments_due"
            " WHERE mailbox_id = ? AND next_run_at IS NOT NULL AND (next_run_at, id) > (?, ?)"
            " AND next_run_at <= ? ORDER BY next_run_at, id LIMIT ?",
            (mailbox_id, after[0], after[1], until, limit),
        )
        return [DueRow(r["id"], r["next_run_at"], r["sent_count"] > 0) for r in rows]

    @thread_operation
    def run_context(self, db: Conn, enrollment_id: int) -> RunContext | None:
        # One statement for the enrollment, its contact, its sequence's status, the address's
        # suppression and the engagement signals (was five; each execute is Python work on the
        # connection thread, which the event loop then waits for the GIL behind).
        row = fetch_one(
            db,
            "SELECT e.*, s.status AS sequence_status, c.email AS contact_email,"
            " c.first_name AS contact_first_name, c.last_name AS contact_last_name,"
            " c.company AS contact_company, c.fields AS contact_fields,"
            " (SELECT reason FROM suppressions WHERE email = c.email) AS suppressed,"
            " (SELECT group_concat(DISTINCT kind) FROM events WHERE enrollment_id = e.id AND flagged = 0"
            "  AND kind IN ('replied', 'opened', 'clicked')) AS signal_kinds"
            " FROM enrollments e JOIN contacts c ON c.id = e.contact_id JOIN sequences s ON s.id = e.sequence_id"
            " WHERE e.id = ?",
            (enrollment_id,),
        )
        if row is None:
            return None
        enrollment = enrollment_from_row(row)
        sequence, steps = self._sequence_and_steps(db, enrollment.sequence_id, row["sequence_status"])
        contact = Contact(
            id=enrollment.contact_id, email=row["contact_email"], first_name=row["contact_first_name"],
            last_name=row["contact_last_name"], company=row["contact_company"],
            fields=json.loads(row["contact_fields"]),
        )
        thread = [
            (r[0], r[1])
            for r in db.execute(
                "SELECT message_id, subject FROM outbox WHERE enrollment_id = ?"
                " AND status IN ('sent', 'uncertain') ORDER BY id",
                (enrollment_id,),
            )
        ]
        kinds = set((row["signal_kinds"] or "").split(","))
        return RunContext(
            enrollment=enrollment,
            sequence=sequence,
            steps=steps,
            contact=contact,
            thread=thread,
            signals=Signals("replied" in kinds, "opened" in kinds, "clicked" in kinds),
            suppressed=row["suppressed"],
        )

    @thread_operation
    def set_plan(
        self, db: Conn, enrollment_id: int, cursor_ord: int, anchor_at: float, due_at: float, now: float
    ) -> bool:
        """Move an active enrollment's cursor and due time; held (not runnable) unless its
        sequence is active. False when the enrollment is no longer active."""
        cursor = db.execute(
            "UPDATE enrollments SET cursor_ord = ?, anchor_at = ?, due_at = ?, updated_at = ?,"
            " next_run_at = CASE WHEN (SELECT status FROM sequences WHERE id = sequence_id) = 'active'"
            " THEN ? ELSE NULL END WHERE id = ? AND status = 'active'",
            (cursor_ord, anchor_at, due_at, now, due_at, enrollment_id),
        )
        return cursor.rowcount > 0

    @thread_operation
    def finish(
        self, db: Conn, enrollment_id: int, status: EnrollmentStatus, reason: str | None, now: float
    ) -> int | None:
        return end_now(db, enrollment_id, status, reason, now)

    @thread_operation
    def claim_send(
        self, db: Conn, enrollment_id: int, step_id: int, mailbox_id: str, message_id: str,
        subject: str, now: float,
    ) -> Claim | None:
        """Commit the ledger row before the transport is called. None means the step was
        already sent, is in flight or is uncertain: the ledger refuses a second send."""
        existing = fetch_one(
            db, "SELECT * FROM outbox WHERE enrollment_id = ? AND step_id = ?", (enrollment_id, step_id)
        )
        if existing is None:
            cursor = db.execute(
                "INSERT INTO outbox (enrollment_id, step_id, mailbox_id, message_id, subject, status,"
                " attempts, created_at, attempted_at) VALUES (?,?,?,?,?, 'sending', 1, ?, ?)",
                (enrollment_id, step_id, mailbox_id, message_id, subject, now, now),
            )
            claim = Claim(cursor.lastrowid or 0, message_id, 1, now)
        elif existing["status"] == "retry":
            # A retry keeps its Message-ID: the recipient's server sees one message.
            db.execute(
                "UPDATE outbox SET status = 'sending', attempts = attempts + 1, attempted_at = ?,"
                " subject = ? WHERE id = ?",
                (now, subject, existing["id"]),
            )
            claim = Claim(existing["id"], existing["message_id"], existing["attempts"] + 1,
                          existing["created_at"])
        else:
            return None
        db.execute("INSERT INTO send_log (mailbox_id, at) VALUES (?, ?)", (mailbox_id, now))
        return claim

    @thread_operation
    def record_sent(
        self, db: Conn, claim: Claim, enrollment_id: int, step_id: int, cursor_ord: int,
        anchor_at: float, due_at: float | None, now: float,
    ) -> int | None:
        """The transport accepted: resolve the row, advance the contact (due_at None = finished).
        Returns the id of a sequence this auto-completed."""
        db.execute(
            "UPDATE outbox SET status = 'sent', resolved_at = ?, detail = NULL WHERE id = ?",
            (now, claim.outbox_id),
        )
        add_event(db, "sent", now, enrollment_id, step_id=step_id, outbox_id=claim.outbox_id)
        return self._advance(db, enrollment_id, cursor_ord, anchor_at, due_at, now)

    def _advance(
        self, db: Conn, enrollment_id: int, cursor_ord: int, anchor_at: float, due_at: float | None, now: float
    ) -> int | None:
        db.execute(
            "UPDATE enrollments SET sent_count = sent_count + 1, cursor_ord = ?, anchor_at = ?,"
            " due_at = ?, last_event_at = ?, updated_at = ?,"
            " next_run_at = CASE WHEN (SELECT status FROM sequences WHERE id = sequence_id) = 'active'"
            " THEN ? ELSE NULL END WHERE id = ? AND status = 'active'",
            (cursor_ord, anchor_at, due_at, now, now, due_at, enrollment_id),
        )
        if due_at is None:
            return end_now(db, enrollment_id, EnrollmentStatus.COMPLETED, None, now)
        return None

    @thread_operation
    def record_retry(
        self, db: Conn, claim: Claim, enrollment_id: int, step_id: int, due_at: float, detail: str, now: float
    ) -> None:
        """A transient failure: the row waits as 'retry' (same Message-ID), the contact is due again."""
        db.execute(
            "UPDATE outbox SET status = 'retry', detail = ? WHERE id = ?", (detail, claim.outbox_id)
        )
        db.execute(
            "UPDATE enrollments SET due_at = ?, updated_at = ?,"
            " next_run_at = CASE WHEN (SELECT status FROM sequences WHERE id = sequence_id) = 'active'"
            " THEN ? ELSE NULL END WHERE id = ? AND status = 'active'",
            (due_at, now, due_at, enrollment_id),
        )
        add_event(db, "retry", now, enrollment_id, step_id=step_id, outbox_id=claim.outbox_id,
                     data={"detail": detail, "attempt": claim.attempts})

    @thread_operation
    def record_failed(
        self, db: Conn, claim: Claim, enrollment_id: int, step_id: int, bounce_class: str,
        detail: str, email: str, now: float,
    ) -> int | None:
        """A permanent failure (or retries exhausted): the contact bounces; a hard bounce
        suppresses the address everywhere."""
        db.execute(
            "UPDATE outbox SET status = 'failed', resolved_at = ?, detail = ? WHERE id = ?",
            (now, detail, claim.outbox_id),
        )
        add_event(db, "bounced", now, enrollment_id, step_id=step_id, outbox_id=claim.outbox_id,
                     data={"class": bounce_class, "detail": detail})
        if bounce_class == "hard":
            db.execute(
                "INSERT OR REPLACE INTO suppressions (email, reason, at, detail) VALUES (?, 'bounced', ?, ?)",
                (email, now, detail),
            )
        # end_now records no second 'bounced' event: the one above carries the detail.
        cursor = db.execute(
            "UPDATE enrollments SET status = 'bounced', end_reason = ?, ended_at = ?, updated_at = ?,"
            " last_event_at = ?, next_run_at = NULL, due_at = NULL WHERE id = ? AND status = 'active'",
            (detail, now, now, now, enrollment_id),
        )
        if cursor.rowcount == 0:
            return None
        row = fetch_one(db, "SELECT sequence_id FROM enrollments WHERE id = ?", (enrollment_id,))
        assert row is not None
        return autocomplete(db, row["sequence_id"], now)

    @thread_operation
    def record_uncertain(
        self, db: Conn, outbox_id: int, enrollment_id: int, step_id: int, cursor_ord: int,
        anchor_at: float, due_at: float | None, detail: str, now: float,
    ) -> int | None:
        """The send may or may not have happened: never resent by default; the contact moves on."""
        db.execute(
            "UPDATE outbox SET status = 'uncertain', resolved_at = ?, detail = ? WHERE id = ?",
            (now, detail, outbox_id),
        )
        add_event(db, "uncertain", now, enrollment_id, step_id=step_id, outbox_id=outbox_id,
                     data={"detail": detail})
        return self._advance(db, enrollment_id, cursor_ord, anchor_at, due_at, now)

    @thread_operation
    def release_claim(self, db: Conn, outbox_id: int, enrollment_id: int, due_at: float, now: float,
                      detail: str) -> None:
        """The message surely did not go (found missing after a crash, or refused before
        delivery): the step may be sent again, under the same Message-ID."""
        db.execute("UPDATE outbox SET status = 'retry', detail = ? WHERE id = ?", (detail, outbox_id))
        db.execute(
            "UPDATE enrollments SET due_at = ?, updated_at = ?,"
            " next_run_at = CASE WHEN (SELECT status FROM sequences WHERE id = sequence_id) = 'active'"
            " THEN ? ELSE NULL END WHERE id = ? AND status = 'active'",
            (due_at, now, due_at, enrollment_id),
        )

    @thread_operation
    def resolve_outbox(self, db: Conn, outbox_id: int, status: str, detail: str, now: float) -> None:
        db.execute("UPDATE outbox SET status = ?, detail = ?, resolved_at = ? WHERE id = ?",
                         (status, detail, now, outbox_id))

    @thread_operation
    def outbox_in_state(self, db: Conn, status: str) -> list[OutboxRow]:
        rows = fetch_all(db, "SELECT * FROM outbox WHERE status = ? ORDER BY id", (status,))
        return [
            OutboxRow(r["id"], r["enrollment_id"], r["step_id"], r["mailbox_id"], r["message_id"],
                      r["status"], r["attempted_at"])
            for r in rows
        ]

    @thread_operation
    def count_outbox(self, db: Conn, status: str) -> int:
        row = fetch_one(db, "SELECT COUNT(*) AS n FROM outbox WHERE status = ?", (status,))
        return int(row["n"]) if row else 0

    @thread_operation
    def send_history(self, db: Conn, mailbox_id: str, since: float) -> list[float]:
        rows = fetch_all(
            db, "SELECT at FROM send_log WHERE mailbox_id = ? AND at >= ? ORDER BY at", (mailbox_id, since)
        )
        return [r["at"] for r in rows]

    @thread_operation
    def prune_send_log(self, db: Conn, before: float) -> None:
        db.execute("DELETE FROM send_log WHERE at < ?", (before,))

    @thread_operation
    def queue_depth(self, db: Conn, until: float) -> int:
        """Runnable enrollments due by ``until`` (for status and metrics)."""
        row = fetch_one(
            db, "SELECT COUNT(*) AS n FROM enrollments WHERE next_run_at IS NOT NULL AND next_run_at <= ?",
            (until,),
        )
        return int(row["n"]) if row else 0

    @thread_operation
    def mailbox_paused(self, db: Conn, mailbox_id: str) -> str | None:
        row = fetch_one(db, "SELECT paused_reason FROM mailbox_state WHERE mailbox_id = ?", (mailbox_id,))
        return row["paused_reason"] if row else None

    @thread_operation
    def set_mailbox_paused(self, db: Conn, mailbox_id: str, reason: str | None, now: float) -> None:
        db.execute(
            "INSERT INTO mailbox_state (mailbox_id, paused_reason, paused_at) VALUES (?, ?, ?)"
            " ON CONFLICT (mailbox_id) DO UPDATE SET paused_reason = excluded.paused_reason,"
            " paused_at = excluded.paused_at",
            (mailbox_id, reason, now if reason else None),
        )

    @thread_operation
    def plugin_state_get(self, db: Conn, key: str) -> str | None:
        row = fetch_one(db, "SELECT value FROM plugin_state WHERE key = ?", (key,))
        return row["value"] if row else None

    @thread_operation
    def plugin_state_set(self, db: Conn, key: str, value: str) -> None:
        db.execute(
            "INSERT INTO plugin_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
