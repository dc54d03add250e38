-- Operators at work: their own availability, their weekly schedule in their time zone, and their time off.
-- Its twin is migrations/postgres/0006_availability.sql. Existing operators stay available, always on shift.
ALTER TABLE operators ADD COLUMN availability TEXT NOT NULL DEFAULT 'available'
    CHECK (availability IN ('available', 'away', 'offline'));
ALTER TABLE operators ADD COLUMN away_until TEXT;
ALTER TABLE operators ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
-- NULL: always on shift; otherwise a JSON list of {"days", "start", "end"}.
ALTER TABLE operators ADD COLUMN schedule TEXT;

CREATE TABLE operator_time_off (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    operator_id INTEGER NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    starts_at   TEXT    NOT NULL,
    ends_at     TEXT    NOT NULL,
    reason      TEXT,
    created_at  TEXT    NOT NULL
);
CREATE INDEX operator_time_off_operator ON operator_time_off (operator_id);
