"""Catalog operations on enrollments: enrolling (one by one and in bulk), cancelling, progress.

Whether a contact may be enrolled is ``policy.enrollment_refusal``, asked per contact on both
paths; the store only reads the facts it needs (the contact's latest status in the sequence and
the address's suppression), set-based for the bulk path. The PostgreSQL twin of
``dripd.store.sqlite.enrollment``; runnable enrollments wake their mailbox's node (NOTIFY).
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from dripd import policy
from dripd.errors import NotFound, ReadOnly
from dripd.events import Event, EventKind, NoData
from dripd.model import EnrollmentStatus, Sequence as SequenceRow
from dripd.store.api import BulkResult, BulkRow, ContactInput, ContactProgress, EnrollResult
from dripd.store.postgres.connection import operation
from dripd.store.postgres.sql import Conn, fetch_all, fetch_one, notify_due
from dripd.store.postgres.contacts import load_contact, upsert_contact
from dripd.store.postgres.journal import end_now, reserve_event_ids, write_event, write_events
from dripd.store.postgres.sequences import load_sequence

_INSERT_ENROLLMENT = (
    "INSERT INTO enrollments (sequence_id, contact_id, mailbox_id, status, cursor_ord, anchor_at,"
    " due_at, next_run_at, merge_fields, enrolled_at, updated_at, last_event_at)")


def _refuse_completed(sequence: SequenceRow) -> None:
    """A completed sequence refuses every contact: said once, for the whole call."""
    refusal = policy.enrollment_refusal(sequence.status, None, None)
    if refusal is policy.Refusal.SEQUENCE_COMPLETED:
        raise ReadOnly(f"sequence {sequence.id}: {policy.REFUSAL_TEXT[refusal]}",
                       details={"sequenceId": sequence.id})


def _json(mapping: Mapping[str, str] | None) -> str:
    return json.dumps(dict(mapping)) if mapping else "{}"  # most rows have none: skip the encoder


def _latest_status(value: str | None) -> EnrollmentStatus | None:
    return EnrollmentStatus(value) if value is not None else None


class EnrollmentOps:
    """Mixin of enrollment operations (``PgConnection`` runs them)."""

    @operation
    def enroll(
        self, db: Conn, sequence_id: int, contacts: list[ContactInput | int],
        merge_fields: list[Mapping[str, str]] | None, now: float, *, strict: bool,
        mailboxes: Sequence[str] | None = None,
    ) -> EnrollResult:
        """Enroll contacts (ids, or new/existing addresses). With ``strict`` any refused contact
        aborts the whole call (nothing half-written); otherwise refused ones are reported.
        ``mailboxes`` gives each contact's mailbox (rotation); by default the sequence's."""
        sequence = load_sequence(db, sequence_id)
        _refuse_completed(sequence)
        runnable = now if policy.runnable_at_enrollment(sequence.status) else None
        enrolled: list[int] = []
        skipped: list[dict[str, Any]] = []
        woken: set[str] = set()
        for index, item in enumerate(contacts):
            contact = load_contact(db, item if isinstance(item, int) else upsert_contact(db, item, now))
            latest = fetch_one(db, "SELECT status FROM enrollments WHERE sequence_id = %s AND contact_id = %s"
                                   " ORDER BY id DESC LIMIT 1", (sequence_id, contact.id))
            suppressed = fetch_one(db, "SELECT reason FROM suppressions WHERE email = %s", (contact.email,))
            refusal = policy.enrollment_refusal(sequence.status, _latest_status(latest[0] if latest else None),
                                                suppressed[0] if suppressed else None)
            if refusal is not None:
                details: dict[str, Any] = {"contactId": contact.id, "email": contact.email}
                if latest is not None:
                    details["status"] = latest[0]
                if suppressed is not None:
                    details["suppressed"] = suppressed[0]
                error = policy.refusal_error(refusal, contact.email, sequence_id, details)
                if strict:
                    raise error
                skipped.append({"contactId": contact.id, "email": contact.email, "reason": refusal.value,
                                "message": error.message})
                continue
            fields = dict(merge_fields[index]) if merge_fields else {}
            mailbox_id = mailboxes[index] if mailboxes else sequence.settings.mailbox_id
            row = db.execute(
                _INSERT_ENROLLMENT + " VALUES (%s, %s, %s, 'active', 0, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (sequence_id, contact.id, mailbox_id, runnable, runnable, runnable,
                 json.dumps(fields), now, now, now),
            ).fetchone()
            assert row is not None
            enrollment_id = int(row[0])
            enrolled.append(enrollment_id)
            if runnable is not None:
                woken.add(mailbox_id)
            write_event(db, Event(EventKind.ENROLLED, now, NoData(), mailbox_id=mailbox_id,
                                  sequence_id=sequence_id, enrollment_id=enrollment_id, contact_id=contact.id))
        notify_due(db, woken)
        return EnrollResult(enrolled, skipped)

    @operation
    def bulk_enroll(self, db: Conn, sequence_id: int, rows: Sequence[BulkRow], now: float, *, strict: bool,
                    mailboxes: Sequence[str] | None = None) -> BulkResult:
        """Enroll many (position, contact, merge fields) rows in one transaction.

        The facts are read set-based into a temporary table (a few statements in all, not several
        per row: a 100k-row CSV takes seconds, not minutes); the rule is ``enroll``'s, decided per
        row in Python. With ``strict`` any refused row aborts the whole call; otherwise refused
        rows are reported by position. Addresses must be unique within ``rows`` (the caller
        reports duplicates). Every enrollment gets its own ``enrolled`` event, published after
        the commit like any other. ``mailboxes`` gives each row's mailbox, in row order (rotation).
        """
        sequence = load_sequence(db, sequence_id)
        _refuse_completed(sequence)
        # A temporary table of this session, emptied at every commit (the pool reuses sessions).
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS bulk_rows (pos BIGINT PRIMARY KEY, email TEXT NOT NULL,"
            " first_name TEXT, last_name TEXT, company TEXT, fields TEXT, merge TEXT, latest TEXT,"
            " suppressed TEXT, refused INTEGER NOT NULL DEFAULT 0, mailbox TEXT) ON COMMIT DELETE ROWS")
        db.execute("DELETE FROM bulk_rows")
        default_mailbox = sequence.settings.mailbox_id
        with db.cursor().copy("COPY bulk_rows (pos, email, first_name, last_name, company, fields, merge, mailbox)"
                              " FROM STDIN") as copy:
            for index, (pos, c, merge) in enumerate(rows):
                copy.write_row((pos, c.email, c.first_name, c.last_name, c.company, _json(c.fields), _json(merge),
                                mailboxes[index] if mailboxes else default_mailbox))
        # Existing contacts keep their data, as in enroll().
        db.execute(
            "INSERT INTO contacts (email, first_name, last_name, company, fields, created_at, updated_at)"
            " SELECT email, first_name, last_name, company, fields, %s, %s FROM bulk_rows WHERE true"
            " ON CONFLICT (email) DO NOTHING", (now, now))
        db.execute(
            "UPDATE bulk_rows SET"
            " latest = (SELECT e.status FROM enrollments e JOIN contacts c ON c.id = e.contact_id"
            "   WHERE c.email = bulk_rows.email AND e.sequence_id = %s ORDER BY e.id DESC LIMIT 1),"
            " suppressed = (SELECT s.reason FROM suppressions s WHERE s.email = bulk_rows.email)", (sequence_id,))
        skipped = self._bulk_refusals(db, sequence)
        if strict and skipped:
            first = skipped[0]
            more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
            error = policy.refusal_error(policy.Refusal(first["reason"]), first["email"], sequence_id,
                                         {"refused": skipped[:100]})
            raise type(error)(error.message + more, details=error.details)
        runnable = now if policy.runnable_at_enrollment(sequence.status) else None
        added = sorted(tuple(r) for r in db.execute(
            _INSERT_ENROLLMENT + " SELECT %s, c.id, b.mailbox, 'active', 0, %s, %s, %s, b.merge, %s, %s, %s FROM bulk_rows b"
            " JOIN contacts c ON c.email = b.email WHERE b.refused = 0 ORDER BY b.pos"
            " RETURNING id, contact_id, mailbox_id",
            (sequence_id, runnable, runnable, runnable, now, now, now)).fetchall())
        ids = reserve_event_ids(db, len(added)) if added else []
        payload = NoData()
        write_events(db, [Event(EventKind.ENROLLED, now, payload, mailbox_id=r[2], sequence_id=sequence_id,
                                enrollment_id=r[0], contact_id=r[1], id=ids[index]) for index, r in enumerate(added)])
        if runnable is not None:
            notify_due(db, (r[2] for r in added))
        db.execute("DELETE FROM bulk_rows")
        return BulkResult(len(added), skipped)

    @staticmethod
    def _bulk_refusals(db: Conn, sequence: SequenceRow) -> list[dict[str, Any]]:
        """Ask policy about every row that has a fact; marks the refused ones. A row without any
        fact is asked once for them all (rows without facts can differ in nothing)."""
        rows = fetch_all(db, "SELECT pos, email, latest, suppressed FROM bulk_rows"
                             " WHERE latest IS NOT NULL OR suppressed IS NOT NULL ORDER BY pos")
        if policy.enrollment_refusal(sequence.status, None, None) is not None:
            rows = fetch_all(db, "SELECT pos, email, latest, suppressed FROM bulk_rows ORDER BY pos")
        skipped: list[dict[str, Any]] = []
        for r in rows:
            refusal = policy.enrollment_refusal(sequence.status, _latest_status(r[2]), r[3])
            if refusal is not None:
                skipped.append({"pos": r[0], "email": r[1], "reason": refusal.value,
                                "message": policy.REFUSAL_TEXT[refusal]})
        if skipped:
            db.execute("UPDATE bulk_rows SET refused = 1 WHERE pos = ANY(%s)", ([s["pos"] for s in skipped],))
        return skipped

    @operation
    def cancel_enrollment(self, db: Conn, sequence_id: int, contact_id: int, now: float) -> int | None:
        row = fetch_one(db, "SELECT id FROM enrollments WHERE sequence_id = %s AND contact_id = %s AND status = 'active'",
                        (sequence_id, contact_id))
        if row is None:
            raise NotFound(f"contact {contact_id} has no active enrollment in sequence {sequence_id}",
                           details={"sequenceId": sequence_id, "contactId": contact_id})
        return end_now(db, row["id"], EnrollmentStatus.CANCELLED, "cancelled by request", now)

    @operation
    def sequence_contacts(self, db: Conn, sequence_id: int) -> list[ContactProgress]:
        load_sequence(db, sequence_id)
        rows = fetch_all(
            db,
            # The latest row waiting for a retry, if any (a subquery: never more than one row per contact).
            "SELECT e.*, c.email, r.detail AS retry_detail, r.attempts AS retry_attempts"
            " FROM enrollments e JOIN contacts c ON c.id = e.contact_id"
            " LEFT JOIN outbox r ON r.id = (SELECT MAX(o.id) FROM outbox o WHERE o.enrollment_id = e.id"
            " AND o.status = 'retry' AND e.status = 'active')"
            " WHERE e.sequence_id = %s ORDER BY e.id", (sequence_id,))
        return [
            ContactProgress(r["contact_id"], r["id"], r["email"], r["status"], r["cursor_ord"], r["next_run_at"],
                            r["due_at"], r["last_event_at"], r["enrolled_at"], r["sent_count"],
                            r["mailbox_id"], r["end_reason"], r["retry_detail"], r["retry_attempts"] or 0)
            for r in rows
        ]

    @operation
    def first_emails_waiting(self, db: Conn, sequence_id: int) -> dict[str, int]:
        """Per mailbox, the sequence's active contacts whose first email has not gone yet (the
        capacity a rotation has already promised)."""
        rows = fetch_all(db, "SELECT mailbox_id, COUNT(*) FROM enrollments WHERE sequence_id = %s AND status = 'active'"
                             " AND sent_count = 0 GROUP BY mailbox_id", (sequence_id,))
        return {r[0]: int(r[1]) for r in rows}

    @operation
    def latest_enrollment(self, db: Conn, sequence_id: int, contact_id: int) -> int | None:
        """The contact's newest enrollment in the sequence (the one a preview threads into)."""
        row = fetch_one(db, "SELECT id FROM enrollments WHERE sequence_id = %s AND contact_id = %s"
                            " ORDER BY id DESC LIMIT 1", (sequence_id, contact_id))
        return int(row["id"]) if row else None

