-- Per-source work rules (what happens to an operator's contacts when they stop accepting, returning leads, an
-- accept timeout), and when each contact was assigned and accepted. Its twin is
-- migrations/sqlite/0007_work_rules.sql. Existing sources keep the old behaviour: keep, not sticky, no timeout.
ALTER TABLE sources ADD COLUMN on_operator_unavailable TEXT NOT NULL DEFAULT 'keep'
    CHECK (on_operator_unavailable IN ('keep', 'requeue'));
ALTER TABLE sources ADD COLUMN sticky_hours BIGINT NOT NULL DEFAULT 0 CHECK (sticky_hours >= 0);
ALTER TABLE sources ADD COLUMN accept_timeout_secs BIGINT NOT NULL DEFAULT 0 CHECK (accept_timeout_secs >= 0);

-- When the current operator got the contact (NULL while it has none), when they accepted it, and by when
-- they must, if its source has an accept timeout (NULL once accepted, closed or without a timeout).
ALTER TABLE contacts ADD COLUMN assigned_at TIMESTAMPTZ;
ALTER TABLE contacts ADD COLUMN accepted_at TIMESTAMPTZ;
ALTER TABLE contacts ADD COLUMN accept_deadline TIMESTAMPTZ;
-- The best that is known of the contacts assigned before: since they were created.
UPDATE contacts SET assigned_at = created_at WHERE operator_id IS NOT NULL;
CREATE INDEX contacts_accept_deadline ON contacts (accept_deadline) WHERE accept_deadline IS NOT NULL;
-- Returning leads are found through contacts_lead (a lead has few contacts): no index of their own, which
-- every contact would pay for.

-- The operators a contact is never given to again automatically: they declined it or let it time out.
CREATE TABLE contact_refusals (
    contact_id  BIGINT  NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    operator_id BIGINT  NOT NULL,
    reason      TEXT    NOT NULL CHECK (reason IN ('declined', 'accept_timeout')),
    at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (contact_id, operator_id)
);
