-- Operator keys: the `operator` scope, and the operator such a key is bound to. Its twin is
-- migrations/postgres/0008_operator_keys.sql.
--
-- SQLite cannot change a CHECK constraint, so the table is rebuilt, inside the migration's transaction (where
-- `PRAGMA foreign_keys = OFF` would be ignored). contacts.created_by_key_id refers to api_keys: with the check
-- of foreign keys deferred to the commit, dropping the table leaves those contacts pointing nowhere for a
-- moment, and putting the same ids back into the new table named api_keys repairs every reference before the
-- commit, which checks that it did. (Renaming a new table into place instead would not: with foreign keys on,
-- SQLite moves the references along with a renamed table.)
--
-- operator_id is deliberately not a foreign key: a key keeps naming its operator after the operator is
-- deleted (as the history keeps operator ids), so that it can be refused with a detail that says why.
-- Operator ids are never reused (AUTOINCREMENT), so such a key can never act for another operator.
PRAGMA defer_foreign_keys = ON;
CREATE TEMP TABLE api_keys_before_0008 AS SELECT * FROM api_keys;
DROP TABLE api_keys;
CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    scope       TEXT NOT NULL CHECK (scope IN ('admin', 'ingest', 'read', 'operator')),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT,
    operator_id INTEGER,
    CHECK ((scope = 'operator') = (operator_id IS NOT NULL))
);
INSERT INTO api_keys (id, name, scope, token_hash, created_at, revoked_at)
    SELECT id, name, scope, token_hash, created_at, revoked_at FROM api_keys_before_0008;
DROP TABLE api_keys_before_0008;
