-- A lead's external_id, phone and email are each unique among the leads that have one, as before; but their
-- indexes now hold only the leads that have one. The UNIQUE constraints of 0001 indexed every lead's NULLs as
-- well: a lead from a chat bot often has only an external_id, so two of its three index entries said nothing,
-- and every new lead paid for them (two B-tree inserts of the writer's fifteen or so). Its twin is
-- migrations/postgres/0011_partial_lead_identities.sql.
--
-- SQLite cannot drop a column's UNIQUE constraint, so the table is rebuilt as 0008 rebuilt api_keys, inside
-- the migration's transaction: with the check of foreign keys deferred to the commit, dropping the table
-- leaves the contacts pointing nowhere for a moment, and putting the same ids back into the new table named
-- leads repairs every reference before the commit, which checks that it did.
PRAGMA defer_foreign_keys = ON;
CREATE TEMP TABLE leads_before_0011 AS SELECT * FROM leads;
DROP TABLE leads;
CREATE TABLE leads (
    id          INTEGER PRIMARY KEY,
    external_id TEXT,
    phone       TEXT,
    email       TEXT,
    name        TEXT,
    created_at  TEXT NOT NULL
);
INSERT INTO leads (id, external_id, phone, email, name, created_at)
    SELECT id, external_id, phone, email, name, created_at FROM leads_before_0011;
DROP TABLE leads_before_0011;
-- Named as PostgreSQL names them, where a write that races another for one of these values is retried.
CREATE UNIQUE INDEX leads_external_id_key ON leads (external_id) WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX leads_phone_key ON leads (phone) WHERE phone IS NOT NULL;
CREATE UNIQUE INDEX leads_email_key ON leads (email) WHERE email IS NOT NULL;
