"""Read-mostly operations behind analytics, stats and status: the raw facts (messages and their
events) that dripd/analytics.py turns into funnels, logs and mailbox rates, and a few counts;
the PostgreSQL twin of ``dripd.store.sqlite.reports`` (id sets go as one array parameter)."""

from __future__ import annotations

import json
from typing import Any

from dripd.store.api import MessageFacts
from dripd.store.postgres.connection import operation
from dripd.store.postgres.sql import Conn, fetch_all, fetch_one

def _facts(db: Conn, where: str, params: tuple[Any, ...]) -> list[MessageFacts]:
    rows = fetch_all(
        db, "SELECT o.id, o.step_id, o.status, COALESCE(o.resolved_at, o.attempted_at) AS sent_at, o.mailbox_id,"
            " o.variant"
            " FROM outbox o"
            f" JOIN enrollments e ON e.id = o.enrollment_id WHERE {where} ORDER BY o.id", params)
    if not rows:
        return []
    kinds: dict[int, set[str]] = {}
    flagged: dict[int, set[str]] = {}
    for r in fetch_all(db, "SELECT outbox_id, kind, MIN(flagged) FROM events WHERE outbox_id = ANY(%s)"
                           " GROUP BY outbox_id, kind", ([r[0] for r in rows],)):
        (flagged if r[2] else kinds).setdefault(r[0], set()).add(r[1])
    return [MessageFacts(r[0], r[1], r[2], r[3], frozenset(kinds.get(r[0], ())), frozenset(flagged.get(r[0], ())),
                         r[4], r[5]) for r in rows]


class ReportOps:
    """Mixin of reporting operations (``PgConnection`` runs them)."""

    @operation
    def sequence_message_facts(self, db: Conn, sequence_id: int) -> list[MessageFacts]:
        return _facts(db, "e.sequence_id = %s", (sequence_id,))

    @operation
    def mailbox_message_facts(self, db: Conn, mailbox_id: str, since: float, until: float) -> list[MessageFacts]:
        return _facts(db, "o.mailbox_id = %s AND COALESCE(o.resolved_at, o.attempted_at) >= %s"
                          " AND COALESCE(o.resolved_at, o.attempted_at) < %s", (mailbox_id, since, until))

    @operation
    def all_steps(self, db: Conn, sequence_id: int) -> list[dict[str, Any]]:
        """Every step ever in the sequence (deleted ones too: sent messages keep their step)."""
        rows = fetch_all(db, "SELECT id, ord, type, data, deleted FROM steps WHERE sequence_id = %s ORDER BY ord",
                         (sequence_id,))
        out = []
        for r in rows:
            data = json.loads(r[3])
            out.append({"id": r[0], "ord": r[1], "type": r[2], "subject": data.get("subject", ""),
                        "deleted": bool(r[4]), "variants": data.get("variants", []),
                        "auto_winner": data.get("auto_winner")})
        return out

    @operation
    def contact_history(self, db: Conn, sequence_id: int, contact_id: int) -> dict[str, list[dict[str, Any]]]:
        """The contact's enrollments in the sequence, the messages sent and every event, in order."""
        enrollments = [dict(r) for r in fetch_all(
            db, "SELECT id, status, enrolled_at, ended_at, end_reason, sent_count FROM enrollments"
                " WHERE sequence_id = %s AND contact_id = %s ORDER BY id", (sequence_id, contact_id))]
        ids = [e["id"] for e in enrollments]
        if not ids:
            return {"enrollments": [], "messages": [], "events": []}
        messages = [dict(r) for r in fetch_all(
            db, "SELECT id, enrollment_id, step_id, message_id, subject, status, attempts, attempted_at, resolved_at,"
                " detail, variant, body, text_body FROM outbox WHERE enrollment_id = ANY(%s) ORDER BY id", (ids,))]
        events = [dict(r) for r in fetch_all(
            db, "SELECT id, at, kind, enrollment_id, step_id, outbox_id, flagged, data FROM events"
                " WHERE enrollment_id = ANY(%s) ORDER BY at, id", (ids,))]
        for event in events:
            event["data"] = json.loads(event["data"])
        return {"enrollments": enrollments, "messages": messages, "events": events}

    @operation
    def count_outbox(self, db: Conn, status: str) -> int:
        row = fetch_one(db, "SELECT COUNT(*) AS n FROM outbox WHERE status = %s", (status,))
        return int(row["n"]) if row else 0

    @operation
    def queue_depth(self, db: Conn, until: float) -> int:
        """Runnable enrollments due by ``until`` (for status and metrics)."""
        row = fetch_one(
            db, "SELECT COUNT(*) AS n FROM enrollments WHERE next_run_at IS NOT NULL AND next_run_at <= %s",
            (until,),
        )
        return int(row["n"]) if row else 0
