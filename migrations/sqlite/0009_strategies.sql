-- Routing strategies per source, the smooth strategy's round, when each operator last got a contact, and the
-- record of every automatic assignment attempt. Its twin is migrations/postgres/0009_strategies.sql.
-- Existing sources keep the specification's weighted random choice.
ALTER TABLE sources ADD COLUMN strategy TEXT NOT NULL DEFAULT 'weighted_random'
    CHECK (strategy IN ('weighted_random', 'smooth_weighted', 'least_loaded'));
-- smooth_weighted's current round (members, weights and credits) as JSON; NULL before its first choice.
ALTER TABLE sources ADD COLUMN strategy_round TEXT;

-- least_loaded's last tie-break: whose last assignment is oldest.
ALTER TABLE operators ADD COLUMN last_assigned_at TEXT;
UPDATE operators SET last_assigned_at =
    (SELECT MAX(c.assigned_at) FROM contacts c WHERE c.operator_id = operators.id);

-- One row per automatic assignment attempt. `record` holds, compactly, the candidates (operator, weight,
-- load, max_load, probability), the excluded operators with why, and what the strategy used; names are
-- joined when read. Kept as long as the contact (contacts are never deleted).
CREATE TABLE routing_decisions (
    id                 INTEGER PRIMARY KEY,
    contact_id         INTEGER NOT NULL REFERENCES contacts (id),
    source_id          INTEGER NOT NULL,
    at                 TEXT    NOT NULL,
    reason             TEXT    NOT NULL,
    strategy           TEXT    NOT NULL,
    chosen_operator_id INTEGER,
    record             TEXT    NOT NULL
);
-- A contact's decisions are found through the history entries that point to them (contact_history_contact):
-- no index of their own, which every new contact would pay for. Fairness over a window, and the queue's
-- recent pace:
CREATE INDEX routing_decisions_source_at ON routing_decisions (source_id, at);

-- The decision behind a history entry: the one that made it, or, for a contact requeued when its operator
-- stopped and left waiting, the one that found nobody after.
ALTER TABLE contact_history ADD COLUMN decision_id INTEGER;
