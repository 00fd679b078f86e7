"""Catalog operations on sequences and their steps (steps addressed by index, stored by id);
the PostgreSQL twin of ``dripd.store.sqlite.sequences``."""

from __future__ import annotations

from dripd.errors import Conflict, NotFound, ReadOnly
from dripd.events import Event, EventKind, Reason
from dripd.model import Action, EnrollmentStatus, Sequence, SequenceSettings, SequenceStatus, Step, transition
from dripd.steps import check_step_list
from dripd.store.rows import sequence_from_row, settings_to_json, step_data, step_from_row
from dripd.store.postgres.connection import operation
from dripd.store.postgres.sql import Conn, fetch_all, fetch_one, notify_due, run_many
from dripd.store.postgres.journal import end_now, write_event


def load_sequence(db: Conn, sequence_id: int, *, for_update: bool = False) -> Sequence:
    """The sequence; ``for_update`` locks its row until COMMIT, so edits of one sequence from
    several sessions (API calls on two nodes, the send path auto-completing it) apply one after
    the other, each seeing the last, as SQLite's single writer has them. NO KEY UPDATE: the
    same turns, without waiting for the foreign-key checks of sends and enrollments, which
    KEY SHARE-lock the row (journal.autocomplete says why that matters)."""
    row = fetch_one(db, "SELECT * FROM sequences WHERE id = %s" + (" FOR NO KEY UPDATE" if for_update else ""),
                    (sequence_id,))
    if row is None:
        raise NotFound(f"no sequence with id {sequence_id}", details={"sequenceId": sequence_id})
    return sequence_from_row(row)


def live_steps(db: Conn, sequence_id: int) -> list[Step]:
    rows = fetch_all(db, "SELECT * FROM steps WHERE sequence_id = %s AND deleted = 0 ORDER BY ord", (sequence_id,))
    return [step_from_row(r) for r in rows]


def _editable(sequence: Sequence) -> None:
    if sequence.status is SequenceStatus.COMPLETED:
        raise ReadOnly(f"sequence {sequence.id} is completed and read-only (clone it to re-run)",
                       details={"sequenceId": sequence.id})


def _insert_sequence(db: Conn, settings: SequenceSettings, steps: list[Step], now: float) -> int:
    row = db.execute(
        "INSERT INTO sequences (name, mailbox_id, status, settings, created_at, updated_at)"
        " VALUES (%s, %s, 'draft', %s, %s, %s) RETURNING id",
        (settings.name, settings.mailbox_id, settings_to_json(settings), now, now),
    ).fetchone()
    assert row is not None
    sequence_id = int(row[0])
    run_many(db, "INSERT INTO steps (sequence_id, ord, type, data) VALUES (%s, %s, %s, %s)",
                   [(sequence_id, index, step.type.value, step_data(step)) for index, step in enumerate(steps)])
    return sequence_id


def _make_runnable(db: Conn, sequence_id: int, now: float) -> None:
    """Start or resume: held contacts become runnable where they were (never restart)."""
    moved = db.execute(
        "UPDATE enrollments SET due_at = COALESCE(due_at, %s), anchor_at = COALESCE(anchor_at, %s),"
        " next_run_at = COALESCE(due_at, %s), updated_at = %s WHERE sequence_id = %s AND status = 'active'"
        " RETURNING mailbox_id",
        (now, now, now, now, sequence_id),
    ).fetchall()
    notify_due(db, (r[0] for r in moved))


def sequence_and_steps(db: Conn, sequence_id: int) -> tuple[Sequence, list[Step]]:
    """The sequence and its live steps, read fresh on every run: unlike the SQLite backend, no
    parse cache, since another node may edit the sequence and this one would not know."""
    return load_sequence(db, sequence_id), live_steps(db, sequence_id)


class SequenceOps:
    """Mixin of sequence and step operations (``PgConnection`` runs them)."""

    @operation
    def create_sequence(self, db: Conn, settings: SequenceSettings, steps: list[Step], now: float) -> Sequence:
        check_step_list(steps)
        return load_sequence(db, _insert_sequence(db, settings, steps, now))

    @operation
    def get_sequence(self, db: Conn, sequence_id: int) -> tuple[Sequence, list[Step]]:
        return load_sequence(db, sequence_id), live_steps(db, sequence_id)

    @operation
    def find_sequence(self, db: Conn, name: str) -> Sequence | None:
        row = fetch_one(db, "SELECT * FROM sequences WHERE name = %s ORDER BY id DESC LIMIT 1", (name,))
        return sequence_from_row(row) if row else None

    @operation
    def list_sequences(self, db: Conn, name: str | None = None) -> list[Sequence]:
        if name is not None:
            rows = fetch_all(db, "SELECT * FROM sequences WHERE name = %s ORDER BY id", (name,))
        else:
            rows = fetch_all(db, "SELECT * FROM sequences ORDER BY id")
        return [sequence_from_row(r) for r in rows]

    @operation
    def rollups(self, db: Conn, sequence_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
        """Enrollment counts per status for each sequence."""
        rows = fetch_all(db, "SELECT sequence_id, status, COUNT(*) AS n FROM enrollments GROUP BY sequence_id, status")
        out: dict[int, dict[str, int]] = {}
        for r in rows:
            if sequence_ids is None or r["sequence_id"] in sequence_ids:
                out.setdefault(r["sequence_id"], {})[r["status"]] = r["n"]
        return out

    @operation
    def step_counts(self, db: Conn) -> dict[int, int]:
        rows = fetch_all(db, "SELECT sequence_id, COUNT(*) AS n FROM steps WHERE deleted = 0 GROUP BY sequence_id")
        return {r["sequence_id"]: r["n"] for r in rows}

    @operation
    def update_sequence(self, db: Conn, sequence_id: int, settings: SequenceSettings, now: float) -> Sequence:
        _editable(load_sequence(db, sequence_id, for_update=True))
        db.execute(
            "UPDATE sequences SET name = %s, mailbox_id = %s, settings = %s, updated_at = %s WHERE id = %s",
            (settings.name, settings.mailbox_id, settings_to_json(settings), now, sequence_id),
        )
        # A contact stays on its mailbox for the whole thread; only those on a mailbox that left
        # the sequence's pool move, to the sequence's (first) mailbox.
        pool = settings.pool
        moved = db.execute("UPDATE enrollments SET mailbox_id = %s WHERE sequence_id = %s AND status = 'active'"
                           " AND NOT (mailbox_id = ANY(%s)) RETURNING next_run_at",
                           (settings.mailbox_id, sequence_id, list(pool))).fetchall()
        if any(r[0] is not None for r in moved):
            notify_due(db, [settings.mailbox_id])  # its lane may be on another node: it has new work
        return load_sequence(db, sequence_id)

    @operation
    def transition_sequence(
        self, db: Conn, sequence_id: int, action: Action, now: float, reason: str | None = None
    ) -> Sequence:
        """Apply start/pause/resume/complete with the seeds' rules (InvalidTransition otherwise);
        a pause writes sequence_paused (with the reason), a completion sequence_completed."""
        sequence = load_sequence(db, sequence_id, for_update=True)
        new_status = transition(sequence.status, action)
        if action is Action.START and not live_steps(db, sequence_id):
            raise Conflict("a sequence needs at least one step to start", details={"sequenceId": sequence_id})
        db.execute(
            "UPDATE sequences SET status = %s, status_reason = %s, updated_at = %s WHERE id = %s",
            (new_status.value, reason, now, sequence_id),
        )
        mailbox_id = sequence.settings.mailbox_id
        if new_status is SequenceStatus.ACTIVE:
            _make_runnable(db, sequence_id, now)
        elif new_status is SequenceStatus.PAUSED:
            # Held: due_at keeps each contact's place; only the scheduler's key goes.
            db.execute(
                "UPDATE enrollments SET next_run_at = NULL, updated_at = %s WHERE sequence_id = %s AND status = 'active'",
                (now, sequence_id),
            )
            write_event(db, Event(EventKind.SEQUENCE_PAUSED, now, Reason(reason), mailbox_id=mailbox_id,
                                  sequence_id=sequence_id))
        elif new_status is SequenceStatus.COMPLETED:
            ids = fetch_all(db, "SELECT id FROM enrollments WHERE sequence_id = %s AND status = 'active'", (sequence_id,))
            for r in ids:
                # A completed sequence cannot auto-complete again: end_now writes only the cancellations.
                end_now(db, r["id"], EnrollmentStatus.CANCELLED, "sequence completed", now)
            final = reason or "completed by request"
            db.execute(
                "UPDATE sequences SET status = 'completed', status_reason = %s, updated_at = %s WHERE id = %s",
                (final, now, sequence_id),
            )
            write_event(db, Event(EventKind.SEQUENCE_COMPLETED, now, Reason(final), mailbox_id=mailbox_id,
                                  sequence_id=sequence_id))
        return load_sequence(db, sequence_id)

    @operation
    def clone_sequence(self, db: Conn, sequence_id: int, name: str | None, now: float) -> Sequence:
        source = load_sequence(db, sequence_id)
        settings = source.settings.replace(name=name or f"{source.settings.name} (copy)")
        return load_sequence(db, _insert_sequence(db, settings, live_steps(db, sequence_id), now))

    # -- steps -----------------------------------------------------------------------------------

    @operation
    def add_step(self, db: Conn, sequence_id: int, step: Step, now: float) -> list[Step]:
        _editable(load_sequence(db, sequence_id, for_update=True))
        steps = live_steps(db, sequence_id)
        check_step_list(steps + [step])
        row = fetch_one(db, "SELECT COALESCE(MAX(ord), -1) + 1 AS next FROM steps WHERE sequence_id = %s", (sequence_id,))
        assert row is not None
        db.execute("INSERT INTO steps (sequence_id, ord, type, data) VALUES (%s, %s, %s, %s)",
                   (sequence_id, row["next"], step.type.value, step_data(step)))
        db.execute("UPDATE sequences SET updated_at = %s WHERE id = %s", (now, sequence_id))
        return live_steps(db, sequence_id)

    @operation
    def replace_step(self, db: Conn, sequence_id: int, index: int, step: Step, now: float) -> list[Step]:
        """Edit in place: same id and position; applies to future runs only."""
        _editable(load_sequence(db, sequence_id, for_update=True))
        steps = live_steps(db, sequence_id)
        target = _at(steps, sequence_id, index)
        check_step_list([step if s.id == target.id else s for s in steps])
        db.execute("UPDATE steps SET type = %s, data = %s WHERE id = %s", (step.type.value, step_data(step), target.id))
        db.execute("UPDATE sequences SET updated_at = %s WHERE id = %s", (now, sequence_id))
        return live_steps(db, sequence_id)

    @operation
    def delete_step(self, db: Conn, sequence_id: int, index: int, now: float) -> list[Step]:
        """Soft delete, so sent messages keep their step; later steps re-index."""
        _editable(load_sequence(db, sequence_id, for_update=True))
        steps = live_steps(db, sequence_id)
        target = _at(steps, sequence_id, index)
        check_step_list([s for s in steps if s.id != target.id])
        db.execute("UPDATE steps SET deleted = 1 WHERE id = %s", (target.id,))
        db.execute("UPDATE sequences SET updated_at = %s WHERE id = %s", (now, sequence_id))
        return live_steps(db, sequence_id)


def _at(steps: list[Step], sequence_id: int, index: int) -> Step:
    if not 0 <= index < len(steps):
        raise NotFound(f"sequence {sequence_id} has no step {index} (it has {len(steps)})",
                       details={"sequenceId": sequence_id, "stepIndex": index})
    return steps[index]
