"""Catalog operations on sequences and their steps (steps addressed by index, stored by id)."""

from __future__ import annotations

from dripd.errors import Conflict, NotFound, ReadOnly
from dripd.events import Event, EventKind, Reason
from dripd.model import Action, EnrollmentStatus, Sequence, SequenceSettings, SequenceStatus, Step, transition
from dripd.steps import check_step_list
from dripd.store.rows import sequence_from_row, settings_to_json, step_data, step_from_row
from dripd.store.sqlite.connection import Conn, control_operation, fetch_all, fetch_one
from dripd.store.sqlite.journal import end_now, write_event


def load_sequence(db: Conn, sequence_id: int) -> Sequence:
    row = fetch_one(db, "SELECT * FROM sequences WHERE id = ?", (sequence_id,))
    if row is None:
        raise NotFound(f"no sequence with id {sequence_id}", details={"sequenceId": sequence_id})
    return sequence_from_row(row)


def live_steps(db: Conn, sequence_id: int) -> list[Step]:
    rows = fetch_all(db, "SELECT * FROM steps WHERE sequence_id = ? AND deleted = 0 ORDER BY ord", (sequence_id,))
    return [step_from_row(r) for r in rows]


def _editable(sequence: Sequence) -> None:
    if sequence.status is SequenceStatus.COMPLETED:
        raise ReadOnly(f"sequence {sequence.id} is completed and read-only (clone it to re-run)",
                       details={"sequenceId": sequence.id})


def _insert_sequence(db: Conn, settings: SequenceSettings, steps: list[Step], now: float) -> int:
    cursor = db.execute(
        "INSERT INTO sequences (name, mailbox_id, status, settings, created_at, updated_at)"
        " VALUES (?, ?, 'draft', ?, ?, ?)",
        (settings.name, settings.mailbox_id, settings_to_json(settings), now, now),
    )
    sequence_id = cursor.lastrowid or 0
    db.executemany("INSERT INTO steps (sequence_id, ord, type, data) VALUES (?, ?, ?, ?)",
                   [(sequence_id, index, step.type.value, step_data(step)) for index, step in enumerate(steps)])
    return sequence_id


def _make_runnable(db: Conn, sequence_id: int, now: float) -> None:
    """Start or resume: held contacts become runnable where they were (never restart)."""
    db.execute(
        "UPDATE enrollments SET due_at = COALESCE(due_at, ?), anchor_at = COALESCE(anchor_at, ?),"
        " next_run_at = COALESCE(due_at, ?), updated_at = ? WHERE sequence_id = ? AND status = 'active'",
        (now, now, now, now, sequence_id),
    )


class SequenceCache:
    """Parsed sequences and their live steps by id, shared by the send path and the catalog."""

    caches: list[dict[object, object]]

    # Parsed sequences and their live steps by id: parsing settings JSON and steps for every
    # send was a measurable share of the connection thread. Every catalog operation that edits a
    # sequence or its steps drops its entry (forget_sequence); status is checked on each use,
    # since auto-complete and auto-pause change it from the send path too.
    def _cache(self) -> dict[int, tuple[str, Sequence, list[Step]]]:
        cache: dict[int, tuple[str, Sequence, list[Step]]] | None = self.__dict__.get("_sequence_cache")
        if cache is None:
            cache = self.__dict__["_sequence_cache"] = {}
            self.caches.append(cache)  # type: ignore[arg-type]
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
        assert seq_row is not None
        steps = [step_from_row(r) for r in fetch_all(
            db, "SELECT * FROM steps WHERE sequence_id = ? AND deleted = 0 ORDER BY ord", (sequence_id,))]
        sequence = sequence_from_row(seq_row)
        if len(cache) > 10_000:
            cache.clear()
        cache[sequence_id] = (sequence.status.value, sequence, steps)
        return sequence, steps


class SequenceOps(SequenceCache):
    """Mixin of sequence and step operations; ``self._db`` comes from SqliteConnection."""

    @control_operation
    def create_sequence(self, db: Conn, settings: SequenceSettings, steps: list[Step], now: float) -> Sequence:
        check_step_list(steps)
        return load_sequence(db, _insert_sequence(db, settings, steps, now))

    @control_operation
    def get_sequence(self, db: Conn, sequence_id: int) -> tuple[Sequence, list[Step]]:
        return load_sequence(db, sequence_id), live_steps(db, sequence_id)

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
    def step_counts(self, db: Conn) -> dict[int, int]:
        rows = fetch_all(db, "SELECT sequence_id, COUNT(*) AS n FROM steps WHERE deleted = 0 GROUP BY sequence_id")
        return {r["sequence_id"]: r["n"] for r in rows}

    @control_operation
    def update_sequence(self, db: Conn, sequence_id: int, settings: SequenceSettings, now: float) -> Sequence:
        self.forget_sequence(sequence_id)
        _editable(load_sequence(db, sequence_id))
        db.execute(
            "UPDATE sequences SET name = ?, mailbox_id = ?, settings = ?, updated_at = ? WHERE id = ?",
            (settings.name, settings.mailbox_id, settings_to_json(settings), now, sequence_id),
        )
        # A contact stays on its mailbox for the whole thread; only those on a mailbox that left
        # the sequence's pool move, to the sequence's (first) mailbox.
        pool = settings.pool
        marks = ",".join("?" * len(pool))
        db.execute(f"UPDATE enrollments SET mailbox_id = ? WHERE sequence_id = ? AND status = 'active'"
                   f" AND mailbox_id NOT IN ({marks})", (settings.mailbox_id, sequence_id, *pool))
        return load_sequence(db, sequence_id)

    @control_operation
    def transition_sequence(
        self, db: Conn, sequence_id: int, action: Action, now: float, reason: str | None = None
    ) -> Sequence:
        """Apply start/pause/resume/complete with the seeds' rules (InvalidTransition otherwise);
        a pause writes sequence_paused (with the reason), a completion sequence_completed."""
        self.forget_sequence(sequence_id)
        sequence = load_sequence(db, sequence_id)
        new_status = transition(sequence.status, action)
        if action is Action.START and not live_steps(db, sequence_id):
            raise Conflict("a sequence needs at least one step to start", details={"sequenceId": sequence_id})
        db.execute(
            "UPDATE sequences SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?",
            (new_status.value, reason, now, sequence_id),
        )
        mailbox_id = sequence.settings.mailbox_id
        if new_status is SequenceStatus.ACTIVE:
            _make_runnable(db, sequence_id, now)
        elif new_status is SequenceStatus.PAUSED:
            # Held: due_at keeps each contact's place; only the scheduler's key goes.
            db.execute(
                "UPDATE enrollments SET next_run_at = NULL, updated_at = ? WHERE sequence_id = ? AND status = 'active'",
                (now, sequence_id),
            )
            write_event(db, Event(EventKind.SEQUENCE_PAUSED, now, Reason(reason), mailbox_id=mailbox_id,
                                  sequence_id=sequence_id))
        elif new_status is SequenceStatus.COMPLETED:
            ids = fetch_all(db, "SELECT id FROM enrollments WHERE sequence_id = ? AND status = 'active'", (sequence_id,))
            for r in ids:
                # A completed sequence cannot auto-complete again: end_now writes only the cancellations.
                end_now(db, r["id"], EnrollmentStatus.CANCELLED, "sequence completed", now)
            final = reason or "completed by request"
            db.execute(
                "UPDATE sequences SET status = 'completed', status_reason = ?, updated_at = ? WHERE id = ?",
                (final, now, sequence_id),
            )
            write_event(db, Event(EventKind.SEQUENCE_COMPLETED, now, Reason(final), mailbox_id=mailbox_id,
                                  sequence_id=sequence_id))
        return load_sequence(db, sequence_id)

    @control_operation
    def clone_sequence(self, db: Conn, sequence_id: int, name: str | None, now: float) -> Sequence:
        source = load_sequence(db, sequence_id)
        settings = source.settings.replace(name=name or f"{source.settings.name} (copy)")
        return load_sequence(db, _insert_sequence(db, settings, live_steps(db, sequence_id), now))

    # -- steps -----------------------------------------------------------------------------------

    @control_operation
    def add_step(self, db: Conn, sequence_id: int, step: Step, now: float) -> list[Step]:
        self.forget_sequence(sequence_id)
        _editable(load_sequence(db, sequence_id))
        steps = live_steps(db, sequence_id)
        check_step_list(steps + [step])
        row = fetch_one(db, "SELECT COALESCE(MAX(ord), -1) + 1 AS next FROM steps WHERE sequence_id = ?", (sequence_id,))
        assert row is not None
        db.execute("INSERT INTO steps (sequence_id, ord, type, data) VALUES (?, ?, ?, ?)",
                   (sequence_id, row["next"], step.type.value, step_data(step)))
        db.execute("UPDATE sequences SET updated_at = ? WHERE id = ?", (now, sequence_id))
        return live_steps(db, sequence_id)

    @control_operation
    def replace_step(self, db: Conn, sequence_id: int, index: int, step: Step, now: float) -> list[Step]:
        """Edit in place: same id and position; applies to future runs only."""
        self.forget_sequence(sequence_id)
        _editable(load_sequence(db, sequence_id))
        steps = live_steps(db, sequence_id)
        target = _at(steps, sequence_id, index)
        check_step_list([step if s.id == target.id else s for s in steps])
        db.execute("UPDATE steps SET type = ?, data = ? WHERE id = ?", (step.type.value, step_data(step), target.id))
        db.execute("UPDATE sequences SET updated_at = ? WHERE id = ?", (now, sequence_id))
        return live_steps(db, sequence_id)

    @control_operation
    def delete_step(self, db: Conn, sequence_id: int, index: int, now: float) -> list[Step]:
        """Soft delete, so sent messages keep their step; later steps re-index."""
        self.forget_sequence(sequence_id)
        _editable(load_sequence(db, sequence_id))
        steps = live_steps(db, sequence_id)
        target = _at(steps, sequence_id, index)
        check_step_list([s for s in steps if s.id != target.id])
        db.execute("UPDATE steps SET deleted = 1 WHERE id = ?", (target.id,))
        db.execute("UPDATE sequences SET updated_at = ? WHERE id = ?", (now, sequence_id))
        return live_steps(db, sequence_id)


def _at(steps: list[Step], sequence_id: int, index: int) -> Step:
    if not 0 <= index < len(steps):
        raise NotFound(f"sequence {sequence_id} has no step {index} (it has {len(steps)})",
                       details={"sequenceId": sequence_id, "stepIndex": index})
    return steps[index]
