-- A lead's external_id, phone and email are each unique among the leads that have one, as before; but their
-- indexes now hold only the leads that have one. The UNIQUE constraints of 0001 indexed every lead's NULLs as
-- well: a lead from a chat bot often has only an external_id, so two of its three index entries said nothing,
-- and every new lead paid for them. Its twin is migrations/sqlite/0011_partial_lead_identities.sql.
--
-- The indexes keep the constraints' names: a write that races another for one of these values is told by
-- that name that it may be retried (backend.rs, RACED_UNIQUE_CONSTRAINTS).
ALTER TABLE leads
    DROP CONSTRAINT leads_external_id_key,
    DROP CONSTRAINT leads_phone_key,
    DROP CONSTRAINT leads_email_key;
CREATE UNIQUE INDEX leads_external_id_key ON leads (external_id) WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX leads_phone_key ON leads (phone) WHERE phone IS NOT NULL;
CREATE UNIQUE INDEX leads_email_key ON leads (email) WHERE email IS NOT NULL;
