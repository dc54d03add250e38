-- The queue, the history of every contact, and webhooks with their outbox.
-- Its twin is migrations/postgres/0004_queue_history_webhooks.sql.

-- A source's queue: its unassigned active contacts, oldest (lowest id) first.
CREATE INDEX contacts_waiting ON contacts (source_id, id) WHERE operator_id IS NULL AND status = 'active';

-- Every assignment, reassignment and status change. Operator ids are kept as they were, without a foreign
-- key: the history outlives the operators it names.
CREATE TABLE contact_history (
    id               INTEGER PRIMARY KEY,
    contact_id       INTEGER NOT NULL REFERENCES contacts (id),
    at               TEXT    NOT NULL,
    event            TEXT    NOT NULL,
    from_operator_id INTEGER,
    to_operator_id   INTEGER,
    from_status      TEXT,
    to_status        TEXT    NOT NULL,
    reason           TEXT    NOT NULL,
    -- The API key that made a manual change.
    api_key_id       INTEGER
);
CREATE INDEX contact_history_contact ON contact_history (contact_id, id);

CREATE TABLE webhooks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    url        TEXT NOT NULL,
    -- The event types it receives, comma-separated.
    events     TEXT NOT NULL,
    -- Kept as it is: signing needs it.
    secret     TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- The outbox: events, written in the transaction of the change they report, and one delivery per webhook.
CREATE TABLE webhook_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    type       TEXT NOT NULL,
    -- The event's `data`, JSON.
    data       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id       INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         INTEGER NOT NULL REFERENCES webhook_events (id),
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempt_count    INTEGER NOT NULL DEFAULT 0,
    -- Pending: when the next attempt is due (Unix milliseconds). While an instance sends it, the end of that
    -- instance's lease, after which another may send it again.
    due_at_ms        INTEGER,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       TEXT    NOT NULL,
    delivered_at     TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (due_at_ms) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

CREATE TABLE webhook_attempts (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    at          TEXT    NOT NULL,
    status_code INTEGER,
    error       TEXT,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);

-- The sweep forgets idempotency keys past their window.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
