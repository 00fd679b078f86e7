"""The one writer of event rows, and what ending an enrollment writes.

Every row of ``events`` is written here from a ``dripd.events.Event``: the typed payload becomes
the ``data`` JSON (``events.payload_json``), an engagement's ``flagged`` its column. Each event
written is also kept for the operation that wrote it; the connection publishes them once the
group commit succeeded (``transaction.commit_group``), so a consumer never sees an event that was
rolled back.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from typing import Sequence

from dripd import policy
from dripd.events import (
    END_KIND,
    PAYLOAD_OF,
    Bounce,
    Detail,
    Engagement,
    Event,
    EventKind,
    NoData,
    Payload,
    Reason,
    Reply,
    payload_json,
)
from dripd.model import EnrollmentStatus, SequenceStatus
from dripd.store.rows import auto_complete_of

_collecting = threading.local()  # per connection thread: the running operation's event list

_INSERT = ("INSERT INTO events (at, kind, mailbox_id, sequence_id, enrollment_id, contact_id, step_id, outbox_id,"
           " flagged, data) VALUES (?,?,?,?,?,?,?,?,?,?)")


def collect_into(events: list[Event] | None) -> None:
    """Set (or clear) where the running operation's events go; called by the group runner."""
    _collecting.events = events


def _collected() -> list[Event]:
    events: list[Event] | None = getattr(_collecting, "events", None)
    if events is None:
        raise RuntimeError("an event written outside a store operation would never be published")
    return events


@functools.lru_cache(maxsize=4096)
def _data(payload: Payload) -> str:
    """The ``data`` column of a payload. Cached: the send path writes the same few payloads
    (NoData for every sent) thousands of times a second, and ``asdict`` is slow."""
    return json.dumps(payload_json(payload))


def event_columns(event: Event) -> tuple[object, ...]:
    """An event's row from ``at`` on (every column but its id), as ``_INSERT`` lists them."""
    flagged = isinstance(event.payload, Engagement) and event.payload.flagged
    return (event.at, event.kind.value, event.mailbox_id, event.sequence_id, event.enrollment_id,
            event.contact_id, event.step_id, event.outbox_id, int(flagged), _data(event.payload))


def write_event(db: sqlite3.Connection, event: Event) -> Event:
    """Write one event in the caller's transaction; it is published after the commit."""
    cursor = db.execute(_INSERT, event_columns(event))
    written = event.numbered(cursor.lastrowid)
    _collected().append(written)
    return written


def next_event_id(db: sqlite3.Connection) -> int:
    """The first id ``write_events`` may give: callers building many events number them from here."""
    return int(db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM events").fetchone()[0])


def write_events(db: sqlite3.Connection, events: Sequence[Event]) -> None:
    """Many events in one statement (a bulk enrollment), each with the id its caller gave it
    (numbered from ``next_event_id``); they are published after the commit."""
    if any(event.id is None for event in events):
        raise ValueError("write_events needs events numbered from next_event_id")
    rows = [(event.id, *event_columns(event)) for event in events]
    db.executemany(_INSERT.replace("(at,", "(id, at,").replace("VALUES (?", "VALUES (?,?"), rows)
    _collected().extend(events)


Place = tuple[int, int, str]  # an enrollment's (sequence_id, contact_id, mailbox_id)


def enrollment_event(
    db: sqlite3.Connection, kind: EventKind, at: float, enrollment_id: int, payload: Payload | None = None,
    *, step_id: int | None = None, outbox_id: int | None = None, place: Place | None = None,
) -> Event | None:
    """An event about one enrollment, placed (mailbox, sequence, contact) from its row, or from
    ``place`` when the caller has just read it."""
    row = place or db.execute("SELECT sequence_id, contact_id, mailbox_id FROM enrollments WHERE id = ?",
                              (enrollment_id,)).fetchone()
    if row is None:
        return None
    return write_event(db, Event(
        kind, at, payload if payload is not None else NoData(), mailbox_id=row[2], sequence_id=row[0],
        enrollment_id=enrollment_id, contact_id=row[1], step_id=step_id, outbox_id=outbox_id))


# -- endings (END_KIND, in dripd.events, names each one's event) -----------------------------

def end_payload(kind: EventKind, reason: str | None) -> Payload:
    """The payload of an ending event, carrying the reason in the field its type has for it."""
    cls = PAYLOAD_OF[kind]
    if cls is Reason:
        return Reason(reason)
    if cls is Detail:
        return Detail(detail=reason)
    if cls is Bounce:
        # An enrollment ended as bounced without a send of its own ended for its address's
        # hard bounce elsewhere (the suppression list holds only hard bounces).
        return Bounce("hard", detail=reason)
    if cls is Reply:
        return Reply(source=reason or "")
    return NoData()


# What ending an enrollment writes; it is never due again.
_ENDING = ("status = ?, end_reason = ?, ended_at = ?, updated_at = ?, last_event_at = ?, next_run_at = NULL,"
           " due_at = NULL")


def close_enrollment(
    db: sqlite3.Connection, enrollment_id: int, status: EnrollmentStatus, reason: str | None, now: float,
    *, also: str = "", also_values: tuple[object, ...] = (),
) -> Place | None:
    """End one active enrollment without an event (the caller writes the one that says why).
    ``also`` are more assignments (ending with ", ") made in the same write: a last step's
    advance. Returns the enrollment's place, None when it was not active."""
    return update_returning_place(
        db, f"UPDATE enrollments SET {also}{_ENDING} WHERE id = ? AND status = 'active'",
        (*also_values, status.value, reason, now, now, now, enrollment_id))


def update_returning_place(db: sqlite3.Connection, update: str, params: tuple[object, ...]) -> Place | None:
    """Run an UPDATE of one enrollment row and return its place (for the events that follow, so
    they need not read the row again); None when no row matched."""
    rows = db.execute(update + " RETURNING sequence_id, contact_id, mailbox_id", params).fetchall()
    return (rows[0][0], rows[0][1], rows[0][2]) if rows else None  # fetchall: the statement is done


def end_now(
    db: sqlite3.Connection, enrollment_id: int, status: EnrollmentStatus, reason: str | None, now: float
) -> int | None:
    """End one active enrollment inside the caller's transaction, with the event of its end
    status; returns the sequence id it auto-completed, if any."""
    place = close_enrollment(db, enrollment_id, status, reason, now)
    if place is None:
        return None
    return announce_end(db, enrollment_id, status, reason, now, place)


def announce_end(
    db: sqlite3.Connection, enrollment_id: int, status: EnrollmentStatus, reason: str | None, now: float,
    place: Place,
) -> int | None:
    """The event of an ending close_enrollment just wrote, then the sequence's auto-complete."""
    kind = END_KIND[status]
    enrollment_event(db, kind, now, enrollment_id, end_payload(kind, reason), place=place)
    return autocomplete(db, place[0], now)


def autocomplete(db: sqlite3.Connection, sequence_id: int, now: float) -> int | None:
    """Complete the sequence when policy says its last active contact finishing does."""
    # One statement for the sequence and whether any contact is still active (0 or 1: whether
    # any is left is all the rule needs); it runs after every contact that finishes.
    row = db.execute("SELECT status, settings, mailbox_id, EXISTS (SELECT 1 FROM enrollments"
                     " WHERE sequence_id = sequences.id AND status = 'active') FROM sequences WHERE id = ?",
                     (sequence_id,)).fetchone()
    if row is None:
        return None
    auto = auto_complete_of(row[1])
    if not policy.autocompletes(SequenceStatus(row[0]), auto, row[3]):
        return None
    reason = "all contacts finished"
    db.execute("UPDATE sequences SET status = 'completed', status_reason = ?, updated_at = ? WHERE id = ?",
               (reason, now, sequence_id))
    write_event(db, Event(EventKind.SEQUENCE_COMPLETED, now, Reason(reason), mailbox_id=row[2],
                          sequence_id=sequence_id))
    return sequence_id
