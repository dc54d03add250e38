-- The audit trail: every change an admin makes (through the API or the `keys` CLI), written in the change's
-- own transaction. Its twin is migrations/postgres/0005_audit_log.sql.
-- Ids of keys and targets are kept as they were, without foreign keys: the trail outlives what it names.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT    NOT NULL,
    -- The API key that made the change; NULL while the API was open, and for the CLI.
    key_id      INTEGER,
    -- "key 3", "open" or "cli".
    actor       TEXT    NOT NULL,
    -- `operator.updated`, `weight.set`, …
    action      TEXT    NOT NULL,
    target_type TEXT    NOT NULL,
    target_id   INTEGER NOT NULL,
    -- The target's values before and after, JSON (never a secret); NULL before a creation, after a deletion.
    before      TEXT,
    after       TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id);
CREATE INDEX audit_log_key ON audit_log (key_id);
