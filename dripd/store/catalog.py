"""Store operations behind the control API: sequences, steps, contacts, lists, enrollments."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from dripd.errors import AlreadyEnrolled, Conflict, NotFound, ReadOnly
from dripd.model import (
    REENROLLABLE,
    Action,
    Contact,
    EnrollmentStatus,
    Sequence,
    SequenceSettings,
    SequenceStatus,
    Step,
    transition,
)
from dripd.steps import check_step_list
from dripd.store.rows import (
    contact_from_row,
    sequence_from_row,
    settings_to_json,
    step_data,
    step_from_row,
)
from dripd.store.runs import add_event, end_now
from dripd.store.sqlite import Conn, control_operation, fetch_all, fetch_one


@dataclass(frozen=True)
class ContactInput:
    email: str
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    fields: Mapping[str, str] | None = None


@dataclass(frozen=True)
class EnrollResult:
    enrolled: list[int]  # enrollment ids
    skipped: list[dict[str, Any]]  # {"contactId", "email", "reason"}


@dataclass(frozen=True)
class ContactProgress:
    contact_id: int
    enrollment_id: int
    email: str
    status: str
    cursor_ord: int
    next_run_at: float | None
    due_at: float | None
    last_event_at: float | None
    enrolled_at: float
    sent_count: int


def _sequence(db: Conn, sequence_id: int) -> Sequence:
    row = fetch_one(db, "SELECT * FROM sequences WHERE id = ?", (sequence_id,))
    if row is None:
        raise NotFound(f"no sequence with id {sequence_id}", details={"sequenceId": sequence_id})
    return sequence_from_row(row)


def _live_steps(db: Conn, sequence_id: int) -> list[Step]:
    rows = fetch_all(db, "SELECT * FROM steps WHERE sequence_id = ? AND deleted = 0 ORDER BY ord", (sequence_id,))
    return [step_from_row(r) for r in rows]


def _editable(sequence: Sequence) -> None:
    if sequence.status is SequenceStatus.COMPLETED:
        raise ReadOnly(f"sequence {sequence.id} is completed and read-only (clone it to re-run)",
                       details={"sequenceId": sequence.id})


def _upsert_contact(db: Conn, contact: ContactInput, now: float) -> int:
    row = fetch_one(db, "SELECT id FROM contacts WHERE email = ?", (contact.email,))
    if row is not None:
        return int(row["id"])
    cursor = db.execute(
        "INSERT INTO contacts (email, first_name, last_name, company, fields, created_at, updated_at)"
        " VALUES (?,?,?,?,?,?,?)",
        (contact.email, contact.first_name, contact.last_name, contact.company,
         json.dumps(dict(contact.fields or {})), now, now),
    )
    return cursor.lastrowid or 0


def _make_runnable(db: Conn, sequence_id: int, now: float) -> None:
    """Start or resume: held contacts become runnable where they were (never restart)."""
    db.execute(
        "UPDATE enrollments SET due_at = COALESCE(due_at, ?), anchor_at = COALESCE(anchor_at, ?),"
        " next_run_at = COALESCE(due_at, ?), updated_at = ? WHERE sequence_id = ? AND status = 'active'",
        (now, now, now, now, sequence_id),
    )


class CatalogOps:
    """Mixin of control-plane operations; ``self._db`` comes from SqliteConnection."""

    # -- sequences ---------------------------------------------------------------------------

    @control_operation
    def create_sequence(self, db: Conn, settings: SequenceSettings, steps: list[Step], now: float) -> Sequence:
        check_step_list(steps)
        cursor = db.execute(
            "INSERT INTO sequences (name, mailbox_id, status, settings, created_at, updated_at)"
            " VALUES (?, ?, 'draft', ?, ?, ?)",
            (settings.name, settings.mailbox_id, settings_to_json(settings), now, now),
        )
        sequence_id = cursor.lastrowid or 0
        for index, step in enumerate(steps):
            db.execute(
                "INSERT INTO steps (sequence_id, ord, type, data) VALUES (?, ?, ?, ?)",
                (sequence_id, index, step.type.value, step_data(step)),
            )
        return _sequence(db, sequence_id)

    @control_operation
    def get_sequence(self, db: Conn, sequence_id: int) -> tuple[Sequence, list[Step]]:
        return _sequence(db, sequence_id), _live_steps(db, sequence_id)

    @control_operation
    def find_sequence(self, db: Conn, name: str) -> Sequence | None:
        row = fetch_one(db, "SELECT * FROM sequences WHERE name = ? ORDER BY id DESC LIMIT 1", (name,))
        return sequence_from_row(row) if row else None

    @control_operation
    def list_sequences(self, db: Conn, name: str | None = None) -> list[Sequence]:
        if name is not None:
            rows = fetch_all(db, "SELECT * FROM sequences WHERE name = ? ORDER BY id", (name,))
        else:
            rows = fetch_all(db, "SELECT * FROM sequences ORDER BY id")
        return [sequence_from_row(r) for r in rows]

    @control_operation
    def rollups(self, db: Conn, sequence_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
        """Enrollment counts per status for each sequence."""
        rows = fetch_all(db, "SELECT sequence_id, status, COUNT(*) AS n FROM enrollments GROUP BY sequence_id, status")
        out: dict[int, dict[str, int]] = {}
        for r in rows:
            if sequence_ids is None or r["sequence_id"] in sequence_ids:
                out.setdefault(r["sequence_id"], {})[r["status"]] = r["n"]
        return out

    @control_operation
    def update_sequence(self, db: Conn, sequence_id: int, settings: SequenceSettings, now: float) -> Sequence:
        self.forget_sequence(sequence_id)
        _editable(_sequence(db, sequence_id))
        db.execute(
            "UPDATE sequences SET name = ?, mailbox_id = ?, settings = ?, updated_at = ? WHERE id = ?",
            (settings.name, settings.mailbox_id, settings_to_json(settings), now, sequence_id),
        )
        db.execute("UPDATE enrollments SET mailbox_id = ? WHERE sequence_id = ? AND status = 'active'",
                         (settings.mailbox_id, sequence_id))
        return _sequence(db, sequence_id)

    @control_operation
    def transition_sequence(
        self, db: Conn, sequence_id: int, action: Action, now: float, reason: str | None = None
    ) -> Sequence:
        """Apply start/pause/resume/complete with the seeds' rules (InvalidTransition otherwise)."""
        self.forget_sequence(sequence_id)
        sequence = _sequence(db, sequence_id)
        new_status = transition(sequence.status, action)
        if action is Action.START and not _live_steps(db, sequence_id):
            raise Conflict("a sequence needs at least one step to start", details={"sequenceId": sequence_id})
        db.execute(
            "UPDATE sequences SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?",
            (new_status.value, reason, now, sequence_id),
        )
        if new_status is SequenceStatus.ACTIVE:
            _make_runnable(db, sequence_id, now)
        elif new_status is SequenceStatus.PAUSED:
            # Held: due_at keeps each contact's place; only the scheduler's key goes.
            db.execute(
                "UPDATE enrollments SET next_run_at = NULL, updated_at = ? WHERE sequence_id = ? AND status = 'active'",
                (now, sequence_id),
            )
        elif new_status is SequenceStatus.COMPLETED:
            ids = fetch_all(db, "SELECT id FROM enrollments WHERE sequence_id = ? AND status = 'active'", (sequence_id,))
            for r in ids:
                end_now(db, r["id"], EnrollmentStatus.CANCELLED, "sequence completed", now)
            db.execute(
                "UPDATE sequences SET status = 'completed', status_reason = ?, updated_at = ? WHERE id = ?",
                (reason or "completed by request", now, sequence_id),
            )
        return _sequence(db, sequence_id)

    @control_operation
    def clone_sequence(self, db: Conn, sequence_id: int, name: str | None, now: float) -> Sequence:
        source = _sequence(db, sequence_id)
        settings = source.settings.replace(name=name or f"{source.settings.name} (copy)")
        cursor = db.execute(
            "INSERT INTO sequences (name, mailbox_id, status, settings, created_at, updated_at)"
            " VALUES (?, ?, 'draft', ?, ?, ?)",
            (settings.name, settings.mailbox_id, settings_to_json(settings), now, now),
        )
        new_id = cursor.lastrowid or 0
        for index, step in enumerate(_live_steps(db, sequence_id)):
            db.execute("INSERT INTO steps (sequence_id, ord, type, data) VALUES (?, ?, ?, ?)",
                             (new_id, index, step.type.value, step_data(step)))
        return _sequence(db, new_id)

    # -- steps (addressed by index, stored by stable id) -------------------------------------

    @control_operation
    def add_step(self, db: Conn, sequence_id: int, step: Step, now: float) -> list[Step]:
        self.forget_sequence(sequence_id)
        _editable(_sequence(db, sequence_id))
        steps = _live_steps(db, sequence_id)
        check_step_list(steps + [step])
        row = fetch_one(db, "SELECT COALESCE(MAX(ord), -1) + 1 AS next FROM steps WHERE sequence_id = ?", (sequence_id,))
        assert row is not None
        db.execute("INSERT INTO steps (sequence_id, ord, type, data) VALUES (?, ?, ?, ?)",
                         (sequence_id, row["next"], step.type.value, step_data(step)))
        db.execute("UPDATE sequences SET updated_at = ? WHERE id = ?", (now, sequence_id))
        return _live_steps(db, sequence_id)

    @control_operation
    def replace_step(self, db: Conn, sequence_id: int, index: int, step: Step, now: float) -> list[Step]:
        """Edit in place: same id and position; applies to future runs only."""
        self.forget_sequence(sequence_id)
        _editable(_sequence(db, sequence_id))
        steps = _live_steps(db, sequence_id)
        target = self._at(steps, sequence_id, index)
        check_step_list([step if s.id == target.id else s for s in steps])
        db.execute("UPDATE steps SET type = ?, data = ? WHERE id = ?", (step.type.value, step_data(step), target.id))
        db.execute("UPDATE sequences SET updated_at = ? WHERE id = ?", (now, sequence_id))
        return _live_steps(db, sequence_id)

    @control_operation
    def delete_step(self, db: Conn, sequence_id: int, index: int, now: float) -> list[Step]:
        """Soft delete, so sent messages keep their step; later steps re-index."""
        self.forget_sequence(sequence_id)
        _editable(_sequence(db, sequence_id))
        steps = _live_steps(db, sequence_id)
        target = self._at(steps, sequence_id, index)
        check_step_list([s for s in steps if s.id != target.id])
        db.execute("UPDATE steps SET deleted = 1 WHERE id = ?", (target.id,))
        db.execute("UPDATE sequences SET updated_at = ? WHERE id = ?", (now, sequence_id))
        return _live_steps(db, sequence_id)

    @staticmethod
    def _at(steps: list[Step], sequence_id: int, index: int) -> Step:
        if not 0 <= index < len(steps):
            raise NotFound(f"sequence {sequence_id} has no step {index} (it has {len(steps)})",
                           details={"sequenceId": sequence_id, "stepIndex": index})
        return steps[index]

    # -- contacts and lists ------------------------------------------------------------------

    @control_operation
    def create_contact(self, db: Conn, contact: ContactInput, now: float) -> Contact:
        if fetch_one(db, "SELECT 1 FROM contacts WHERE email = ?", (contact.email,)):
            raise Conflict(f"a contact with email {contact.email} exists", details={"email": contact.email})
        contact_id = _upsert_contact(db, contact, now)
        return self._contact(db, contact_id)

    @control_operation
    def get_contact(self, db: Conn, contact_id: int) -> Contact:
        return self._contact(db, contact_id)

    @staticmethod
    def _contact(db: Conn, contact_id: int) -> Contact:
        row = fetch_one(db, "SELECT * FROM contacts WHERE id = ?", (contact_id,))
        if row is None:
            raise NotFound(f"no contact with id {contact_id}", details={"contactId": contact_id})
        return contact_from_row(row)

    @control_operation
    def find_contact(self, db: Conn, email: str) -> Contact | None:
        row = fetch_one(db, "SELECT * FROM contacts WHERE email = ?", (email,))
        return contact_from_row(row) if row else None

    @control_operation
    def search_contacts(self, db: Conn, email_part: str, limit: int, offset: int) -> list[Contact]:
        rows = fetch_all(db, "SELECT * FROM contacts WHERE email LIKE ? ESCAPE '\\' ORDER BY id LIMIT ? OFFSET ?",
                              ("%" + email_part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%", limit, offset))
        return [contact_from_row(r) for r in rows]

    @control_operation
    def update_contact(self, db: Conn, contact_id: int, changes: Mapping[str, Any], now: float) -> Contact:
        current = self._contact(db, contact_id)
        fields = dict(current.fields)
        fields.update(changes.get("fields") or {})
        if changes.get("email") and changes["email"] != current.email:
            if fetch_one(db, "SELECT 1 FROM contacts WHERE email = ?", (changes["email"],)):
                raise Conflict(f"a contact with email {changes['email']} exists", details={"email": changes["email"]})
        db.execute(
            "UPDATE contacts SET email = ?, first_name = ?, last_name = ?, company = ?, fields = ?, updated_at = ? WHERE id = ?",
            (changes.get("email") or current.email,
             changes.get("first_name", current.first_name), changes.get("last_name", current.last_name),
             changes.get("company", current.company), json.dumps(fields), now, contact_id),
        )
        return self._contact(db, contact_id)

    @control_operation
    def delete_contact(self, db: Conn, contact_id: int, now: float) -> None:
        """Cancels the contact's active enrollments; its history stays (the row is kept as an anonymised stub if referenced)."""
        self._contact(db, contact_id)
        for r in fetch_all(db, "SELECT id FROM enrollments WHERE contact_id = ? AND status = 'active'", (contact_id,)):
            end_now(db, r["id"], EnrollmentStatus.CANCELLED, "contact deleted", now)
        db.execute("DELETE FROM list_members WHERE contact_id = ?", (contact_id,))
        used = fetch_one(db, "SELECT 1 FROM enrollments WHERE contact_id = ? LIMIT 1", (contact_id,))
        if used:
            db.execute(
                "UPDATE contacts SET email = 'deleted-' || id || '@invalid', first_name = '', last_name = '',"
                " company = '', fields = '{}', updated_at = ? WHERE id = ?", (now, contact_id))
        else:
            db.execute("DELETE FROM contacts WHERE id = ?", (contact_id,))

    @control_operation
    def create_list(self, db: Conn, name: str, now: float) -> int:
        if fetch_one(db, "SELECT 1 FROM lists WHERE name = ?", (name,)):
            raise Conflict(f"a list named {name!r} exists", details={"name": name})
        cursor = db.execute("INSERT INTO lists (name, created_at) VALUES (?, ?)", (name, now))
        return cursor.lastrowid or 0

    @control_operation
    def get_list(self, db: Conn, list_id: int) -> tuple[str, list[Contact]]:
        row = fetch_one(db, "SELECT name FROM lists WHERE id = ?", (list_id,))
        if row is None:
            raise NotFound(f"no list with id {list_id}", details={"listId": list_id})
        members = fetch_all(
            db, "SELECT c.* FROM contacts c JOIN list_members m ON m.contact_id = c.id WHERE m.list_id = ? ORDER BY c.id",
            (list_id,))
        return row["name"], [contact_from_row(r) for r in members]

    @control_operation
    def list_lists(self, db: Conn) -> list[tuple[int, str, int]]:
        rows = fetch_all(db, "SELECT l.id, l.name, COUNT(m.contact_id) AS n FROM lists l"
                                  " LEFT JOIN list_members m ON m.list_id = l.id GROUP BY l.id ORDER BY l.id")
        return [(r["id"], r["name"], r["n"]) for r in rows]

    @control_operation
    def change_list(self, db: Conn, list_id: int, add: Iterable[int], remove: Iterable[int]) -> None:
        if fetch_one(db, "SELECT 1 FROM lists WHERE id = ?", (list_id,)) is None:
            raise NotFound(f"no list with id {list_id}", details={"listId": list_id})
        for contact_id in add:
            self._contact(db, contact_id)
            db.execute("INSERT OR IGNORE INTO list_members (list_id, contact_id) VALUES (?, ?)", (list_id, contact_id))
        for contact_id in remove:
            db.execute("DELETE FROM list_members WHERE list_id = ? AND contact_id = ?", (list_id, contact_id))

    # -- enrollment --------------------------------------------------------------------------

    @control_operation
    def enroll(
        self, db: Conn, sequence_id: int, contacts: list[ContactInput | int],
        merge_fields: list[Mapping[str, str]] | None, now: float, *, strict: bool,
    ) -> EnrollResult:
        """Enroll contacts (ids, or new/existing addresses). With ``strict`` any refused contact
        aborts the whole call (nothing half-written); otherwise refused ones are reported."""
        sequence = _sequence(db, sequence_id)
        if sequence.status is SequenceStatus.COMPLETED:
            raise ReadOnly(f"sequence {sequence_id} is completed: no new enrollments",
                           details={"sequenceId": sequence_id})
        runnable = sequence.status is SequenceStatus.ACTIVE
        enrolled: list[int] = []
        skipped: list[dict[str, Any]] = []
        for index, item in enumerate(contacts):
            if isinstance(item, int):
                contact = self._contact(db, item)
            else:
                contact = self._contact(db, _upsert_contact(db, item, now))
            reason = self._refusal(db, sequence_id, contact)
            if reason is not None:
                if strict:
                    raise reason
                skipped.append({"contactId": contact.id, "email": contact.email, "reason": reason.code,
                                "message": reason.message})
                continue
            fields = dict(merge_fields[index]) if merge_fields else {}
            cursor = db.execute(
                "INSERT INTO enrollments (sequence_id, contact_id, mailbox_id, status, cursor_ord, anchor_at,"
                " due_at, next_run_at, merge_fields, enrolled_at, updated_at, last_event_at)"
                " VALUES (?, ?, ?, 'active', 0, ?, ?, ?, ?, ?, ?, ?)",
                (sequence_id, contact.id, sequence.settings.mailbox_id,
                 now if runnable else None, now if runnable else None, now if runnable else None,
                 json.dumps(fields), now, now, now),
            )
            enrolled.append(cursor.lastrowid or 0)
            add_event(db, "enrolled", now, cursor.lastrowid)
        return EnrollResult(enrolled, skipped)

    @staticmethod
    def _refusal(db: Conn, sequence_id: int, contact: Contact) -> Conflict | None:
        active = fetch_one(db, "SELECT id FROM enrollments WHERE sequence_id = ? AND contact_id = ? AND status = 'active'",
                                (sequence_id, contact.id))
        if active:
            return AlreadyEnrolled(f"{contact.email} is already active in sequence {sequence_id}",
                                   details={"contactId": contact.id, "email": contact.email})
        last = fetch_one(db, "SELECT status FROM enrollments WHERE sequence_id = ? AND contact_id = ? ORDER BY id DESC LIMIT 1",
                              (sequence_id, contact.id))
        if last and EnrollmentStatus(last["status"]) not in REENROLLABLE:
            return Conflict(f"{contact.email} {last['status']} in sequence {sequence_id} and cannot be enrolled again",
                            details={"contactId": contact.id, "email": contact.email, "status": last["status"]})
        suppressed = fetch_one(db, "SELECT reason FROM suppressions WHERE email = ?", (contact.email,))
        if suppressed:
            error = Conflict(f"{contact.email} is suppressed ({suppressed['reason']})",
                             details={"contactId": contact.id, "email": contact.email, "reason": suppressed["reason"]})
            error.code = "suppressed"
            return error
        return None

    @control_operation
    def list_ids(self, db: Conn, list_id: int) -> list[int]:
        if fetch_one(db, "SELECT 1 FROM lists WHERE id = ?", (list_id,)) is None:
            raise NotFound(f"no list with id {list_id}", details={"listId": list_id})
        return [r["contact_id"] for r in fetch_all(db, "SELECT contact_id FROM list_members WHERE list_id = ? ORDER BY contact_id", (list_id,))]

    @control_operation
    def cancel_enrollment(self, db: Conn, sequence_id: int, contact_id: int, now: float) -> int | None:
        row = fetch_one(db, "SELECT id FROM enrollments WHERE sequence_id = ? AND contact_id = ? AND status = 'active'",
                             (sequence_id, contact_id))
        if row is None:
            raise NotFound(f"contact {contact_id} has no active enrollment in sequence {sequence_id}",
                           details={"sequenceId": sequence_id, "contactId": contact_id})
        return end_now(db, row["id"], EnrollmentStatus.CANCELLED, "cancelled by request", now)

    @control_operation
    def sequence_contacts(self, db: Conn, sequence_id: int) -> list[ContactProgress]:
        _sequence(db, sequence_id)
        rows = fetch_all(
            db,
            "SELECT e.*, c.email FROM enrollments e JOIN contacts c ON c.id = e.contact_id"
            " WHERE e.sequence_id = ? ORDER BY e.id", (sequence_id,))
        return [
            ContactProgress(r["contact_id"], r["id"], r["email"], r["status"], r["cursor_ord"], r["next_run_at"],
                            r["due_at"], r["last_event_at"], r["enrolled_at"], r["sent_count"])
            for r in rows
        ]

    # -- additions for the control API ---------------------------------------------------------

    @control_operation
    def step_counts(self, db: Conn) -> dict[int, int]:
        rows = fetch_all(db, "SELECT sequence_id, COUNT(*) AS n FROM steps WHERE deleted = 0 GROUP BY sequence_id")
        return {r["sequence_id"]: r["n"] for r in rows}

    @control_operation
    def latest_enrollment(self, db: Conn, sequence_id: int, contact_id: int) -> int | None:
        """The contact's newest enrollment in the sequence (the one a preview threads into)."""
        row = fetch_one(db, "SELECT id FROM enrollments WHERE sequence_id = ? AND contact_id = ?"
                                 " ORDER BY id DESC LIMIT 1", (sequence_id, contact_id))
        return int(row["id"]) if row else None

    @control_operation
    def ensure_contacts(self, db: Conn, contacts: list[ContactInput], now: float) -> list[int]:
        """Ids of these addresses, creating the contacts that do not exist yet."""
        return [_upsert_contact(db, c, now) for c in contacts]

    @control_operation
    def find_list(self, db: Conn, name: str) -> int | None:
        row = fetch_one(db, "SELECT id FROM lists WHERE name = ?", (name,))
        return int(row["id"]) if row else None

    @control_operation
    def delete_list(self, db: Conn, list_id: int) -> None:
        """Drops the list and its memberships; the contacts stay."""
        if fetch_one(db, "SELECT 1 FROM lists WHERE id = ?", (list_id,)) is None:
            raise NotFound(f"no list with id {list_id}", details={"listId": list_id})
        db.execute("DELETE FROM list_members WHERE list_id = ?", (list_id,))
        db.execute("DELETE FROM lists WHERE id = ?", (list_id,))

    @control_operation
    def bulk_enroll(
        self, db: Conn, sequence_id: int, rows: list[tuple[int, ContactInput, Mapping[str, str]]],
        now: float, *, strict: bool,
    ) -> BulkResult:
        """Enroll many (position, contact, merge fields) rows in one transaction with set-based SQL.

        Same rules as ``enroll`` (one active enrollment, re-enrollment, suppression) but a few
        statements in all instead of several per row: a 100k-row CSV takes seconds, not minutes.
        With ``strict`` any refused row aborts the whole call; otherwise refused rows are reported
        by position. Addresses must be unique within ``rows`` (the caller reports duplicates).
        """
        sequence = _sequence(db, sequence_id)
        if sequence.status is SequenceStatus.COMPLETED:
            raise ReadOnly(f"sequence {sequence_id} is completed: no new enrollments",
                           details={"sequenceId": sequence_id})
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS bulk_rows (pos INTEGER PRIMARY KEY, email TEXT NOT NULL,"
            " first_name TEXT, last_name TEXT, company TEXT, fields TEXT, merge TEXT, refusal TEXT)")
        db.execute("DELETE FROM bulk_rows")
        db.executemany(
            "INSERT INTO bulk_rows (pos, email, first_name, last_name, company, fields, merge) VALUES (?,?,?,?,?,?,?)",
            [(pos, c.email, c.first_name, c.last_name, c.company, json.dumps(dict(c.fields or {})),
              json.dumps(dict(merge))) for pos, c, merge in rows])
        # Existing contacts keep their data, as in enroll().
        db.execute(
            "INSERT INTO contacts (email, first_name, last_name, company, fields, created_at, updated_at)"
            " SELECT email, first_name, last_name, company, fields, ?, ? FROM bulk_rows WHERE true"
            " ON CONFLICT (email) DO NOTHING", (now, now))
        reenrollable = ",".join(f"'{s.value}'" for s in REENROLLABLE)
        db.execute(
            "UPDATE bulk_rows SET refusal = CASE"
            " WHEN EXISTS (SELECT 1 FROM enrollments e JOIN contacts c ON c.id = e.contact_id"
            "   WHERE c.email = bulk_rows.email AND e.sequence_id = ? AND e.status = 'active') THEN 'already_enrolled'"
            " WHEN (SELECT e.status FROM enrollments e JOIN contacts c ON c.id = e.contact_id"
            f"   WHERE c.email = bulk_rows.email AND e.sequence_id = ? ORDER BY e.id DESC LIMIT 1) NOT IN ({reenrollable})"
            "   THEN 'conflict'"
            " WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.email = bulk_rows.email) THEN 'suppressed'"
            " END", (sequence_id, sequence_id))
        refused = fetch_all(db, "SELECT pos, email, refusal FROM bulk_rows WHERE refusal IS NOT NULL ORDER BY pos")
        skipped = [{"pos": r["pos"], "email": r["email"], "reason": r["refusal"], "message": _REFUSAL_TEXT[r["refusal"]]}
                   for r in refused]
        if strict and skipped:
            first = skipped[0]
            error = Conflict(f"{first['email']}: {first['message']}" + (
                f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""), details={"refused": skipped[:100]})
            error.code = first["reason"] if first["reason"] != "conflict" else "conflict"
            raise error
        top = fetch_one(db, "SELECT COALESCE(MAX(id), 0) AS top FROM enrollments")
        assert top is not None
        runnable = now if sequence.status is SequenceStatus.ACTIVE else None
        db.execute(
            "INSERT INTO enrollments (sequence_id, contact_id, mailbox_id, status, cursor_ord, anchor_at,"
            " due_at, next_run_at, merge_fields, enrolled_at, updated_at, last_event_at)"
            " SELECT ?, c.id, ?, 'active', 0, ?, ?, ?, b.merge, ?, ?, ? FROM bulk_rows b"
            " JOIN contacts c ON c.email = b.email WHERE b.refusal IS NULL ORDER BY b.pos",
            (sequence_id, sequence.settings.mailbox_id, runnable, runnable, runnable, now, now, now))
        db.execute(
            "INSERT INTO events (at, kind, mailbox_id, sequence_id, enrollment_id, contact_id, flagged, data)"
            " SELECT ?, 'enrolled', mailbox_id, sequence_id, id, contact_id, 0, '{}' FROM enrollments"
            " WHERE id > ? AND sequence_id = ?", (now, top["top"], sequence_id))
        count = fetch_one(db, "SELECT COUNT(*) AS n FROM enrollments WHERE id > ? AND sequence_id = ?",
                               (top["top"], sequence_id))
        db.execute("DELETE FROM bulk_rows")
        assert count is not None
        return BulkResult(int(count["n"]), skipped)


_REFUSAL_TEXT = {
    "already_enrolled": "already active in this sequence",
    "conflict": "ended in this sequence in a way that does not allow enrolling again (replied, bounced or unsubscribed)",
    "suppressed": "the address is suppressed (bounced, unsubscribed or complained)",
}


@dataclass(frozen=True)
class BulkResult:
    enrolled: int
    skipped: list[dict[str, Any]]  # {"pos", "email", "reason", "message"}
