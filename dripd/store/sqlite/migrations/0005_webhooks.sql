-- 5: webhook endpoints and the durable webhook outbox (dripd/webhooks).
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a webhook-id names (event, endpoint)
    name TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    kinds TEXT NOT NULL,  -- '*' for every kind, else ',sent,replied,' (the trigger matches by instr)
    source TEXT NOT NULL,  -- 'config' | 'api'
    enabled INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT,
    retry_hours REAL NOT NULL,
    retry_first_seconds REAL NOT NULL,
    timeout_seconds REAL NOT NULL,
    concurrency INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id INTEGER PRIMARY KEY,
    endpoint_id INTEGER NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    retry_from REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    last_attempt_at REAL,
    last_status INTEGER,
    last_error TEXT,
    delivered_at REAL
);

CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (endpoint_id, status, next_attempt_at);

-- The outbox is written by the database in the same transaction as the event row, whichever
-- store operation wrote it: a committed event always has its deliveries, a rolled-back one none.
CREATE TRIGGER IF NOT EXISTS webhook_outbox AFTER INSERT ON events
WHEN EXISTS (SELECT 1 FROM webhook_endpoints)
BEGIN
    INSERT INTO webhook_deliveries (endpoint_id, event_id, created_at, retry_from, next_attempt_at)
    SELECT id, NEW.id, NEW.at, NEW.at, NEW.at FROM webhook_endpoints
    WHERE enabled = 1 AND (kinds = '*' OR instr(kinds, ',' || NEW.kind || ',') > 0);
END;
