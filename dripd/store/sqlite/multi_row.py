"""The send path's claims and results written a group at a time: one statement per table.

A group commit (dripd/store/sqlite/transaction.py) gathers the operations of every send in
flight: at ``connections = 4`` a group holds a dozen claims or results, and each ran its own
statements, with its own Python around them. Here the claims of a group are one ``INSERT ...
SELECT FROM (VALUES ...)`` into the outbox and one into the send log, and its results one
``UPDATE ... FROM (VALUES ...)`` per table and one ``INSERT`` of their events, ``CHUNK`` rows a
statement at most. Measured (issue 14; BENCHMARKS.md, the sixteenth stop): in a plain loop of 32
sends a group, 0.055 ms of CPU per send against 0.13 for the same rows written one by one; in the
engine with a null transport at 16 sends in flight, 8 % less CPU per step in the event loop's
thread (0.449 against 0.491 ms, medians of 5 alternated runs).

Each form gives every operation the result and the events its one-row function
(``RunOps.claim_send``, ``RunOps.record_sent``) would have given it. What the common case does not
cover runs through that function itself, inside the same savepoint: a claim the insert did not
make (a retry, a refusal), the event of a result whose enrollment ended meanwhile, a group naming
one enrollment twice. The operations of one group are concurrent (no caller waits for another's),
so the order they take inside it is free; only the event ids show it (a sequence completed by the
group is numbered after all of the group's results).
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable, Sequence

from dripd.events import Event, EventKind, NoData
from dripd.model import EnrollmentStatus
from dripd.store.api import Claim, Refused
from dripd.store.sqlite import journal
from dripd.store.sqlite.transaction import Outcome, Pending

_CLAIM_ARGS = ("enrollment_id", "step_id", "mailbox_id", "message_id", "subject", "now", "variant")
_RECORD_ARGS = ("claim", "enrollment_id", "step_id", "cursor_ord", "anchor_at", "due_at", "now")
_COMPLETED_PAYLOAD = journal.end_payload(EventKind.COMPLETED, None)
# Rows a statement at most: a group takes every queued send-path operation, and a statement has
# at most 32,766 parameters (SQLite 3.32 on); the events of 256 results take 5,632.
CHUNK = 256


def _arguments(item: Pending, names: Sequence[str]) -> tuple[Any, ...]:
    """The operation's own arguments, by name (its call is ``partial(fn, store, conn, *args)``;
    a missing trailing one takes its default, None in both forms here)."""
    call = item.call
    given = call.args[2:]  # type: ignore[attr-defined]  # a functools.partial (connection._operation)
    keywords = call.keywords  # type: ignore[attr-defined]
    return (*given, *(keywords.get(name) for name in names[len(given):]))


def _values(rows: int, columns: int) -> str:
    one = "(" + ",".join("?" * columns) + ")"
    return ",".join([one] * rows)


def _one_by_one(items: Iterable[Pending]) -> list[Outcome]:
    """Each operation through its own one-row function, its events collected for it alone."""
    outcomes: list[Outcome] = []
    for item in items:
        events: list[Event] = []
        journal.collect_into(events)
        try:
            outcomes.append((item.call(), events))
        finally:
            journal.collect_into(None)
    return outcomes


def _distinct(rows: Sequence[tuple[Any, ...]], at: int) -> bool:
    return len({row[at] for row in rows}) == len(rows)


def claim_sends(db: sqlite3.Connection, items: list[Pending]) -> list[Outcome]:
    """``RunOps.claim_send`` for every item: the first attempts in one insert (made only while the
    enrollment and its sequence are active, skipped where the step already has its row), their
    send-log rows in another; the rest one by one."""
    if len(items) > CHUNK:
        return claim_sends(db, items[:CHUNK]) + claim_sends(db, items[CHUNK:])
    rows = [_arguments(item, _CLAIM_ARGS) for item in items]
    if not _distinct(rows, 0):
        return _one_by_one(items)
    inserted = db.execute(
        "INSERT INTO outbox (enrollment_id, step_id, mailbox_id, message_id, subject, status, attempts, created_at,"
        " attempted_at, variant) SELECT v.column1, v.column2, v.column3, v.column4, v.column5, 'sending', 1,"
        f" v.column6, v.column6, v.column7 FROM (VALUES {_values(len(rows), 7)}) AS v"
        " WHERE EXISTS (SELECT 1 FROM enrollments e JOIN sequences s ON s.id = e.sequence_id"
        "  WHERE e.id = v.column1 AND e.status = 'active' AND s.status = 'active')"
        " ON CONFLICT (enrollment_id, step_id) DO NOTHING RETURNING id, enrollment_id",
        [value for row in rows for value in row],
    ).fetchall()
    made = {enrollment_id: outbox_id for outbox_id, enrollment_id in inserted}
    if made:
        firsts = [row for row in rows if row[0] in made]
        db.execute(
            "INSERT INTO send_log (mailbox_id, at, first_email) SELECT v.column1, v.column2,"
            f" (SELECT sent_count = 0 FROM enrollments WHERE id = v.column3) FROM (VALUES {_values(len(firsts), 3)}) AS v",
            [value for row in firsts for value in (row[2], row[5], row[0])])
    outcomes: list[Outcome] = []
    for item, row in zip(items, rows):
        outbox_id = made.get(row[0])
        if outbox_id is None:
            # Not inserted: a retry of a row the step has, or a refusal; the one-row function
            # tells which (its own insert finds the same and makes nothing).
            outcomes.extend(_one_by_one([item]))
        else:
            claim: Claim | Refused = Claim(outbox_id, row[3], 1, row[5], row[6])
            outcomes.append((claim, []))
    return outcomes


def record_sents(db: sqlite3.Connection, items: list[Pending]) -> list[Outcome]:
    """``RunOps.record_sent`` for every item: the outbox rows resolved, the enrollments moved on
    (a last step ends them completed), the 'sent' and 'completed' events, then each sequence's
    auto-complete once."""
    if len(items) > CHUNK:
        return record_sents(db, items[:CHUNK]) + record_sents(db, items[CHUNK:])
    rows = [_arguments(item, _RECORD_ARGS) for item in items]
    if not _distinct(rows, 1):
        return _one_by_one(items)
    _resolve(db, rows)
    places = _advance(db, [row for row in rows if row[5] is None], finishing=True)
    places.update(_advance(db, [row for row in rows if row[5] is not None], finishing=False))
    events: list[list[Event]] = []
    for claim, enrollment_id, step_id, _, _, due_at, now in rows:
        place = places.get(enrollment_id)
        if place is None:
            # Ended meanwhile (a reply, a cancel): the event still says what went out, placed
            # from the row as the one-row function places it.
            place = db.execute("SELECT sequence_id, contact_id, mailbox_id FROM enrollments WHERE id = ?",
                               (enrollment_id,)).fetchone()
            finished = False
        else:
            finished = due_at is None
        mine = []
        if place is not None:
            mine.append(Event(EventKind.SENT, now, NoData(), mailbox_id=place[2], sequence_id=place[0],
                              enrollment_id=enrollment_id, contact_id=place[1], step_id=step_id,
                              outbox_id=claim.outbox_id))
            if finished:
                mine.append(Event(EventKind.COMPLETED, now, _COMPLETED_PAYLOAD, mailbox_id=place[2],
                                  sequence_id=place[0], enrollment_id=enrollment_id, contact_id=place[1]))
        events.append(mine)
    _write_events(db, events)
    results: list[int | None] = [None] * len(rows)
    last_of: dict[int, int] = {}  # sequence id -> the last item that ended one of its contacts
    for index, (_, enrollment_id, _, _, _, due_at, _) in enumerate(rows):
        if due_at is None and enrollment_id in places:
            last_of[places[enrollment_id][0]] = index
    for sequence_id, index in last_of.items():
        journal.collect_into(events[index])
        try:
            results[index] = journal.autocomplete(db, sequence_id, rows[index][6])
        finally:
            journal.collect_into(None)
    return list(zip(results, events))


def _resolve(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """``RunOps._resolve_row`` of each claimed row as sent, with what was handed over when known."""
    shown = [(row[0].outbox_id, row[6], *row[0].content) for row in rows if row[0].content is not None]
    bare = [(row[0].outbox_id, row[6]) for row in rows if row[0].content is None]
    if shown:
        db.execute("UPDATE outbox SET status = 'sent', resolved_at = v.column2, detail = NULL, subject = v.column3,"
                   f" body = v.column4, text_body = v.column5 FROM (VALUES {_values(len(shown), 5)}) AS v"
                   " WHERE outbox.id = v.column1", [value for row in shown for value in row])
    if bare:
        db.execute("UPDATE outbox SET status = 'sent', resolved_at = v.column2, detail = NULL"
                   f" FROM (VALUES {_values(len(bare), 2)}) AS v WHERE outbox.id = v.column1",
                   [value for row in bare for value in row])


def _advance(db: sqlite3.Connection, rows: list[tuple[Any, ...]], *, finishing: bool) -> dict[int, journal.Place]:
    """``RunOps._advance``'s update of each active enrollment: past its step, due again (held
    unless its sequence is active) or, ``finishing``, ended completed. Returns the places of those
    it updated (the others had ended meanwhile)."""
    if not rows:
        return {}
    if finishing:
        updated = db.execute(
            "UPDATE enrollments SET sent_count = sent_count + 1, cursor_ord = v.column2, anchor_at = v.column3,"
            " status = ?, end_reason = NULL, ended_at = v.column4, updated_at = v.column4, last_event_at = v.column4,"
            f" next_run_at = NULL, due_at = NULL FROM (VALUES {_values(len(rows), 4)}) AS v"
            " WHERE enrollments.id = v.column1 AND enrollments.status = 'active'"
            " RETURNING enrollments.id, sequence_id, contact_id, mailbox_id",
            [EnrollmentStatus.COMPLETED.value, *(value for row in rows for value in (row[1], row[3], row[4], row[6]))],
        ).fetchall()
    else:
        updated = db.execute(
            "UPDATE enrollments SET sent_count = sent_count + 1, cursor_ord = v.column2, anchor_at = v.column3,"
            " due_at = v.column4, last_event_at = v.column5, updated_at = v.column5,"
            " next_run_at = CASE WHEN (SELECT status FROM sequences WHERE id = sequence_id) = 'active'"
            f" THEN v.column4 ELSE NULL END FROM (VALUES {_values(len(rows), 5)}) AS v"
            " WHERE enrollments.id = v.column1 AND enrollments.status = 'active'"
            " RETURNING enrollments.id, sequence_id, contact_id, mailbox_id",
            [value for row in rows for value in (row[1], row[3], row[4], row[5], row[6])],
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in updated}


def _write_events(db: sqlite3.Connection, events: list[list[Event]]) -> None:
    """Every item's events in one insert, numbered in order, each list then holding its own."""
    flat = [event for mine in events for event in mine]
    if not flat:
        return
    first = journal.next_event_id(db)
    db.execute("INSERT INTO events (id, at, kind, mailbox_id, sequence_id, enrollment_id, contact_id, step_id,"
               f" outbox_id, flagged, data) VALUES {_values(len(flat), 11)}",
               [value for number, event in enumerate(flat, first) for value in (number, *journal.event_columns(event))])
    number = first
    for mine in events:
        mine[:] = [event.numbered(number + k) for k, event in enumerate(mine)]
        number += len(mine)
