-- Operator keys: the `operator` scope, and the operator such a key is bound to. Its twin is
-- migrations/sqlite/0008_operator_keys.sql.
--
-- operator_id is deliberately not a foreign key: a key keeps naming its operator after the operator is
-- deleted (as the history keeps operator ids), so that it can be refused with a detail that says why.
-- Operator ids are never reused (identity columns), so such a key can never act for another operator.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_scope_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scope_check
    CHECK (scope IN ('admin', 'ingest', 'read', 'operator'));
ALTER TABLE api_keys ADD COLUMN operator_id BIGINT;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_operator_check
    CHECK ((scope = 'operator') = (operator_id IS NOT NULL));
