"""Store operations behind engagement: finding a tracked message, and the raw facts (messages
and their events) that dripd/analytics.py turns into funnels, logs and mailbox rates."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dripd.store.sqlite import Conn, control_operation, fetch_all, fetch_one


@dataclass(frozen=True)
class TrackedMessage:
    """A message dripd sent, as a tracking hit finds it by its Message-ID."""

    outbox_id: int
    enrollment_id: int
    step_id: int
    sequence_id: int
    mailbox_id: str
    contact_email: str
    enrollment_status: str
    sent_at: float


@dataclass(frozen=True)
class MessageFacts:
    """One ledger row and the kinds of event recorded against it."""

    outbox_id: int
    step_id: int
    status: str  # sending | sent | retry | failed | uncertain
    sent_at: float
    kinds: frozenset[str]  # unflagged event kinds
    flagged: frozenset[str]  # kinds seen only as flagged hits


def _facts(db: Conn, where: str, params: tuple[Any, ...]) -> list[MessageFacts]:
    rows = fetch_all(
        db, "SELECT o.id, o.step_id, o.status, COALESCE(o.resolved_at, o.attempted_at) AS sent_at FROM outbox o"
            f" JOIN enrollments e ON e.id = o.enrollment_id WHERE {where} ORDER BY o.id", params)
    if not rows:
        return []
    kinds: dict[int, set[str]] = {}
    flagged: dict[int, set[str]] = {}
    for start in range(0, len(rows), 900):  # SQLite's bound-parameter limit
        chunk = [r[0] for r in rows[start:start + 900]]
        marks = ",".join("?" * len(chunk))
        for r in fetch_all(db, f"SELECT outbox_id, kind, MIN(flagged) FROM events WHERE outbox_id IN ({marks})"
                               " GROUP BY outbox_id, kind", tuple(chunk)):
            (flagged if r[2] else kinds).setdefault(r[0], set()).add(r[1])
    return [MessageFacts(r[0], r[1], r[2], r[3], frozenset(kinds.get(r[0], ())), frozenset(flagged.get(r[0], ())))
            for r in rows]


class AnalyticsOps:
    """Mixin of read-mostly engagement operations; ``self._db`` comes from SqliteConnection."""

    @control_operation
    def tracked_message(self, db: Conn, message_id: str) -> TrackedMessage | None:
        row = fetch_one(
            db, "SELECT o.id, o.enrollment_id, o.step_id, e.sequence_id, o.mailbox_id, c.email, e.status,"
                " COALESCE(o.resolved_at, o.attempted_at) FROM outbox o JOIN enrollments e ON e.id = o.enrollment_id"
                " JOIN contacts c ON c.id = e.contact_id WHERE o.message_id = ? AND o.status IN ('sent', 'uncertain')",
            (message_id,))
        return TrackedMessage(*row) if row else None

    @control_operation
    def hit_seen(self, db: Conn, outbox_id: int, kind: str, agent_like: str) -> bool:
        """Whether a hit of ``kind`` whose user agent contains ``agent_like`` was recorded before."""
        row = fetch_one(
            db, "SELECT 1 FROM events WHERE outbox_id = ? AND kind = ? AND LOWER(json_extract(data, '$.ua')) LIKE ?"
                " LIMIT 1", (outbox_id, kind, f"%{agent_like.lower()}%"))
        return row is not None

    @control_operation
    def suppression_reason(self, db: Conn, email: str) -> str | None:
        row = fetch_one(db, "SELECT reason FROM suppressions WHERE email = ?", (email,))
        return row[0] if row else None

    @control_operation
    def sequence_message_facts(self, db: Conn, sequence_id: int) -> list[MessageFacts]:
        return _facts(db, "e.sequence_id = ?", (sequence_id,))

    @control_operation
    def mailbox_message_facts(self, db: Conn, mailbox_id: str, since: float, until: float) -> list[MessageFacts]:
        return _facts(db, "o.mailbox_id = ? AND COALESCE(o.resolved_at, o.attempted_at) >= ?"
                          " AND COALESCE(o.resolved_at, o.attempted_at) < ?", (mailbox_id, since, until))

    @control_operation
    def all_steps(self, db: Conn, sequence_id: int) -> list[dict[str, Any]]:
        """Every step ever in the sequence (deleted ones too: sent messages keep their step)."""
        rows = fetch_all(db, "SELECT id, ord, type, data, deleted FROM steps WHERE sequence_id = ? ORDER BY ord",
                         (sequence_id,))
        return [{"id": r[0], "ord": r[1], "type": r[2], "subject": json.loads(r[3]).get("subject", ""),
                 "deleted": bool(r[4])} for r in rows]

    @control_operation
    def contact_history(self, db: Conn, sequence_id: int, contact_id: int) -> dict[str, list[dict[str, Any]]]:
        """The contact's enrollments in the sequence, the messages sent and every event, in order."""
        enrollments = [dict(r) for r in fetch_all(
            db, "SELECT id, status, enrolled_at, ended_at, end_reason, sent_count FROM enrollments"
                " WHERE sequence_id = ? AND contact_id = ? ORDER BY id", (sequence_id, contact_id))]
        ids = tuple(e["id"] for e in enrollments)
        if not ids:
            return {"enrollments": [], "messages": [], "events": []}
        marks = ",".join("?" * len(ids))
        messages = [dict(r) for r in fetch_all(
            db, "SELECT id, enrollment_id, step_id, message_id, subject, status, attempts, attempted_at, resolved_at,"
                f" detail FROM outbox WHERE enrollment_id IN ({marks}) ORDER BY id", ids)]
        events = [dict(r) for r in fetch_all(
            db, "SELECT id, at, kind, enrollment_id, step_id, outbox_id, flagged, data FROM events"
                f" WHERE enrollment_id IN ({marks}) ORDER BY at, id", ids)]
        for event in events:
            event["data"] = json.loads(event["data"])
        return {"enrollments": enrollments, "messages": messages, "events": events}
