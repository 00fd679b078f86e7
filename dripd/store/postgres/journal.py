"""The one writer of event rows, and what ending an enrollment writes.

Every row of ``events`` is written here from a ``dripd.events.Event``: the typed payload becomes
the ``data`` JSON (``events.payload_json``), an engagement's ``flagged`` its column. Each event
written is also kept for the operation that wrote it; the connection publishes them once the
transaction committed (``connection.PgConnection._run``), so a consumer never sees an event
that was rolled back. The PostgreSQL twin of ``dripd.store.sqlite.journal``.
"""

from __future__ import annotations

import functools
import json
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
from dripd.store.postgres.sql import Conn, fetch_one

_collecting = threading.local()  # per worker thread: the running operation's event list

_INSERT = ("INSERT INTO events (at, kind, mailbox_id, sequence_id, enrollment_id, contact_id, step_id, outbox_id,"
           " flagged, data) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)")


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


def _values(event: Event) -> tuple[object, ...]:
    flagged = isinstance(event.payload, Engagement) and event.payload.flagged
    return (event.at, event.kind.value, event.mailbox_id, event.sequence_id, event.enrollment_id,
            event.contact_id, event.step_id, event.outbox_id, int(flagged), _data(event.payload))


def write_event(db: Conn, event: Event) -> Event:
    """Write one event in the caller's transaction; it is published after the commit."""
    row = db.execute(_INSERT + " RETURNING id", _values(event)).fetchone()
    assert row is not None
    written = event.numbered(int(row[0]))
    _collected().append(written)
    return written


def reserve_event_ids(db: Conn, count: int) -> list[int]:
    """``count`` event ids from the events identity: callers building many events number them
    with these (taken from the sequence, so concurrent writers on other nodes never collide)."""
    rows = db.execute("SELECT nextval(pg_get_serial_sequence('events', 'id')) FROM generate_series(1, %s)",
                      (count,)).fetchall()
    return sorted(int(r[0]) for r in rows)


def write_events(db: Conn, events: Sequence[Event]) -> None:
    """Many events in one COPY (a bulk enrollment), each with the id its caller gave it
    (from ``reserve_event_ids``); they are published after the commit. The webhook trigger
    fires for copied rows too."""
    if any(event.id is None for event in events):
        raise ValueError("write_events needs events numbered from reserve_event_ids")
    with db.cursor().copy("COPY events (id, at, kind, mailbox_id, sequence_id, enrollment_id, contact_id, step_id,"
                          " outbox_id, flagged, data) FROM STDIN") as copy:
        for event in events:
            copy.write_row((event.id, *_values(event)))
    _collected().extend(events)


def enrollment_event(
    db: Conn, kind: EventKind, at: float, enrollment_id: int, payload: Payload | None = None,
    *, step_id: int | None = None, outbox_id: int | None = None,
) -> Event | None:
    """An event about one enrollment, placed (mailbox, sequence, contact) from its row."""
    row = fetch_one(db, "SELECT sequence_id, contact_id, mailbox_id FROM enrollments WHERE id = %s", (enrollment_id,))
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


def close_enrollment(
    db: Conn, enrollment_id: int, status: EnrollmentStatus, reason: str | None, now: float,
) -> bool:
    """End one active enrollment without an event (the caller writes the one that says why)."""
    cursor = db.execute(
        "UPDATE enrollments SET status = %s, end_reason = %s, ended_at = %s, updated_at = %s,"
        " last_event_at = %s, next_run_at = NULL, due_at = NULL WHERE id = %s AND status = 'active'",
        (status.value, reason, now, now, now, enrollment_id),
    )
    return cursor.rowcount > 0


def end_now(
    db: Conn, enrollment_id: int, status: EnrollmentStatus, reason: str | None, now: float
) -> int | None:
    """End one active enrollment inside the caller's transaction, with the event of its end
    status; returns the sequence id it auto-completed, if any."""
    if not close_enrollment(db, enrollment_id, status, reason, now):
        return None
    kind = END_KIND[status]
    event = enrollment_event(db, kind, now, enrollment_id, end_payload(kind, reason))
    assert event is not None and event.sequence_id is not None
    return autocomplete(db, event.sequence_id, now)


def autocomplete(db: Conn, sequence_id: int, now: float) -> int | None:
    """Complete the sequence when policy says its last active contact finishing does.

    The sequence row is locked first: two transactions ending its last two contacts at once
    (two lanes, two nodes) would each still see the other's contact active and neither would
    complete it. Under the lock the count below reads what the one before committed.

    NO KEY UPDATE, not UPDATE: the enrollment's second UPDATE in this transaction makes
    PostgreSQL check its foreign key, which KEY SHARE-locks this very row. FOR UPDATE waited
    for the other sends' KEY SHARE locks while they waited for this one's: a deadlock between
    any two sends ending contacts of one sequence at once (seen in CI). NO KEY UPDATE does not
    conflict with KEY SHARE, and two of them still take turns."""
    row = fetch_one(db, "SELECT status, settings, mailbox_id FROM sequences WHERE id = %s FOR NO KEY UPDATE",
                    (sequence_id,))
    if row is None:
        return None
    auto = auto_complete_of(row[1])
    found = fetch_one(db, "SELECT COUNT(*) FROM (SELECT 1 FROM enrollments WHERE sequence_id = %s AND status = 'active'"
                          " LIMIT 1) AS one", (sequence_id,))
    left = int(found[0]) if found else 0  # 0 or 1: whether any is left is all it takes
    if not policy.autocompletes(SequenceStatus(row[0]), auto, left):
        return None
    reason = "all contacts finished"
    db.execute("UPDATE sequences SET status = 'completed', status_reason = %s, updated_at = %s WHERE id = %s",
               (reason, now, sequence_id))
    write_event(db, Event(EventKind.SEQUENCE_COMPLETED, now, Reason(reason), mailbox_id=row[2],
                          sequence_id=sequence_id))
    return sequence_id
