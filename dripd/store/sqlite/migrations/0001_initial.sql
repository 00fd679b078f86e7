-- Migration 1: the schema of dripd before versioned migrations (main at ca8c8a1). Never edit:
-- a database made by that main is recognised as this version. Changes are further migrations.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS sequences (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    mailbox_id TEXT NOT NULL,
    status TEXT NOT NULL,
    settings TEXT NOT NULL,            -- JSON of model.SequenceSettings
    status_reason TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sequences_by_name ON sequences (name);

CREATE TABLE IF NOT EXISTS steps (
    id INTEGER PRIMARY KEY,
    sequence_id INTEGER NOT NULL REFERENCES sequences (id),
    ord INTEGER NOT NULL,              -- stable position key; never reused within a sequence
    type TEXT NOT NULL,
    data TEXT NOT NULL,                -- JSON of the step's fields
    deleted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (sequence_id, ord)
);

CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    company TEXT NOT NULL DEFAULT '',
    fields TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS lists (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS list_members (
    list_id INTEGER NOT NULL REFERENCES lists (id),
    contact_id INTEGER NOT NULL REFERENCES contacts (id),
    PRIMARY KEY (list_id, contact_id)
);

CREATE TABLE IF NOT EXISTS enrollments (
    id INTEGER PRIMARY KEY,
    sequence_id INTEGER NOT NULL REFERENCES sequences (id),
    contact_id INTEGER NOT NULL REFERENCES contacts (id),
    mailbox_id TEXT NOT NULL,
    status TEXT NOT NULL,
    cursor_ord INTEGER NOT NULL DEFAULT 0,
    anchor_at REAL,                    -- when the contact reached its cursor; waits count from here
    due_at REAL,                       -- planned time of the next step, kept while held
    next_run_at REAL,                  -- the scheduler's key: due_at while runnable, else NULL
    merge_fields TEXT NOT NULL DEFAULT '{}',
    sent_count INTEGER NOT NULL DEFAULT 0,
    enrolled_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_event_at REAL,
    ended_at REAL,
    end_reason TEXT
);
-- A contact is active in a sequence at most once at a time (seed 003).
CREATE UNIQUE INDEX IF NOT EXISTS enrollments_one_active
    ON enrollments (sequence_id, contact_id) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS enrollments_due
    ON enrollments (mailbox_id, next_run_at, id) WHERE next_run_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS enrollments_by_sequence ON enrollments (sequence_id, status);
CREATE INDEX IF NOT EXISTS enrollments_by_contact ON enrollments (contact_id, status);

-- The ledger: one row per (enrollment, step), committed before the transport is called.
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    enrollment_id INTEGER NOT NULL REFERENCES enrollments (id),
    step_id INTEGER NOT NULL REFERENCES steps (id),
    mailbox_id TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    status TEXT NOT NULL,              -- sending | sent | retry | failed | uncertain
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    attempted_at REAL NOT NULL,
    resolved_at REAL,
    detail TEXT,
    UNIQUE (enrollment_id, step_id)
);
CREATE INDEX IF NOT EXISTS outbox_unresolved ON outbox (status) WHERE status IN ('sending', 'uncertain');

CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    kind TEXT NOT NULL,                -- sent, retry, bounced, replied, auto_reply, opened, ...
    mailbox_id TEXT,
    sequence_id INTEGER,
    enrollment_id INTEGER,
    contact_id INTEGER,
    step_id INTEGER,
    outbox_id INTEGER,
    flagged INTEGER NOT NULL DEFAULT 0, -- prefetcher / scanner hits: recorded, not counted
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_by_enrollment ON events (enrollment_id, kind);
CREATE INDEX IF NOT EXISTS events_by_sequence ON events (sequence_id, kind);
CREATE INDEX IF NOT EXISTS events_by_outbox ON events (outbox_id, kind) WHERE outbox_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS suppressions (
    email TEXT PRIMARY KEY,
    reason TEXT NOT NULL,              -- bounced | unsubscribed | complaint
    at REAL NOT NULL,
    detail TEXT
);

-- Every send attempt per mailbox, so caps hold across restarts. Pruned after two days.
CREATE TABLE IF NOT EXISTS send_log (mailbox_id TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS send_log_by_mailbox ON send_log (mailbox_id, at);

CREATE TABLE IF NOT EXISTS mailbox_state (
    mailbox_id TEXT PRIMARY KEY,
    paused_reason TEXT,
    paused_at REAL
);

-- Small durable state for plugins (e.g. an IMAP detector's UIDVALIDITY and last UID).
CREATE TABLE IF NOT EXISTS plugin_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
