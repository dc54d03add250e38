-- Idempotent POST /contacts/: a key (per client) remembers the contact it created and the request that did.
-- Its twin is migrations/sqlite/0002_idempotency.sql.
CREATE TABLE idempotency_keys (
    client      TEXT        NOT NULL,
    key         TEXT        NOT NULL,
    -- SHA-256 of the normalised request: the same key with another request is refused.
    fingerprint TEXT        NOT NULL,
    contact_id  BIGINT      NOT NULL REFERENCES contacts (id),
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (client, key)
);
