-- leadrouter schema, SQLite dialect. Its twin is migrations/postgres/0001_schema.sql.
-- Timestamps are RFC 3339 text in UTC. Operators and sources use AUTOINCREMENT so that a deleted id is
-- never handed to a new row.

CREATE TABLE operators (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    is_active   BOOLEAN NOT NULL DEFAULT 1,
    max_load    INTEGER NOT NULL CHECK (max_load >= 0),
    -- Number of this operator's contacts in status 'active', kept in the transaction that changes it.
    active_load INTEGER NOT NULL DEFAULT 0 CHECK (active_load >= 0),
    created_at  TEXT    NOT NULL
);

CREATE TABLE sources (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  TEXT NOT NULL,
    -- Deleted sources are kept so that their contacts keep their history.
    deleted_at  TEXT
);
CREATE UNIQUE INDEX sources_live_name ON sources (name) WHERE deleted_at IS NULL;

CREATE TABLE source_operator_weights (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id   INTEGER NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    operator_id INTEGER NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    weight      REAL    NOT NULL CHECK (weight > 0),
    UNIQUE (source_id, operator_id)
);
CREATE INDEX source_operator_weights_operator ON source_operator_weights (operator_id);

CREATE TABLE leads (
    id          INTEGER PRIMARY KEY,
    external_id TEXT UNIQUE,
    phone       TEXT UNIQUE,
    email       TEXT UNIQUE,
    name        TEXT,
    created_at  TEXT NOT NULL
);

CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY,
    lead_id     INTEGER NOT NULL REFERENCES leads (id),
    source_id   INTEGER NOT NULL REFERENCES sources (id),
    operator_id INTEGER REFERENCES operators (id) ON DELETE SET NULL,
    status      TEXT    NOT NULL DEFAULT 'active',
    message     TEXT,
    created_at  TEXT    NOT NULL
);
-- Every list filter walks one of these newest-first (highest id first) and stops after its page.
CREATE INDEX contacts_lead ON contacts (lead_id, id);
CREATE INDEX contacts_source ON contacts (source_id, id);
CREATE INDEX contacts_operator ON contacts (operator_id, id);
CREATE INDEX contacts_status ON contacts (status, id);

-- How many contacts each (source, operator, status) has: the stats read this, never the contacts.
-- operator_id 0 stands for "unassigned" so that the key has no NULL in it.
CREATE TABLE contact_counts (
    source_id   INTEGER NOT NULL,
    operator_id INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    contacts    INTEGER NOT NULL,
    PRIMARY KEY (source_id, operator_id, status)
);
CREATE INDEX contact_counts_operator ON contact_counts (operator_id);
