"""Store operations for what comes back: replies, bounces, auto-replies, complaints, opt-outs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dripd.model import EnrollmentStatus
from dripd.store.runs import add_event, autocomplete, end_now
from dripd.store.sqlite import Conn, fetch_all, fetch_one, thread_operation


@dataclass(frozen=True)
class SentRef:
    """A message dripd sent, found by its Message-ID."""

    outbox_id: int
    enrollment_id: int
    step_id: int
    sequence_id: int
    contact_email: str
    enrollment_status: str


class SignalOps:
    @thread_operation
    def sent_by_message_ids(self, db: Conn, message_ids: list[str]) -> list[SentRef]:
        if not message_ids:
            return []
        marks = ",".join("?" * len(message_ids))
        rows = fetch_all(
            db,
            "SELECT o.id, o.enrollment_id, o.step_id, e.sequence_id, c.email, e.status FROM outbox o"
            " JOIN enrollments e ON e.id = o.enrollment_id JOIN contacts c ON c.id = e.contact_id"
            f" WHERE o.message_id IN ({marks}) ORDER BY o.id DESC",
            tuple(message_ids),
        )
        return [SentRef(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    @thread_operation
    def latest_sent_to(self, db: Conn, mailbox_id: str, email: str, active_only: bool) -> list[SentRef]:
        """The newest message per enrollment this mailbox sent to ``email`` (reply fallback)."""
        rows = fetch_all(
            db,
            "SELECT MAX(o.id), o.enrollment_id, o.step_id, e.sequence_id, c.email, e.status FROM outbox o"
            " JOIN enrollments e ON e.id = o.enrollment_id JOIN contacts c ON c.id = e.contact_id"
            " WHERE o.mailbox_id = ? AND c.email = ? AND o.status IN ('sent', 'uncertain')"
            + (" AND e.status = 'active'" if active_only else "")
            + " GROUP BY o.enrollment_id ORDER BY o.id DESC",
            (mailbox_id, email),
        )
        return [SentRef(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    @thread_operation
    def message_ids_for_contact(self, db: Conn, contact_id: int) -> list[str]:
        rows = fetch_all(
            db, "SELECT o.message_id FROM outbox o JOIN enrollments e ON e.id = o.enrollment_id"
                " WHERE e.contact_id = ? ORDER BY o.id", (contact_id,))
        return [r[0] for r in rows]

    @thread_operation
    def record_signal(
        self, db: Conn, ref: SentRef, kind: str, now: float, *, end_as: EnrollmentStatus | None = None,
        data: dict[str, Any] | None = None, flagged: bool = False,
    ) -> int | None:
        """Record an event against the message it answers; optionally end the enrollment.
        Returns a sequence id this auto-completed."""
        add_event(db, kind, now, ref.enrollment_id, step_id=ref.step_id, outbox_id=ref.outbox_id,
                     data=data, flagged=flagged)
        db.execute("UPDATE enrollments SET last_event_at = ? WHERE id = ?", (now, ref.enrollment_id))
        if end_as is None:
            return None
        # The event above is the record; end quietly (no second event of the same kind).
        cursor = db.execute(
            "UPDATE enrollments SET status = ?, end_reason = ?, ended_at = ?, updated_at = ?,"
            " next_run_at = NULL, due_at = NULL WHERE id = ? AND status = 'active'",
            (end_as.value, kind, now, now, ref.enrollment_id),
        )
        if cursor.rowcount == 0:
            return None
        return autocomplete(db, ref.sequence_id, now)

    @thread_operation
    def suppress(self, db: Conn, email: str, reason: str, detail: str | None, now: float,
                       end_as: EnrollmentStatus) -> list[int]:
        """Put an address on the suppression list and end its active enrollments everywhere.
        Returns sequences this auto-completed."""
        completed: list[int] = []
        db.execute(
            "INSERT INTO suppressions (email, reason, at, detail) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (email) DO UPDATE SET reason = excluded.reason, at = excluded.at,"
            " detail = excluded.detail",
            (email, reason, now, detail),
        )
        rows = fetch_all(
            db, "SELECT e.id FROM enrollments e JOIN contacts c ON c.id = e.contact_id"
                " WHERE c.email = ? AND e.status = 'active'", (email,))
        for r in rows:
            done = end_now(db, r[0], end_as, reason, now)
            if done is not None:
                completed.append(done)
        return completed

    @thread_operation
    def unsuppress(self, db: Conn, email: str) -> bool:
        cursor = db.execute("DELETE FROM suppressions WHERE email = ?", (email,))
        return cursor.rowcount > 0

    @thread_operation
    def suppressions(self, db: Conn, reason: str | None = None) -> list[dict[str, Any]]:
        rows = fetch_all(
            db, "SELECT * FROM suppressions" + (" WHERE reason = ?" if reason else "") + " ORDER BY at",
            (reason,) if reason else ())
        return [dict(r) for r in rows]

    @thread_operation
    def delay_enrollment(self, db: Conn, enrollment_id: int, until: float, now: float) -> bool:
        """Push an active enrollment's next step to ``until`` at the earliest (out of office)."""
        cursor = db.execute(
            "UPDATE enrollments SET due_at = MAX(COALESCE(due_at, ?), ?), updated_at = ?,"
            " next_run_at = CASE WHEN next_run_at IS NULL THEN NULL ELSE MAX(next_run_at, ?) END"
            " WHERE id = ? AND status = 'active'",
            (until, until, now, until, enrollment_id),
        )
        return cursor.rowcount > 0

    @thread_operation
    def active_in_sequence_at_domain(self, db: Conn, sequence_id: int, domain: str) -> list[int]:
        rows = fetch_all(
            db, "SELECT e.id FROM enrollments e JOIN contacts c ON c.id = e.contact_id"
                " WHERE e.sequence_id = ? AND e.status = 'active' AND c.email LIKE ?",
            (sequence_id, "%@" + domain))
        return [r[0] for r in rows]

    @thread_operation
    def hard_bounce_rate(self, db: Conn, sequence_id: int, last: int) -> tuple[int, int]:
        """(hard bounces, sends) among the sequence's last ``last`` sends."""
        rows = fetch_all(
            db,
            "SELECT o.id, o.status, o.detail FROM outbox o JOIN enrollments e ON e.id = o.enrollment_id"
            " WHERE e.sequence_id = ? AND o.status IN ('sent', 'failed', 'uncertain') ORDER BY o.id DESC LIMIT ?",
            (sequence_id, last))
        ids = [r[0] for r in rows]
        if not ids:
            return 0, 0
        marks = ",".join("?" * len(ids))
        bounced = fetch_one(
            db, f"SELECT COUNT(DISTINCT outbox_id) FROM events WHERE kind = 'bounced' AND outbox_id IN ({marks})"
                " AND json_extract(data, '$.class') = 'hard'", tuple(ids))
        return int(bounced[0]) if bounced else 0, len(ids)
