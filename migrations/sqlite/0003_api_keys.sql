-- API keys: only a SHA-256 of each token is kept. Its twin is migrations/postgres/0003_api_keys.sql.
CREATE TABLE api_keys (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL CHECK (scope IN ('admin', 'ingest', 'read')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

-- Which key created a contact, so that an ingest key reads back its own contacts and nothing else.
ALTER TABLE contacts ADD COLUMN created_by_key_id INTEGER REFERENCES api_keys (id);
