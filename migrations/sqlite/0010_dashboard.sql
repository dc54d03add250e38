-- The dashboard: its sign-in sessions, and since when each operator has had their availability. Its twin is
-- migrations/postgres/0010_dashboard.sql.

-- A browser signed in with an API key. The cookie holds a random token; only its hash is kept. A session is
-- as good as its key: revoking the key ends it. `csrf_token` is the session's second secret, which the pages
-- send back in a header with every change they ask for.
CREATE TABLE ui_sessions (
    token_hash  TEXT    PRIMARY KEY,
    key_id      INTEGER NOT NULL REFERENCES api_keys (id),
    csrf_token  TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL
);
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at);

-- When the operator last changed their availability; NULL: not since they were created.
ALTER TABLE operators ADD COLUMN availability_changed_at TEXT;
