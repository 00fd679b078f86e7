"""Send-path operations: due work, run context, the outbox ledger, endings, mailbox state."""

from __future__ import annotations

from dripd.cadence import Signals
from dripd.events import Bounce, Detail, Event, EventKind, NoData, Reason
from dripd.model import Contact, EnrollmentStatus
from dripd.policy import Bounced
from dripd.store.api import Claim, DueRow, OutboxRow, Refused, RunContext
from dripd.store.rows import ENROLLMENT_COLUMNS, enrollment_from_values, json_value
from dripd.store.sqlite.connection import (
    Conn,
    claim_operation,
    fetch_all,
    fetch_one,
    read_operation,
    send_operation,
    thread_operation,
)
from dripd.store.sqlite import multi_row
from dripd.store.sqlite.sequences import SequenceCache
from dripd.store.sqlite.transaction import batched_by
from dripd.store.sqlite.journal import (
    announce_end,
    autocomplete,
    close_enrollment,
    end_now,
    enrollment_event,
    update_returning_place,
    write_event,
)
from dripd.variants import Tally

_SIGNAL_KINDS = (EventKind.REPLIED.value, EventKind.OPENED.value, EventKind.CLICKED.value)
# A ledger row that counts as a send for the bounce guards: handed to the transport, whatever
# came of it. A failed row without a bounce class was never handed over (it could not be built).
_WENT_OUT = "(o.status IN ('sent', 'uncertain') OR (o.status = 'failed' AND o.bounce_class IS NOT NULL))"
_RUNNABLE_IF_ACTIVE = ("next_run_at = CASE WHEN (SELECT status FROM sequences WHERE id = sequence_id) = 'active'"
                       " THEN ? ELSE NULL END")
# An enrollment (the one parameter) that may send now: active, in an active sequence.
_RUNNABLE = ("EXISTS (SELECT 1 FROM enrollments e JOIN sequences s ON s.id = e.sequence_id"
             " WHERE e.id = ? AND e.status = 'active' AND s.status = 'active')")

_ENROLLMENT_WIDTH = len(ENROLLMENT_COLUMNS)
_RUN_CONTEXT = (
    "SELECT " + ", ".join(f"e.{name}" for name in ENROLLMENT_COLUMNS) + ", s.status, c.email, c.first_name,"
    " c.last_name, c.company, c.fields,"
    " (SELECT reason FROM suppressions WHERE email = c.email),"
    " (SELECT group_concat(DISTINCT kind) FROM events WHERE enrollment_id = e.id AND flagged = 0"
    "  AND kind IN (?, ?, ?)),"
    " (SELECT json_group_array(json_array(o.id, o.message_id, o.subject, o.status, o.step_id, o.variant))"
    "  FROM outbox o WHERE o.enrollment_id = e.id)"
    " FROM enrollments e JOIN contacts c ON c.id = e.contact_id JOIN sequences s ON s.id = e.sequence_id"
    " WHERE e.id = ?"
)


class RunOps(SequenceCache):
    """Mixin of send-path operations; ``self._db`` comes from SqliteConnection."""

    @read_operation
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
        return [DueRow(id_, next_run_at, sent_count > 0) for id_, next_run_at, sent_count in rows]

    @read_operation
    def run_context(self, db: Conn, enrollment_id: int) -> RunContext | None:
        # One statement for the enrollment, its contact, its sequence's status, the address's
        # suppression, the engagement signals and its ledger rows (was six; each execute is
        # Python work on the connection thread, which the event loop then waits for the GIL behind).
        # A plain tuple row, unpacked by position: see enrollment_from_values.
        cursor = db.cursor()
        cursor.row_factory = None
        row = cursor.execute(_RUN_CONTEXT, (*_SIGNAL_KINDS, enrollment_id)).fetchone()
        if row is None:
            return None
        enrollment = enrollment_from_values(row[:_ENROLLMENT_WIDTH])
        (sequence_status, email, first_name, last_name, company, fields, suppressed, signal_kinds,
         ledger) = row[_ENROLLMENT_WIDTH:]
        sequence, steps = self._sequence_and_steps(db, enrollment.sequence_id, sequence_status)
        contact = Contact(
            id=enrollment.contact_id, email=email, first_name=first_name, last_name=last_name, company=company,
            fields=json_value(fields),
        )
        thread: list[tuple[str, str]] = []
        pinned: dict[int, str] = {}
        # The enrollment's ledger rows came with the row as JSON (one statement, not two), in
        # the order they were claimed: the thread's References follow it.
        for _, message_id, subject, status, step_id, variant in sorted(json_value(ledger)):
            if status in ("sent", "uncertain"):
                thread.append((message_id, subject))
            if variant is not None:
                pinned[step_id] = variant
        kinds = set((signal_kinds or "").split(","))
        return RunContext(
            enrollment=enrollment,
            sequence=sequence,
            steps=steps,
            contact=contact,
            thread=thread,
            signals=Signals(EventKind.REPLIED in kinds, EventKind.OPENED in kinds, EventKind.CLICKED in kinds),
            suppressed=suppressed,
            variants=pinned,
        )

    @send_operation
    def set_plan(
        self, db: Conn, enrollment_id: int, cursor_ord: int, anchor_at: float, due_at: float, now: float
    ) -> bool:
        """Move an active enrollment's cursor and due time; held (not runnable) unless its
        sequence is active. False when the enrollment is no longer active."""
        cursor = db.execute(
            f"UPDATE enrollments SET cursor_ord = ?, anchor_at = ?, due_at = ?, updated_at = ?, {_RUNNABLE_IF_ACTIVE}"
            " WHERE id = ? AND status = 'active'",
            (cursor_ord, anchor_at, due_at, now, due_at, enrollment_id),
        )
        return cursor.rowcount > 0

    @send_operation
    def finish(
        self, db: Conn, enrollment_id: int, status: EnrollmentStatus, reason: str | None, now: float
    ) -> int | None:
        """End an active enrollment with the event of its end status; returns a sequence id
        this auto-completed."""
        return end_now(db, enrollment_id, status, reason, now)

    @claim_operation
    @batched_by(multi_row.claim_sends)
    def claim_send(
        self, db: Conn, enrollment_id: int, step_id: int, mailbox_id: str, message_id: str,
        subject: str, now: float, variant: str | None = None,
    ) -> Claim | Refused:
        """Commit (durably) the ledger row before the transport is called. Refused.IN_LEDGER: the
        step was already sent, is in flight or is uncertain (never a second send);
        Refused.NOT_RUNNABLE: since its context was read the enrollment ended (a reply, a bounce,
        an unsubscribe or a cancel committed meanwhile) or its sequence was paused: nothing of it
        may go out now. The row pins ``variant``; a retry keeps the variant of the first attempt
        (``Claim.variant``)."""
        # The first attempt, by far the most common, is one statement: the insert, made only
        # while the enrollment and its sequence are active and skipped when the step already has
        # its row (read then, to tell a retry from a refusal).
        cursor = db.execute(
            "INSERT INTO outbox (enrollment_id, step_id, mailbox_id, message_id, subject, status,"
            " attempts, created_at, attempted_at, variant) SELECT ?,?,?,?,?, 'sending', 1, ?, ?, ?"
            f" WHERE {_RUNNABLE}"
            " ON CONFLICT (enrollment_id, step_id) DO NOTHING",
            (enrollment_id, step_id, mailbox_id, message_id, subject, now, now, variant, enrollment_id),
        )
        if cursor.rowcount == 1:
            claim = Claim(cursor.lastrowid or 0, message_id, 1, now, variant)
        else:
            existing = fetch_one(
                db, "SELECT * FROM outbox WHERE enrollment_id = ? AND step_id = ?", (enrollment_id, step_id)
            )
            if existing is not None and existing["status"] != "retry":
                return Refused.IN_LEDGER
            if existing is None:
                return Refused.NOT_RUNNABLE  # the insert found the enrollment or its sequence not active
            # A retry keeps its Message-ID: the recipient's server sees one message. It takes the
            # mailbox that claims it now (the enrollment may have moved since), and a row whose
            # claims were all released untried makes its first attempt now (``release_claim``).
            retried = db.execute(
                "UPDATE outbox SET status = 'sending', attempts = attempts + 1, attempted_at = ?, subject = ?,"
                " mailbox_id = ?, created_at = CASE WHEN attempts = 0 THEN ? ELSE created_at END"
                f" WHERE id = ? AND {_RUNNABLE}",
                (now, subject, mailbox_id, now, existing["id"], enrollment_id),
            )
            if retried.rowcount == 0:
                return Refused.NOT_RUNNABLE
            claim = Claim(existing["id"], existing["message_id"], existing["attempts"] + 1,
                          existing["created_at"] if existing["attempts"] else now, existing["variant"])
        db.execute("INSERT INTO send_log (mailbox_id, at, first_email) VALUES (?, ?,"
                   " (SELECT sent_count = 0 FROM enrollments WHERE id = ?))", (mailbox_id, now, enrollment_id))
        return claim

    @staticmethod
    def _resolve_row(db: Conn, outbox_id: int, assignments: str, values: tuple[object, ...],
                     content: tuple[str, str, str] | None) -> None:
        """Set a claimed row's result columns and, in the same statement, what was handed to the
        transport (its subject, HTML and text): one write of the row per send, not two."""
        if content is not None:
            assignments += ", subject = ?, body = ?, text_body = ?"
            values = (*values, *content)
        db.execute(f"UPDATE outbox SET {assignments} WHERE id = ?", (*values, outbox_id))

    @thread_operation
    def variant_tallies(self, db: Conn, step_id: int) -> dict[str, Tally]:
        """Per variant of a step: messages sent, and how many were opened, clicked, replied to
        (unflagged events only, as the funnels count them)."""
        rows = fetch_all(
            db,
            "SELECT o.variant, COUNT(*),"
            " SUM(EXISTS (SELECT 1 FROM events v WHERE v.outbox_id = o.id AND v.kind = 'opened' AND v.flagged = 0)),"
            " SUM(EXISTS (SELECT 1 FROM events v WHERE v.outbox_id = o.id AND v.kind = 'clicked' AND v.flagged = 0)),"
            " SUM(EXISTS (SELECT 1 FROM events v WHERE v.outbox_id = o.id AND v.kind = 'replied' AND v.flagged = 0))"
            " FROM outbox o WHERE o.step_id = ? AND o.variant IS NOT NULL AND o.status = 'sent' GROUP BY o.variant",
            (step_id,))
        return {r[0]: Tally(int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}

    @send_operation
    @batched_by(multi_row.record_sents)
    def record_sent(
        self, db: Conn, claim: Claim, enrollment_id: int, step_id: int, cursor_ord: int,
        anchor_at: float, due_at: float | None, now: float,
    ) -> int | None:
        """The transport accepted: resolve the row, advance the contact (due_at None = finished).
        Returns the id of a sequence this auto-completed."""
        self._resolve_row(db, claim.outbox_id, "status = 'sent', resolved_at = ?, detail = NULL", (now,),
                          claim.content)
        return self._advance(db, enrollment_id, cursor_ord, anchor_at, due_at, now,
                             EventKind.SENT, NoData(), step_id, claim.outbox_id)

    def _advance(
        self, db: Conn, enrollment_id: int, cursor_ord: int, anchor_at: float, due_at: float | None, now: float,
        kind: EventKind, payload: NoData | Detail, step_id: int, outbox_id: int,
    ) -> int | None:
        """Move the contact past a step that went out (or may have), with the event that says
        so (``kind``); due_at None ends the enrollment completed. The update returns the
        enrollment's place for the events, so the send path reads the row once, not per event."""
        advance, advanced = "sent_count = sent_count + 1, cursor_ord = ?, anchor_at = ?, ", (cursor_ord, anchor_at)
        if due_at is None:  # the last step: the same write ends the enrollment completed
            place = close_enrollment(db, enrollment_id, EnrollmentStatus.COMPLETED, None, now,
                                     also=advance, also_values=advanced)
        else:
            place = update_returning_place(
                db, f"UPDATE enrollments SET {advance}due_at = ?, last_event_at = ?, updated_at = ?,"
                f" {_RUNNABLE_IF_ACTIVE} WHERE id = ? AND status = 'active'",
                (*advanced, due_at, now, now, due_at, enrollment_id))
        # place None: ended meanwhile (a reply, a cancel); the event still says what went out.
        enrollment_event(db, kind, now, enrollment_id, payload, step_id=step_id, outbox_id=outbox_id, place=place)
        if place is not None and due_at is None:
            return announce_end(db, enrollment_id, EnrollmentStatus.COMPLETED, None, now, place)
        return None

    @staticmethod
    def _due_again(db: Conn, enrollment_id: int, due_at: float, now: float) -> None:
        db.execute(
            f"UPDATE enrollments SET due_at = ?, updated_at = ?, {_RUNNABLE_IF_ACTIVE} WHERE id = ? AND status = 'active'",
            (due_at, now, due_at, enrollment_id),
        )

    @send_operation
    def record_retry(
        self, db: Conn, claim: Claim, enrollment_id: int, step_id: int, due_at: float, detail: str, now: float
    ) -> None:
        """A transient failure: the row waits as 'retry' (same Message-ID), the contact is due again."""
        self._resolve_row(db, claim.outbox_id, "status = 'retry', detail = ?", (detail,), claim.content)
        self._due_again(db, enrollment_id, due_at, now)
        enrollment_event(db, EventKind.RETRY, now, enrollment_id, Detail(detail=detail, attempt=claim.attempts),
                         step_id=step_id, outbox_id=claim.outbox_id)

    def _end_after_claim(
        self, db: Conn, claim: Claim, enrollment_id: int, step_id: int, kind: EventKind,
        payload: Bounce | Detail, status: EnrollmentStatus, reason: str, now: float,
    ) -> int | None:
        """Resolve a claimed row as failed and end its enrollment: one event (``kind``) says why;
        the enrollment ends without a second one."""
        bounce_class = payload.bounce_class if isinstance(payload, Bounce) else None
        self._resolve_row(db, claim.outbox_id, "status = 'failed', resolved_at = ?, detail = ?, bounce_class = ?",
                          (now, reason, bounce_class), claim.content)
        place = close_enrollment(db, enrollment_id, status, reason, now)
        # place None: ended meanwhile; the event still says what became of the send.
        enrollment_event(db, kind, now, enrollment_id, payload, step_id=step_id, outbox_id=claim.outbox_id,
                         place=place)
        return autocomplete(db, place[0], now) if place is not None else None

    @send_operation
    def record_bounced(
        self, db: Conn, claim: Claim, enrollment_id: int, step_id: int, bounce: Bounced, email: str, now: float,
    ) -> int | None:
        """Refused for good (or retries exhausted): the contact ends bounced; a bounce that
        suppresses puts the address on the suppression list. Returns a sequence auto-completed."""
        if bounce.suppresses:
            db.execute(
                "INSERT INTO suppressions (email, reason, at, detail) VALUES (?, 'bounced', ?, ?)"
                " ON CONFLICT (email) DO UPDATE SET reason = excluded.reason, at = excluded.at,"
                " detail = excluded.detail",
                (email, now, bounce.detail),
            )
        payload = Bounce(bounce.bounce_class, bounce.detail, bounce.status)
        return self._end_after_claim(db, claim, enrollment_id, step_id, EventKind.BOUNCED, payload,
                                     EnrollmentStatus.BOUNCED, bounce.detail, now)

    @send_operation
    def record_unbuildable(
        self, db: Conn, claim: Claim, enrollment_id: int, step_id: int, reason: str, now: float,
    ) -> int | None:
        """The message could not be built after its claim: the row is resolved failed with the
        reason and the enrollment ends failed, never left 'sending' nor silently skipped. It
        never reached the transport: the claim's attempt and its place under the caps are undone."""
        _undo_attempt(db, claim.outbox_id)
        return self._end_after_claim(db, claim, enrollment_id, step_id, EventKind.FAILED, Detail(detail=reason),
                                     EnrollmentStatus.FAILED, reason, now)

    @send_operation
    def record_uncertain(
        self, db: Conn, outbox_id: int, enrollment_id: int, step_id: int, cursor_ord: int,
        anchor_at: float, due_at: float | None, detail: str, now: float,
        content: tuple[str, str, str] | None = None,
    ) -> int | None:
        """The send may or may not have happened: never resent by default; the contact moves on."""
        self._resolve_row(db, outbox_id, "status = 'uncertain', resolved_at = ?, detail = ?", (now, detail), content)
        return self._advance(db, enrollment_id, cursor_ord, anchor_at, due_at, now,
                             EventKind.UNCERTAIN, Detail(detail=detail), step_id, outbox_id)

    @send_operation
    def release_claim(self, db: Conn, outbox_id: int, enrollment_id: int, due_at: float, now: float,
                      detail: str, *, untried: bool = False) -> None:
        """The message surely did not go (found missing after a crash, or refused before
        delivery): the step may be sent again, under the same Message-ID. ``untried``: it never
        reached the transport (withdrawn, or claimed before a crash and never handed over), so
        the claim's attempt and its send_log row (its place under the caps) are undone."""
        if untried:
            _undo_attempt(db, outbox_id)
        db.execute("UPDATE outbox SET status = 'retry', detail = ? WHERE id = ?", (detail, outbox_id))
        self._due_again(db, enrollment_id, due_at, now)

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
    def send_history(self, db: Conn, mailbox_id: str, since: float) -> list[float]:
        rows = fetch_all(
            db, "SELECT at FROM send_log WHERE mailbox_id = ? AND at >= ? ORDER BY at", (mailbox_id, since)
        )
        return [r["at"] for r in rows]

    @thread_operation
    def first_email_history(self, db: Conn, mailbox_id: str, since: float) -> list[float]:
        """When the mailbox sent first emails to new contacts since ``since`` (the new-contact cap)."""
        rows = fetch_all(db, "SELECT at FROM send_log WHERE mailbox_id = ? AND at >= ? AND first_email = 1 ORDER BY at",
                         (mailbox_id, since))
        return [r["at"] for r in rows]

    @thread_operation
    def prune_send_log(self, db: Conn, before: float) -> None:
        db.execute("DELETE FROM send_log WHERE at < ?", (before,))

    @thread_operation
    def mailbox_paused(self, db: Conn, mailbox_id: str) -> str | None:
        row = fetch_one(db, "SELECT paused_reason FROM mailbox_state WHERE mailbox_id = ?", (mailbox_id,))
        return row["paused_reason"] if row else None

    @thread_operation
    def mailbox_resumed_at(self, db: Conn, mailbox_id: str) -> float | None:
        """When an operator last resumed the mailbox after a pause, or None."""
        row = fetch_one(db, "SELECT resumed_at FROM mailbox_state WHERE mailbox_id = ?", (mailbox_id,))
        return row["resumed_at"] if row else None

    @thread_operation
    def set_mailbox_paused(self, db: Conn, mailbox_id: str, reason: str | None, now: float) -> None:
        """Pause (with the reason) or resume a mailbox; an actual change writes mailbox_paused
        or mailbox_resumed."""
        row = fetch_one(db, "SELECT paused_reason FROM mailbox_state WHERE mailbox_id = ?", (mailbox_id,))
        before = row["paused_reason"] if row else None
        resumed = reason is None and before is not None
        db.execute(
            "INSERT INTO mailbox_state (mailbox_id, paused_reason, paused_at, resumed_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (mailbox_id) DO UPDATE SET paused_reason = excluded.paused_reason,"
            " paused_at = excluded.paused_at, resumed_at = COALESCE(excluded.resumed_at, resumed_at)",
            (mailbox_id, reason, now if reason else None, now if resumed else None),
        )
        if reason is not None and reason != before:
            write_event(db, Event(EventKind.MAILBOX_PAUSED, now, Reason(reason), mailbox_id=mailbox_id))
        elif reason is None and before is not None:
            write_event(db, Event(EventKind.MAILBOX_RESUMED, now, NoData(), mailbox_id=mailbox_id))

    @thread_operation
    def sequence_hard_bounces(self, db: Conn, sequence_id: int, last_sends: int) -> tuple[int, int]:
        """(hard bounces, sends) among the sequence's last ``last_sends`` sends."""
        row = fetch_one(
            db,
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN bounce_class = 'hard' THEN 1 ELSE 0 END), 0) FROM"
            " (SELECT o.bounce_class FROM outbox o JOIN enrollments e ON e.id = o.enrollment_id"
            f"  WHERE e.sequence_id = ? AND {_WENT_OUT} ORDER BY o.id DESC LIMIT ?) last",
            (sequence_id, last_sends))
        assert row is not None
        return int(row[1]), int(row[0])

    @thread_operation
    def mailbox_hard_bounces(self, db: Conn, mailbox_id: str, since: float) -> tuple[int, int]:
        """(hard bounces, sends) among the mailbox's sends attempted at or after ``since``."""
        row = fetch_one(
            db,
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN bounce_class = 'hard' THEN 1 ELSE 0 END), 0) FROM outbox"
            f" WHERE mailbox_id = ? AND attempted_at >= ? AND {_WENT_OUT.replace('o.', '')}",
            (mailbox_id, since))
        assert row is not None
        return int(row[1]), int(row[0])

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


def _undo_attempt(db: Conn, outbox_id: int) -> None:
    """The claim of ``outbox_id`` never reached the transport: take back its attempt and the
    send_log row it wrote (its place under the caps). That row: same mailbox, same instant, a
    first email or not as its enrollment still is (nothing of it was sent since). One row:
    another claim of the mailbox at the same instant keeps its own."""
    db.execute("DELETE FROM send_log WHERE rowid = (SELECT s.rowid FROM send_log s JOIN outbox o ON o.id = ?"
               " JOIN enrollments e ON e.id = o.enrollment_id WHERE s.mailbox_id = o.mailbox_id"
               " AND s.at = o.attempted_at AND s.first_email = (e.sent_count = 0) LIMIT 1)", (outbox_id,))
    db.execute("UPDATE outbox SET attempts = MAX(attempts - 1, 0) WHERE id = ?", (outbox_id,))
