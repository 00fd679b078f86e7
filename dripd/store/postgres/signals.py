"""Operations for what comes back: replies, bounces, auto-replies, complaints, opt-outs,
tracking hits; the suppression list; delays. The PostgreSQL twin of ``dripd.store.sqlite.signals``."""

from __future__ import annotations

import json
from typing import Any

from dripd import policy
from dripd.events import Bounce, EventKind, Payload
from dripd.model import EnrollmentStatus
from dripd.store.api import SentRef, TrackedMessage
from dripd.store.postgres.connection import operation
from dripd.store.postgres.sql import Conn, fetch_all, fetch_one
from dripd.store.postgres.journal import autocomplete, close_enrollment, end_now, enrollment_event


class SignalOps:
    """Mixin of signal operations (``PgConnection`` runs them)."""

    @operation
    def sent_by_message_ids(self, db: Conn, message_ids: list[str]) -> list[SentRef]:
        if not message_ids:
            return []
        rows = fetch_all(
            db,
            "SELECT o.id, o.enrollment_id, o.step_id, e.sequence_id, c.email, e.status FROM outbox o"
            " JOIN enrollments e ON e.id = o.enrollment_id JOIN contacts c ON c.id = e.contact_id"
            " WHERE o.message_id = ANY(%s) ORDER BY o.id DESC",
            (list(message_ids),),
        )
        return [SentRef(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    @operation
    def latest_sent_to(self, db: Conn, mailbox_id: str, email: str, active_only: bool) -> list[SentRef]:
        """The newest message per enrollment this mailbox sent to ``email`` (reply fallback)."""
        rows = fetch_all(
            db,
            "SELECT o.id, o.enrollment_id, o.step_id, e.sequence_id, c.email, e.status FROM outbox o"
            " JOIN enrollments e ON e.id = o.enrollment_id JOIN contacts c ON c.id = e.contact_id"
            " WHERE o.mailbox_id = %s AND c.email = %s AND o.status IN ('sent', 'uncertain')"
            + (" AND e.status = 'active'" if active_only else "")
            + " AND o.id = (SELECT MAX(o2.id) FROM outbox o2 WHERE o2.enrollment_id = o.enrollment_id"
            "   AND o2.mailbox_id = o.mailbox_id AND o2.status IN ('sent', 'uncertain'))"
            " ORDER BY o.id DESC",
            (mailbox_id, email),
        )
        return [SentRef(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    @operation
    def message_ids_for_contact(self, db: Conn, contact_id: int) -> list[str]:
        rows = fetch_all(
            db, "SELECT o.message_id FROM outbox o JOIN enrollments e ON e.id = o.enrollment_id"
                " WHERE e.contact_id = %s ORDER BY o.id", (contact_id,))
        return [r[0] for r in rows]

    @operation
    def tracked_message(self, db: Conn, message_id: str) -> TrackedMessage | None:
        row = fetch_one(
            db, "SELECT o.id, o.enrollment_id, o.step_id, e.sequence_id, o.mailbox_id, c.email, e.status,"
                " COALESCE(o.resolved_at, o.attempted_at) FROM outbox o JOIN enrollments e ON e.id = o.enrollment_id"
                " JOIN contacts c ON c.id = e.contact_id WHERE o.message_id = %s AND o.status IN ('sent', 'uncertain')",
            (message_id,))
        return TrackedMessage(*row) if row else None

    @operation
    def hit_seen(self, db: Conn, outbox_id: int, kind: EventKind, agent_like: str) -> bool:
        """Whether a hit of ``kind`` whose user agent contains ``agent_like`` was recorded before
        (a message has few hits: the agents are read and matched here, not in SQL)."""
        needle = agent_like.lower()
        kind = EventKind(kind)  # a caller's plain "opened" is checked against the vocabulary too
        for (data,) in db.execute("SELECT data FROM events WHERE outbox_id = %s AND kind = %s", (outbox_id, kind.value)):
            agent = json.loads(data).get("agent")
            if isinstance(agent, str) and needle in agent.lower():
                return True
        return False

    @operation
    def record_signal(
        self, db: Conn, ref: SentRef, kind: EventKind, now: float, payload: Payload,
        end_as: EnrollmentStatus | None = None,
    ) -> int | None:
        """Record an event against the message it answers (a flagged engagement is kept, marked
        so the counts leave it out); optionally end the enrollment. Returns a sequence id this auto-completed."""
        enrollment_event(db, kind, now, ref.enrollment_id, payload, step_id=ref.step_id, outbox_id=ref.outbox_id)
        if isinstance(payload, Bounce):
            # The guards count bounces from the ledger; a hard bounce is never downgraded.
            db.execute("UPDATE outbox SET bounce_class = CASE WHEN bounce_class = 'hard' THEN 'hard' ELSE %s END"
                       " WHERE id = %s", (payload.bounce_class, ref.outbox_id))
        db.execute("UPDATE enrollments SET last_event_at = %s WHERE id = %s", (now, ref.enrollment_id))
        if end_as is None:
            return None
        # The event above is the record; end quietly (no second event of the same kind).
        if not close_enrollment(db, ref.enrollment_id, end_as, kind.value, now):
            return None
        return autocomplete(db, ref.sequence_id, now)

    @operation
    def suppress(self, db: Conn, email: str, reason: str, detail: str | None, now: float) -> list[int]:
        """Put an address on the suppression list and end its active enrollments everywhere, as
        policy says a suppression for ``reason`` ends them. Returns sequences this auto-completed."""
        end_as = policy.suppression_end_status(reason)
        db.execute(
            "INSERT INTO suppressions (email, reason, at, detail) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (email) DO UPDATE SET reason = excluded.reason, at = excluded.at,"
            " detail = excluded.detail",
            (email, reason, now, detail),
        )
        rows = fetch_all(
            db, "SELECT e.id FROM enrollments e JOIN contacts c ON c.id = e.contact_id"
                " WHERE c.email = %s AND e.status = 'active' ORDER BY e.id", (email,))
        completed: list[int] = []
        for r in rows:
            done = end_now(db, r[0], end_as, reason, now)
            if done is not None:
                completed.append(done)
        return completed

    @operation
    def unsuppress(self, db: Conn, email: str) -> bool:
        cursor = db.execute("DELETE FROM suppressions WHERE email = %s", (email,))
        return cursor.rowcount > 0

    @operation
    def suppression_reason(self, db: Conn, email: str) -> str | None:
        row = fetch_one(db, "SELECT reason FROM suppressions WHERE email = %s", (email,))
        return row[0] if row else None

    @operation
    def suppressions(self, db: Conn, reason: str | None = None) -> list[dict[str, Any]]:
        rows = fetch_all(
            db, "SELECT email, reason, at, detail FROM suppressions" + (" WHERE reason = %s" if reason else "")
                + " ORDER BY at, email", (reason,) if reason else ())
        return [dict(r) for r in rows]

    @operation
    def delay_enrollment(self, db: Conn, enrollment_id: int, until: float, now: float) -> bool:
        """Push an active enrollment's next step to ``until`` at the earliest (out of office)."""
        cursor = db.execute(
            "UPDATE enrollments SET due_at = CASE WHEN due_at IS NULL OR due_at < %s THEN %s ELSE due_at END,"
            " updated_at = %s,"
            " next_run_at = CASE WHEN next_run_at IS NULL THEN NULL WHEN next_run_at < %s THEN %s ELSE next_run_at END"
            " WHERE id = %s AND status = 'active'",
            (until, until, now, until, until, enrollment_id),
        )
        return cursor.rowcount > 0

    @operation
    def active_in_sequence_at_domain(self, db: Conn, sequence_id: int, domain: str) -> list[int]:
        rows = fetch_all(
            db, "SELECT e.id FROM enrollments e JOIN contacts c ON c.id = e.contact_id"
                " WHERE e.sequence_id = %s AND e.status = 'active' AND c.email ILIKE %s ORDER BY e.id",  # as SQLite's LIKE: case aside
            (sequence_id, "%@" + domain))
        return [r[0] for r in rows]
