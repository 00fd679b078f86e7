"""Schema migrations: numbered, applied in order, each in one transaction; the version is
SQLite's ``PRAGMA user_version``.

A database made before versioned migrations (main at ca8c8a1: user_version 0, the tables
present) is recognised as version 1. A database from a newer dripd is refused, never touched.
Adding a migration: append a function to ``MIGRATIONS``; never edit one that has shipped.
"""

from __future__ import annotations

import json
import sqlite3
from importlib import resources
from typing import Any, Callable

from dripd.errors import StoreError


def run_script(db: sqlite3.Connection, sql: str) -> None:
    """Run a script statement by statement inside the caller's transaction (``executescript``
    would commit first)."""
    current = ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            db.execute(current)
            current = ""
    if current.strip() and not current.strip().startswith("--"):
        raise StoreError(f"migration script ends inside a statement: {current.strip()[:60]!r}")


def _initial(db: sqlite3.Connection) -> None:
    """1: the schema of main at ca8c8a1 (every statement IF NOT EXISTS)."""
    run_script(db, resources.files(__package__).joinpath("0001_initial.sql").read_text())


# Payload keys main wrote, by event kind -> the field names of dripd.events' payloads.
_RENAMED_KEYS: dict[str, dict[str, str]] = {
    "replied": {"from": "sender", "returnDate": "return_date"},
    "auto_replied": {"from": "sender", "returnDate": "return_date"},
    "bounced": {"class": "bounce_class"},
    "opened": {"ua": "agent"},
    "clicked": {"ua": "agent"},
    "unsubscribed": {"ua": "agent", "method": "via"},
}
_RENAMED_KINDS = {"auto_reply": "auto_replied", "complaint": "complained"}


def _one_vocabulary(db: sqlite3.Connection) -> None:
    """2: event kinds and payload keys spelled as dripd.events has them, so one spelling runs
    from detector to store to metrics; the schema_version meta row gives way to user_version."""
    for old, new in _RENAMED_KINDS.items():
        db.execute("UPDATE events SET kind = ? WHERE kind = ?", (new, old))
    kinds = tuple(_RENAMED_KEYS)
    marks = ",".join("?" * len(kinds))
    rows = db.execute(f"SELECT id, kind, data FROM events WHERE kind IN ({marks})", kinds).fetchall()
    updates: list[tuple[str, int]] = []
    for event_id, kind, data in rows:
        loaded: dict[str, Any] = json.loads(data or "{}")
        renamed = {_RENAMED_KEYS[kind].get(key, key): value for key, value in loaded.items()}
        if renamed != loaded:
            updates.append((json.dumps(renamed), event_id))
    db.executemany("UPDATE events SET data = ? WHERE id = ?", updates)
    db.execute("DELETE FROM meta WHERE key = 'schema_version'")


def _bounce_column(db: sqlite3.Connection) -> None:
    """3: a ledger row's bounce class as a column (the bounce guards count it without reading
    JSON), filled from the bounced events so far; and an index for the mailbox guard's window."""
    db.execute("ALTER TABLE outbox ADD COLUMN bounce_class TEXT")
    rows = db.execute("SELECT outbox_id, data FROM events WHERE kind = 'bounced' AND outbox_id IS NOT NULL"
                      " ORDER BY id").fetchall()
    classes: dict[int, str] = {}
    for outbox_id, data in rows:
        bounce_class = json.loads(data or "{}").get("bounce_class")
        if bounce_class in ("hard", "soft") and classes.get(outbox_id) != "hard":
            classes[outbox_id] = bounce_class  # a hard bounce is never downgraded by a later soft one
    db.executemany("UPDATE outbox SET bounce_class = ? WHERE id = ?",
                   [(bounce_class, outbox_id) for outbox_id, bounce_class in classes.items()])
    db.execute("CREATE INDEX IF NOT EXISTS outbox_by_mailbox ON outbox (mailbox_id, attempted_at)")


def _mailbox_resumed_at(db: sqlite3.Connection) -> None:
    """When an operator last resumed each mailbox: the bounce shield rests for a while after it."""
    db.execute("ALTER TABLE mailbox_state ADD COLUMN resumed_at REAL")


def _webhooks(db: sqlite3.Connection) -> None:
    """5: webhook endpoints, and the outbox a trigger fills in the same commit as each event."""
    run_script(db, resources.files(__package__).joinpath("0005_webhooks.sql").read_text())


def _reply_inbox(db: sqlite3.Connection) -> None:
    """6: the reply inbox: every reply and auto-reply kept once per raw message (folder, UIDVALIDITY,
    UID), with its category, every relabel a person made, and the answers sent from the inbox."""
    run_script(db, """
CREATE TABLE replies (
    id INTEGER PRIMARY KEY,
    mailbox_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    contact_email TEXT NOT NULL,
    sequence_id INTEGER NOT NULL,
    enrollment_id INTEGER NOT NULL,
    step_id INTEGER NOT NULL,
    outbox_id INTEGER NOT NULL,
    from_header TEXT NOT NULL,
    subject TEXT NOT NULL,
    date_header TEXT NOT NULL,
    message_id TEXT NOT NULL,
    text TEXT NOT NULL,
    folder TEXT,
    uidvalidity INTEGER,
    uid INTEGER,
    category TEXT NOT NULL,
    rule TEXT NOT NULL,
    labelled_by TEXT NOT NULL,
    received_at REAL NOT NULL,
    read_at REAL
);
CREATE INDEX replies_by_time ON replies (received_at, id);
CREATE INDEX replies_by_source ON replies (mailbox_id, folder, uid);
CREATE INDEX replies_by_enrollment ON replies (enrollment_id);
CREATE TABLE reply_labels (
    id INTEGER PRIMARY KEY,
    reply_id INTEGER NOT NULL REFERENCES replies (id),
    category TEXT NOT NULL,
    previous TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX reply_labels_by_reply ON reply_labels (reply_id);
CREATE TABLE reply_answers (
    id INTEGER PRIMARY KEY,
    reply_id INTEGER NOT NULL REFERENCES replies (id),
    message_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    text TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT,
    created_at REAL NOT NULL,
    resolved_at REAL
);
CREATE INDEX reply_answers_by_reply ON reply_answers (reply_id);
""")


def _variants(db: sqlite3.Connection) -> None:
    """7 (reserved for issue 15's A/B variants): each ledger row keeps the variant it was sent as
    and the subject, HTML and text actually sent, so stats and the contact's log outlive edits;
    an index counts a step's sends per variant for the auto-winner. The send log marks first
    emails to new contacts, so the daily new-contact cap is rebuilt after a restart."""
    db.execute("ALTER TABLE outbox ADD COLUMN variant TEXT")
    db.execute("ALTER TABLE outbox ADD COLUMN body TEXT")
    db.execute("ALTER TABLE outbox ADD COLUMN text_body TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS outbox_by_step_variant ON outbox (step_id, variant)")
    db.execute("ALTER TABLE send_log ADD COLUMN first_email INTEGER NOT NULL DEFAULT 0")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_initial, _one_vocabulary, _bounce_column,
                                                          _mailbox_resumed_at, _webhooks, _reply_inbox, _variants]
LATEST = len(MIGRATIONS)


def current_version(db: sqlite3.Connection) -> int:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version == 0 and db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sequences'").fetchone():
        return 1  # made by main before migrations: exactly migration 1's schema
    return version


def migrate(db: sqlite3.Connection) -> int:
    """Bring the database to ``LATEST``; returns the version it was at. Refuses a newer one."""
    found = current_version(db)
    if found > LATEST:
        raise StoreError(
            f"database schema version {found} is newer than this dripd supports ({LATEST}):"
            " run the dripd that wrote it, or restore a backup", details={"schemaVersion": found, "supported": LATEST})
    if found == 1 and int(db.execute("PRAGMA user_version").fetchone()[0]) == 0:
        db.execute("PRAGMA user_version = 1")  # record what was recognised
    for version in range(found + 1, LATEST + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version - 1](db)
            db.execute(f"PRAGMA user_version = {version}")
            db.execute("COMMIT")
        except BaseException as exc:
            db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"schema migration {version} failed: {exc}",
                                 details={"migration": version, "sqlite": str(exc)}) from exc
            raise
    return found
