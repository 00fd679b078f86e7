"""Send-path operations: due work, run context, the outbox ledger, endings, mailbox state; the
PostgreSQL twin of ``dripd.store.sqlite.runs``.

Every ledger write (the claim, each result, the resolution of a row a crash left) first checks
this node's lease on the row's mailbox in the same transaction (``PgConnection.check_fence``),
when the store was opened with a fence; the unique (enrollment, step) row still refuses a second
send whoever asks.
"""

from __future__ import annotations

from dripd.cadence import Signals
from dripd.events import Bounce, Detail, Event, EventKind, NoData, Reason
from dripd.model import Contact, EnrollmentStatus
from dripd.policy import Bounced
from dripd.store.api import Claim, DueRow, LeaseFence, OutboxRow, Refused, RunContext
from dripd.store.rows import enrollment_from_row, json_value
from dripd.store.postgres.connection import operation
from dripd.store.postgres.sql import Conn, fetch_all, fetch_one, run
from dripd.store.postgres.fencing import check_fence
from dripd.store.postgres.sequences import sequence_and_steps
from dripd.store.postgres.journal import autocomplete, close_enrollment, end_now, enrollment_event, write_event
from dripd.variants import Tally

_SIGNAL_KINDS = (EventKind.REPLIED.value, EventKind.OPENED.value, EventKind.CLICKED.value)
# A ledger row that counts as a send for the bounce guards: handed to the transport, whatever
# came of it. A failed row without a bounce class was never handed over (it could not be built).
_WENT_OUT = "(o.status IN ('sent', 'uncertain') OR (o.status = 'failed' AND o.bounce_class IS NOT NULL))"
_RUNNABLE_IF_ACTIVE = ("next_run_at = CASE WHEN (SELECT status FROM sequences WHERE id = sequence_id) = 'active'"
                       " THEN %s::float8 ELSE NULL END")


class RunOps:
    """Mixin of send-path operations (``PgConnection`` runs them)."""

    fence: LeaseFence | None  # PgConnection's: what this node holds, or None on one node

    def _fenced(self, db: Conn, outbox_id: int) -> None:
        """The lease check for a write to an existing ledger row: its mailbox's lease."""
        if self.fence is None:
            return  # one node: no lease to check, and no query spent on finding the mailbox
        row = fetch_one(db, "SELECT mailbox_id FROM outbox WHERE id = %s", (outbox_id,))
        if row is not None:
            check_fence(db, self.fence, row[0])

    @operation
    def due_for_mailbox(
        self, db: Conn, mailbox_id: str, after: tuple[float, int], until: float, limit: int
    ) -> list[DueRow]:
        """Runnable enrollments of one mailbox after the keyset ``after``, due by ``until``."""
        rows = fetch_all(
            db,
            "SELECT id, next_run_at, sent_count FROM enrollments"
            " WHERE mailbox_id = %s AND next_run_at IS NOT NULL AND (next_run_at, id) > (%s, %s)"
            " AND next_run_at <= %s ORDER BY next_run_at, id LIMIT %s",
            (mailbox_id, after[0], after[1], until, limit),
        )
        return [DueRow(r["id"], r["next_run_at"], r["sent_count"] > 0) for r in rows]

    @operation
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
            " (SELECT string_agg(DISTINCT kind, ',') FROM events WHERE enrollment_id = e.id AND flagged = 0"
            "  AND kind IN (%s, %s, %s)) AS signal_kinds"
            " FROM enrollments e JOIN contacts c ON c.id = e.contact_id JOIN sequences s ON s.id = e.sequence_id"
            " WHERE e.id = %s",
            (*_SIGNAL_KINDS, enrollment_id),
        )
        if row is None:
            return None
        enrollment = enrollment_from_row(row)
        sequence, steps = sequence_and_steps(db, enrollment.sequence_id)
        contact = Contact(
            id=enrollment.contact_id, email=row["contact_email"], first_name=row["contact_first_name"],
            last_name=row["contact_last_name"], company=row["contact_company"],
            fields=json_value(row["contact_fields"]),
        )
        thread: list[tuple[str, str]] = []
        pinned: dict[int, str] = {}
        for r in db.execute("SELECT message_id, subject, status, step_id, variant FROM outbox WHERE enrollment_id = %s"
                            " ORDER BY id", (enrollment_id,)):
            if r[2] in ("sent", "uncertain"):
                thread.append((r[0], r[1]))
            if r[4] is not None:
                pinned[r[3]] = r[4]
        kinds = set((row["signal_kinds"] or "").split(","))
        return RunContext(
            enrollment=enrollment,
            sequence=sequence,
            steps=steps,
            contact=contact,
            thread=thread,
            signals=Signals(EventKind.REPLIED in kinds, EventKind.OPENED in kinds, EventKind.CLICKED in kinds),
            suppressed=row["suppressed"],
            variants=pinned,
        )

    @operation
    def set_plan(
        self, db: Conn, enrollment_id: int, cursor_ord: int, anchor_at: float, due_at: float, now: float
    ) -> bool:
        """Move an active enrollment's cursor and due time; held (not runnable) unless its
        sequence is active. False when the enrollment is no longer active."""
        cursor = db.execute(
            f"UPDATE enrollments SET cursor_ord = %s, anchor_at = %s, due_at = %s, updated_at = %s, {_RUNNABLE_IF_ACTIVE}"
            " WHERE id = %s AND status = 'active'",
            (cursor_ord, anchor_at, due_at, now, due_at, enrollment_id),
        )
        return cursor.rowcount > 0

    @operation
    def finish(
        self, db: Conn, enrollment_id: int, status: EnrollmentStatus, reason: str | None, now: float
    ) -> int | None:
        """End an active enrollment with the event of its end status; returns a sequence id
        this auto-completed."""
        return end_now(db, enrollment_id, status, reason, now)

    @operation
    def claim_send(
        self, db: Conn, enrollment_id: int, step_id: int, mailbox_id: str, message_id: str,
        subject: str, now: float, variant: str | None = None,
    ) -> Claim | Refused:
        """Commit (durably: PostgreSQL's COMMIT with synchronous_commit on returns once the WAL
        is flushed) the ledger row before the transport is called. Refused.IN_LEDGER: the step
        was already sent, is in flight or is uncertain (never a second send);
        Refused.NOT_RUNNABLE: since its context was read the enrollment ended or its sequence was
        paused. The row pins ``variant``; a retry keeps the variant of the first attempt
        (``Claim.variant``)."""
        check_fence(db, self.fence, mailbox_id)
        # FOR UPDATE: a concurrent claim of a retry row waits for this one and then sees 'sending'.
        existing = fetch_one(
            db, "SELECT * FROM outbox WHERE enrollment_id = %s AND step_id = %s FOR UPDATE", (enrollment_id, step_id)
        )
        if existing is not None and existing["status"] != "retry":
            return Refused.IN_LEDGER
        # FOR SHARE OF e: an ending (a reply seen by any node) updates the enrollment's row, so it
        # either committed before (and the claim is refused) or waits for this claim's commit (the
        # send was claimed first; on this node the engine's watch of endings still withdraws it
        # while it waits for the wire, an ending committed by another node is not heard there).
        # Taken after the outbox row, in the order recording a result takes them (the row, then
        # the enrollment): the other order deadlocks a claim with a record of the same step. The
        # sequence row is only read: every claim of the sequence share-locking it would starve
        # an edit, as new share lockers pass a waiting updater (dripd/store/postgres/fencing.py).
        if fetch_one(db, "SELECT 1 FROM enrollments e JOIN sequences s ON s.id = e.sequence_id WHERE e.id = %s"
                         " AND e.status = 'active' AND s.status = 'active' FOR SHARE OF e", (enrollment_id,)) is None:
            return Refused.NOT_RUNNABLE
        if existing is None:
            # ON CONFLICT: a concurrent first claim (another node, a lease handover) committed
            # the row first; the unique (enrollment, step) refuses this one.
            inserted = db.execute(
                "INSERT INTO outbox (enrollment_id, step_id, mailbox_id, message_id, subject, status,"
                " attempts, created_at, attempted_at, variant) VALUES (%s,%s,%s,%s,%s, 'sending', 1, %s, %s, %s)"
                " ON CONFLICT DO NOTHING RETURNING id",
                (enrollment_id, step_id, mailbox_id, message_id, subject, now, now, variant),
            ).fetchone()
            if inserted is None:
                return Refused.IN_LEDGER
            claim = Claim(int(inserted[0]), message_id, 1, now, variant)
        else:
            # A retry keeps its Message-ID: the recipient's server sees one message. It takes the
            # mailbox that claims it now, and a row whose claims were all released untried makes
            # its first attempt now (the SQLite store's ``claim_send`` says why).
            db.execute(
                "UPDATE outbox SET status = 'sending', attempts = attempts + 1, attempted_at = %s, subject = %s,"
                " mailbox_id = %s, created_at = CASE WHEN attempts = 0 THEN %s ELSE created_at END WHERE id = %s",
                (now, subject, mailbox_id, now, existing["id"]),
            )
            claim = Claim(existing["id"], existing["message_id"], existing["attempts"] + 1,
                          existing["created_at"] if existing["attempts"] else now, existing["variant"])
        db.execute("INSERT INTO send_log (mailbox_id, at, first_email) VALUES (%s, %s,"
                   " (SELECT (sent_count = 0)::int FROM enrollments WHERE id = %s))", (mailbox_id, now, enrollment_id))
        return claim

    @staticmethod
    def _write_content(db: Conn, claim: Claim) -> None:
        """What was handed to the transport for a claimed row: its subject, HTML and text (in the
        same operation as the attempt's result, not one more round trip per send)."""
        if claim.content is not None:
            db.execute("UPDATE outbox SET subject = %s, body = %s, text_body = %s WHERE id = %s",
                       (*claim.content, claim.outbox_id))

    @operation
    def variant_tallies(self, db: Conn, step_id: int) -> dict[str, Tally]:
        """Per variant of a step: messages sent, and how many were opened, clicked, replied to
        (unflagged events only, as the funnels count them)."""
        rows = fetch_all(
            db,
            "SELECT o.variant, COUNT(*),"
            " SUM((EXISTS (SELECT 1 FROM events v WHERE v.outbox_id = o.id AND v.kind = 'opened' AND v.flagged = 0))::int),"
            " SUM((EXISTS (SELECT 1 FROM events v WHERE v.outbox_id = o.id AND v.kind = 'clicked' AND v.flagged = 0))::int),"
            " SUM((EXISTS (SELECT 1 FROM events v WHERE v.outbox_id = o.id AND v.kind = 'replied' AND v.flagged = 0))::int)"
            " FROM outbox o WHERE o.step_id = %s AND o.variant IS NOT NULL AND o.status = 'sent' GROUP BY o.variant",
            (step_id,))
        return {r[0]: Tally(int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}

    @operation
    def record_sent(
        self, db: Conn, claim: Claim, enrollment_id: int, step_id: int, cursor_ord: int,
        anchor_at: float, due_at: float | None, now: float,
    ) -> int | None:
        """The transport accepted: resolve the row, advance the contact (due_at None = finished).
        Returns the id of a sequence this auto-completed."""
        self._fenced(db, claim.outbox_id)
        db.execute(
            "UPDATE outbox SET status = 'sent', resolved_at = %s, detail = NULL WHERE id = %s",
            (now, claim.outbox_id),
        )
        self._write_content(db, claim)
        enrollment_event(db, EventKind.SENT, now, enrollment_id, NoData(), step_id=step_id, outbox_id=claim.outbox_id)
        return self._advance(db, enrollment_id, cursor_ord, anchor_at, due_at, now)

    def _advance(
        self, db: Conn, enrollment_id: int, cursor_ord: int, anchor_at: float, due_at: float | None, now: float
    ) -> int | None:
        db.execute(
            "UPDATE enrollments SET sent_count = sent_count + 1, cursor_ord = %s, anchor_at = %s,"
            f" due_at = %s, last_event_at = %s, updated_at = %s, {_RUNNABLE_IF_ACTIVE}"
            " WHERE id = %s AND status = 'active'",
            (cursor_ord, anchor_at, due_at, now, now, due_at, enrollment_id),
        )
        if due_at is None:
            return end_now(db, enrollment_id, EnrollmentStatus.COMPLETED, None, now)
        return None

    @staticmethod
    def _due_again(db: Conn, enrollment_id: int, due_at: float, now: float) -> None:
        db.execute(
            f"UPDATE enrollments SET due_at = %s, updated_at = %s, {_RUNNABLE_IF_ACTIVE} WHERE id = %s AND status = 'active'",
            (due_at, now, due_at, enrollment_id),
        )

    @operation
    def record_retry(
        self, db: Conn, claim: Claim, enrollment_id: int, step_id: int, due_at: float, detail: str, now: float
    ) -> None:
        """A transient failure: the row waits as 'retry' (same Message-ID), the contact is due again."""
        self._fenced(db, claim.outbox_id)
        db.execute("UPDATE outbox SET status = 'retry', detail = %s WHERE id = %s", (detail, claim.outbox_id))
        self._write_content(db, claim)
        self._due_again(db, enrollment_id, due_at, now)
        enrollment_event(db, EventKind.RETRY, now, enrollment_id, Detail(detail=detail, attempt=claim.attempts),
                         step_id=step_id, outbox_id=claim.outbox_id)

    def _end_after_claim(
        self, db: Conn, claim: Claim, enrollment_id: int, step_id: int, kind: EventKind,
        payload: Bounce | Detail, status: EnrollmentStatus, reason: str, now: float,
    ) -> int | None:
        """Resolve a claimed row as failed and end its enrollment: one event (``kind``) says why;
        the enrollment ends without a second one."""
        self._fenced(db, claim.outbox_id)
        bounce_class = payload.bounce_class if isinstance(payload, Bounce) else None
        db.execute("UPDATE outbox SET status = 'failed', resolved_at = %s, detail = %s, bounce_class = %s WHERE id = %s",
                   (now, reason, bounce_class, claim.outbox_id))
        self._write_content(db, claim)
        event = enrollment_event(db, kind, now, enrollment_id, payload, step_id=step_id, outbox_id=claim.outbox_id)
        if not close_enrollment(db, enrollment_id, status, reason, now) or event is None:
            return None
        assert event.sequence_id is not None
        return autocomplete(db, event.sequence_id, now)

    @operation
    def record_bounced(
        self, db: Conn, claim: Claim, enrollment_id: int, step_id: int, bounce: Bounced, email: str, now: float,
    ) -> int | None:
        """Refused for good (or retries exhausted): the contact ends bounced; a bounce that
        suppresses puts the address on the suppression list. Returns a sequence auto-completed."""
        if bounce.suppresses:
            db.execute(
                "INSERT INTO suppressions (email, reason, at, detail) VALUES (%s, 'bounced', %s, %s)"
                " ON CONFLICT (email) DO UPDATE SET reason = excluded.reason, at = excluded.at,"
                " detail = excluded.detail",
                (email, now, bounce.detail),
            )
        payload = Bounce(bounce.bounce_class, bounce.detail, bounce.status)
        return self._end_after_claim(db, claim, enrollment_id, step_id, EventKind.BOUNCED, payload,
                                     EnrollmentStatus.BOUNCED, bounce.detail, now)

    @operation
    def record_unbuildable(
        self, db: Conn, claim: Claim, enrollment_id: int, step_id: int, reason: str, now: float,
    ) -> int | None:
        """The message could not be built after its claim: the row is resolved failed with the
        reason and the enrollment ends failed, never left 'sending' nor silently skipped. It
        never reached the transport: the claim's attempt and its place under the caps are undone."""
        completed = self._end_after_claim(db, claim, enrollment_id, step_id, EventKind.FAILED,
                                          Detail(detail=reason), EnrollmentStatus.FAILED, reason, now)
        _undo_attempt(db, claim.outbox_id)  # after the fence _end_after_claim checks
        return completed

    @operation
    def record_uncertain(
        self, db: Conn, outbox_id: int, enrollment_id: int, step_id: int, cursor_ord: int,
        anchor_at: float, due_at: float | None, detail: str, now: float,
        content: tuple[str, str, str] | None = None,
    ) -> int | None:
        """The send may or may not have happened: never resent by default; the contact moves on."""
        self._fenced(db, outbox_id)
        if content is not None:
            db.execute("UPDATE outbox SET subject = %s, body = %s, text_body = %s WHERE id = %s", (*content, outbox_id))
        db.execute(
            "UPDATE outbox SET status = 'uncertain', resolved_at = %s, detail = %s WHERE id = %s",
            (now, detail, outbox_id),
        )
        enrollment_event(db, EventKind.UNCERTAIN, now, enrollment_id, Detail(detail=detail),
                         step_id=step_id, outbox_id=outbox_id)
        return self._advance(db, enrollment_id, cursor_ord, anchor_at, due_at, now)

    @operation
    def release_claim(self, db: Conn, outbox_id: int, enrollment_id: int, due_at: float, now: float,
                      detail: str, *, untried: bool = False) -> None:
        """The message surely did not go (found missing after a crash, or refused before
        delivery): the step may be sent again, under the same Message-ID. ``untried``: it never
        reached the transport, so the claim's attempt and its send_log row are undone (the
        SQLite store's ``release_claim`` says which row)."""
        self._fenced(db, outbox_id)
        if untried:
            _undo_attempt(db, outbox_id)
        db.execute("UPDATE outbox SET status = 'retry', detail = %s WHERE id = %s", (detail, outbox_id))
        self._due_again(db, enrollment_id, due_at, now)

    @operation
    def resolve_outbox(self, db: Conn, outbox_id: int, status: str, detail: str, now: float) -> None:
        self._fenced(db, outbox_id)
        db.execute("UPDATE outbox SET status = %s, detail = %s, resolved_at = %s WHERE id = %s",
                   (status, detail, now, outbox_id))

    @operation
    def outbox_in_state(self, db: Conn, status: str) -> list[OutboxRow]:
        rows = fetch_all(db, "SELECT * FROM outbox WHERE status = %s ORDER BY id", (status,))
        return [
            OutboxRow(r["id"], r["enrollment_id"], r["step_id"], r["mailbox_id"], r["message_id"],
                      r["status"], r["attempted_at"])
            for r in rows
        ]

    @operation
    def send_history(self, db: Conn, mailbox_id: str, since: float) -> list[float]:
        rows = fetch_all(
            db, "SELECT at FROM send_log WHERE mailbox_id = %s AND at >= %s ORDER BY at", (mailbox_id, since)
        )
        return [r["at"] for r in rows]

    @operation
    def first_email_history(self, db: Conn, mailbox_id: str, since: float) -> list[float]:
        """When the mailbox sent first emails to new contacts since ``since`` (the new-contact cap)."""
        rows = fetch_all(db, "SELECT at FROM send_log WHERE mailbox_id = %s AND at >= %s AND first_email = 1 ORDER BY at",
                         (mailbox_id, since))
        return [r["at"] for r in rows]

    @operation
    def prune_send_log(self, db: Conn, before: float) -> None:
        db.execute("DELETE FROM send_log WHERE at < %s", (before,))

    @operation
    def mailbox_paused(self, db: Conn, mailbox_id: str) -> str | None:
        row = fetch_one(db, "SELECT paused_reason FROM mailbox_state WHERE mailbox_id = %s", (mailbox_id,))
        return row["paused_reason"] if row else None

    @operation
    def mailbox_resumed_at(self, db: Conn, mailbox_id: str) -> float | None:
        """When an operator last resumed the mailbox after a pause, or None."""
        row = fetch_one(db, "SELECT resumed_at FROM mailbox_state WHERE mailbox_id = %s", (mailbox_id,))
        return row["resumed_at"] if row else None

    @operation
    def set_mailbox_paused(self, db: Conn, mailbox_id: str, reason: str | None, now: float) -> None:
        """Pause (with the reason) or resume a mailbox; an actual change writes mailbox_paused
        or mailbox_resumed (once: the row is locked, so two nodes pausing it at once write one)."""
        db.execute("INSERT INTO mailbox_state (mailbox_id) VALUES (%s) ON CONFLICT DO NOTHING", (mailbox_id,))
        row = fetch_one(db, "SELECT paused_reason FROM mailbox_state WHERE mailbox_id = %s FOR UPDATE", (mailbox_id,))
        before = row["paused_reason"] if row else None
        resumed = reason is None and before is not None
        db.execute(
            "INSERT INTO mailbox_state (mailbox_id, paused_reason, paused_at, resumed_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (mailbox_id) DO UPDATE SET paused_reason = excluded.paused_reason,"
            " paused_at = excluded.paused_at, resumed_at = COALESCE(excluded.resumed_at, mailbox_state.resumed_at)",
            (mailbox_id, reason, now if reason else None, now if resumed else None),
        )
        if reason is not None and reason != before:
            write_event(db, Event(EventKind.MAILBOX_PAUSED, now, Reason(reason), mailbox_id=mailbox_id))
        elif reason is None and before is not None:
            write_event(db, Event(EventKind.MAILBOX_RESUMED, now, NoData(), mailbox_id=mailbox_id))

    @operation
    def sequence_hard_bounces(self, db: Conn, sequence_id: int, last_sends: int) -> tuple[int, int]:
        """(hard bounces, sends) among the sequence's last ``last_sends`` sends."""
        row = fetch_one(
            db,
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN bounce_class = 'hard' THEN 1 ELSE 0 END), 0) FROM"
            " (SELECT o.bounce_class FROM outbox o JOIN enrollments e ON e.id = o.enrollment_id"
            f"  WHERE e.sequence_id = %s AND {_WENT_OUT} ORDER BY o.id DESC LIMIT %s) AS recent",
            (sequence_id, last_sends))
        assert row is not None
        return int(row[1]), int(row[0])

    @operation
    def mailbox_hard_bounces(self, db: Conn, mailbox_id: str, since: float) -> tuple[int, int]:
        """(hard bounces, sends) among the mailbox's sends attempted at or after ``since``."""
        row = fetch_one(
            db,
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN bounce_class = 'hard' THEN 1 ELSE 0 END), 0) FROM outbox"
            f" WHERE mailbox_id = %s AND attempted_at >= %s AND {_WENT_OUT.replace('o.', '')}",
            (mailbox_id, since))
        assert row is not None
        return int(row[1]), int(row[0])

    @operation
    def plugin_state_get(self, db: Conn, key: str) -> str | None:
        row = fetch_one(db, "SELECT value FROM plugin_state WHERE key = %s", (key,))
        return row["value"] if row else None

    @operation
    def plugin_state_set(self, db: Conn, key: str, value: str) -> None:
        db.execute(
            "INSERT INTO plugin_state (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def _undo_attempt(db: Conn, outbox_id: int) -> None:
    """The claim of ``outbox_id`` never reached the transport: take back its attempt and the
    send_log row it wrote (the SQLite store's ``_undo_attempt`` says which row)."""
    db.execute(
        "DELETE FROM send_log WHERE ctid = (SELECT s.ctid FROM send_log s JOIN outbox o ON o.id = %s"
        " JOIN enrollments e ON e.id = o.enrollment_id WHERE s.mailbox_id = o.mailbox_id"
        " AND s.at = o.attempted_at AND s.first_email = (e.sent_count = 0)::int LIMIT 1)", (outbox_id,))
    db.execute("UPDATE outbox SET attempts = GREATEST(attempts - 1, 0) WHERE id = %s", (outbox_id,))
