//! Every statement leadrouter runs, written once. SQLite and PostgreSQL both accept `$N` placeholders and the
//! SQL below; where the dialects differ, the two versions stand side by side (`…_SQLITE`, `…_POSTGRES`).
//! Both the sqlx connections ([`super::conn`]) and SQLite's writer ([`super::sqlite_tx`]) run these strings.

// ---- operators ----

pub const OPERATORS_PAGE: &str = "SELECT id, name, is_active, max_load, active_load, created_at FROM operators \
     ORDER BY id LIMIT $1 OFFSET $2";

pub const OPERATOR_LOADS: &str = "SELECT id, active_load, max_load FROM operators ORDER BY id";

pub const OPERATOR_BY_ID: &str =
    "SELECT id, name, is_active, max_load, active_load, created_at FROM operators WHERE id = $1";

pub const OPERATOR_BY_ID_FOR_UPDATE_POSTGRES: &str = "SELECT id, name, is_active, max_load, active_load, created_at FROM operators WHERE id = $1 FOR UPDATE";

pub const INSERT_OPERATOR: &str = "INSERT INTO operators (name, is_active, max_load, created_at) \
     VALUES ($1, $2, $3, $4) RETURNING id, name, is_active, max_load, active_load, created_at";

pub const UPDATE_OPERATOR: &str = "UPDATE operators SET name = COALESCE($2, name), \
     is_active = COALESCE($3, is_active), max_load = COALESCE($4, max_load) WHERE id = $1 \
     RETURNING id, name, is_active, max_load, active_load, created_at";

pub const DELETE_OPERATOR: &str = "DELETE FROM operators WHERE id = $1";

/// Takes one unit of the operator's capacity if, as committed right now, the operator is active and below
/// max_load. This conditional update is what keeps max_load exact under concurrency, across processes too:
/// PostgreSQL re-checks the condition on the latest row version after waiting for a concurrent writer.
pub const CLAIM_CAPACITY: &str = "UPDATE operators SET active_load = active_load + 1 \
     WHERE id = $1 AND is_active AND active_load < max_load \
     RETURNING id, name, is_active, max_load, active_load, created_at";

/// No clamping: a load that would go below 0 means the counter drifted, which the CHECK constraint reports.
pub const ADJUST_LOAD: &str = "UPDATE operators SET active_load = active_load + $2 WHERE id = $1";

// ---- sources and weights ----

pub const SOURCES_PAGE: &str = "SELECT id, name, description, created_at FROM sources \
     WHERE deleted_at IS NULL ORDER BY id LIMIT $1 OFFSET $2";

pub const SOURCE_BY_ID: &str =
    "SELECT id, name, description, created_at FROM sources WHERE id = $1 AND deleted_at IS NULL";

pub const SOURCE_BY_ID_FOR_SHARE_POSTGRES: &str = "SELECT id, name, description, created_at FROM sources \
     WHERE id = $1 AND deleted_at IS NULL FOR SHARE";

pub const SOURCE_BY_NAME: &str =
    "SELECT id, name, description, created_at FROM sources WHERE name = $1 AND deleted_at IS NULL";

pub const INSERT_SOURCE: &str = "INSERT INTO sources (name, description, created_at) VALUES ($1, $2, $3) \
     RETURNING id, name, description, created_at";

/// `$3` says whether to set the description to `$4` (which may be NULL, clearing it).
pub const UPDATE_SOURCE: &str = "UPDATE sources SET name = COALESCE($2, name), \
     description = CASE WHEN $3 THEN $4 ELSE description END \
     WHERE id = $1 AND deleted_at IS NULL RETURNING id, name, description, created_at";

pub const RETIRE_SOURCE: &str =
    "UPDATE sources SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL";

pub const WEIGHTS_OF_SOURCE: &str = "SELECT w.id, w.source_id, w.operator_id, w.weight, o.name AS operator_name \
     FROM source_operator_weights w JOIN operators o ON o.id = w.operator_id \
     WHERE w.source_id = $1 ORDER BY w.operator_id";

pub const WEIGHT: &str = "SELECT id, source_id, operator_id, weight FROM source_operator_weights \
     WHERE source_id = $1 AND operator_id = $2";

pub const INSERT_WEIGHT: &str = "INSERT INTO source_operator_weights (source_id, operator_id, weight) \
     VALUES ($1, $2, $3) RETURNING id, source_id, operator_id, weight";

pub const UPDATE_WEIGHT: &str = "UPDATE source_operator_weights SET weight = $3 \
     WHERE source_id = $1 AND operator_id = $2 RETURNING id, source_id, operator_id, weight";

pub const DELETE_WEIGHT: &str =
    "DELETE FROM source_operator_weights WHERE source_id = $1 AND operator_id = $2";

pub const DELETE_WEIGHTS_OF_SOURCE: &str =
    "DELETE FROM source_operator_weights WHERE source_id = $1";

/// The operators that may take a contact of the source now: linked, active, below max_load.
pub const CANDIDATES: &str = "SELECT w.operator_id, w.weight, o.max_load - o.active_load AS free_slots \
     FROM source_operator_weights w \
     JOIN operators o ON o.id = w.operator_id \
     WHERE w.source_id = $1 AND o.is_active AND o.active_load < o.max_load ORDER BY w.operator_id";

// ---- leads ----

/// Every lead holding any of the identifiers: at most three, one per identifier.
pub const LEADS_MATCHING: &str = "SELECT id, external_id, phone, email, name, created_at FROM leads \
     WHERE external_id = $1 OR phone = $2 OR email = $3 ORDER BY id";

pub const INSERT_LEAD: &str = "INSERT INTO leads (external_id, phone, email, name, created_at) \
     VALUES ($1, $2, $3, $4, $5) RETURNING id, external_id, phone, email, name, created_at";

/// Sets the lead's empty fields; fields it already has stay as they are.
pub const FILL_LEAD: &str = "UPDATE leads SET external_id = COALESCE(external_id, $2), \
     phone = COALESCE(phone, $3), email = COALESCE(email, $4), name = COALESCE(name, $5) \
     WHERE id = $1 RETURNING id, external_id, phone, email, name, created_at";

pub const LEAD_BY_ID: &str =
    "SELECT id, external_id, phone, email, name, created_at FROM leads WHERE id = $1";

// ---- contacts ----

pub const INSERT_CONTACT: &str = "INSERT INTO contacts \
     (lead_id, source_id, operator_id, status, message, created_at, created_by_key_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";

/// Which API key created the contact (NULL: none, or created while the API was open).
pub const CONTACT_CREATOR: &str = "SELECT created_by_key_id FROM contacts WHERE id = $1";

/// A contact joined with its lead, source and operator; callers append WHERE, ORDER BY and LIMIT.
pub const CONTACT_SELECT: &str = "SELECT c.id, c.lead_id, c.source_id, c.operator_id, c.status, c.message, \
     c.created_at, l.external_id AS lead_external_id, l.phone AS lead_phone, l.email AS lead_email, \
     l.name AS lead_name, l.created_at AS lead_created_at, s.name AS source_name, \
     s.description AS source_description, s.created_at AS source_created_at, o.name AS operator_name, \
     o.is_active AS operator_is_active, o.max_load AS operator_max_load, \
     o.active_load AS operator_active_load, o.created_at AS operator_created_at \
     FROM contacts c JOIN leads l ON l.id = c.lead_id JOIN sources s ON s.id = c.source_id \
     LEFT JOIN operators o ON o.id = c.operator_id";

pub const CONTACT_STATE: &str = "SELECT source_id, operator_id, status FROM contacts WHERE id = $1";
pub const CONTACT_STATE_FOR_UPDATE_POSTGRES: &str =
    "SELECT source_id, operator_id, status FROM contacts WHERE id = $1 FOR UPDATE";

pub const SET_CONTACT_STATUS: &str = "UPDATE contacts SET status = $2 WHERE id = $1";

/// Returns the contacts it changed, as they are about to be recorded in their history.
pub const UNASSIGN_CONTACTS_OF: &str = "UPDATE contacts SET operator_id = NULL WHERE operator_id = $1 \
     RETURNING id, source_id, status";

// ---- contact counts (what the stats read) ----

pub const COUNT_CONTACTS: &str = "INSERT INTO contact_counts (source_id, operator_id, status, contacts) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (source_id, operator_id, status) \
     DO UPDATE SET contacts = contact_counts.contacts + excluded.contacts RETURNING contacts";

pub const MERGE_COUNTS_INTO_UNASSIGNED: &str = "INSERT INTO contact_counts \
     (source_id, operator_id, status, contacts) \
     SELECT source_id, 0, status, contacts FROM contact_counts WHERE operator_id = $1 \
     ON CONFLICT (source_id, operator_id, status) \
     DO UPDATE SET contacts = contact_counts.contacts + excluded.contacts";

pub const DELETE_COUNTS_OF_OPERATOR: &str = "DELETE FROM contact_counts WHERE operator_id = $1";

pub const SOURCE_TALLIES: &str = "SELECT cc.operator_id, o.name AS operator_name, \
     CAST(SUM(cc.contacts) AS BIGINT) AS contacts, \
     CAST(SUM(CASE WHEN cc.status = 'active' THEN cc.contacts ELSE 0 END) AS BIGINT) AS active_contacts \
     FROM contact_counts cc LEFT JOIN operators o ON o.id = cc.operator_id \
     WHERE cc.source_id = $1 GROUP BY cc.operator_id, o.name ORDER BY cc.operator_id";

pub const OPERATOR_TALLIES: &str = "SELECT cc.source_id, s.name AS source_name, cc.status, cc.contacts \
     FROM contact_counts cc JOIN sources s ON s.id = cc.source_id \
     WHERE cc.operator_id = $1 AND cc.contacts > 0 ORDER BY cc.source_id, cc.status";

// ---- idempotency keys ----

pub const IDEMPOTENT_REQUEST: &str = "SELECT fingerprint, contact_id, created_at FROM idempotency_keys WHERE client = $1 AND key = $2";

pub const FORGET_IDEMPOTENT_REQUEST: &str =
    "DELETE FROM idempotency_keys WHERE client = $1 AND key = $2";

/// A plain INSERT, not an upsert: two requests racing with one key must collide here, so that one of them is
/// rolled back (and, retried, replays the other's answer).
pub const REMEMBER_IDEMPOTENT_REQUEST: &str = "INSERT INTO idempotency_keys \
     (client, key, fingerprint, contact_id, created_at) VALUES ($1, $2, $3, $4, $5)";

// ---- API keys ----

pub const API_KEYS: &str =
    "SELECT id, name, scope, created_at, revoked_at FROM api_keys ORDER BY id";

/// In one round trip: the live key with this token hash, if any, and whether any key was ever created (until
/// one is, the API is open; revoking every key later does not open it again).
pub const AUTHENTICATE: &str = "SELECT \
     (SELECT id FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL) AS key_id, \
     (SELECT scope FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL) AS scope, \
     EXISTS (SELECT 1 FROM api_keys) AS keys_exist";

pub const INSERT_API_KEY: &str = "INSERT INTO api_keys (name, scope, token_hash, created_at) \
     VALUES ($1, $2, $3, $4) RETURNING id, name, scope, created_at, revoked_at";

/// Revokes by id, or by name when `$1` is not a number.
pub const REVOKE_API_KEY: &str = "UPDATE api_keys SET revoked_at = $3 \
     WHERE (id = $1 OR name = $2) AND revoked_at IS NULL";

// ---- the queue ----

/// A source's waiting contacts, oldest first.
pub const WAITING_CONTACTS: &str = "SELECT id FROM contacts \
     WHERE source_id = $1 AND operator_id IS NULL AND status = 'active' ORDER BY id LIMIT $2";

/// The contact, if it still waits: on PostgreSQL locked for this transaction, unless another one holds it (a
/// concurrent drain about to assign it, a change by hand), in which case it is left to that one.
pub const LOCK_WAITING_CONTACT: &str =
    "SELECT id FROM contacts WHERE id = $1 AND operator_id IS NULL AND status = 'active'";
pub const LOCK_WAITING_CONTACT_POSTGRES: &str = "SELECT id FROM contacts \
     WHERE id = $1 AND operator_id IS NULL AND status = 'active' FOR UPDATE SKIP LOCKED";

/// A page of a source's queue, oldest first.
pub const QUEUE_PAGE_WHERE: &str = " WHERE c.source_id = $1 AND c.operator_id IS NULL AND c.status = 'active' \
     ORDER BY c.id LIMIT $2 OFFSET $3";

/// How many contacts of the source wait ahead of `$2`, or with it.
pub const QUEUE_POSITION: &str = "SELECT COUNT(*) FROM contacts \
     WHERE source_id = $1 AND operator_id IS NULL AND status = 'active' AND id <= $2";

/// The source's waiting contacts from `$2` to `$3`, in order: the positions of a list's waiting contacts come
/// from one count and this range, rather than a count per contact.
pub const WAITING_BETWEEN: &str = "SELECT id FROM contacts \
     WHERE source_id = $1 AND operator_id IS NULL AND status = 'active' AND id BETWEEN $2 AND $3 ORDER BY id";

/// The live sources with a waiting contact: what the sweep drains.
pub const SOURCES_WITH_WAITING: &str = "SELECT s.id FROM sources s WHERE s.deleted_at IS NULL AND EXISTS \
     (SELECT 1 FROM contacts c WHERE c.source_id = s.id AND c.operator_id IS NULL AND c.status = 'active') \
     ORDER BY s.id";

/// The live sources an operator is linked to.
pub const SOURCES_OF_OPERATOR: &str = "SELECT w.source_id FROM source_operator_weights w \
     JOIN sources s ON s.id = w.source_id WHERE w.operator_id = $1 AND s.deleted_at IS NULL ORDER BY w.source_id";

pub const ASSIGN_CONTACT: &str = "UPDATE contacts SET operator_id = $2 WHERE id = $1";

// ---- history ----

pub const INSERT_HISTORY: &str = "INSERT INTO contact_history (contact_id, at, event, from_operator_id, \
     to_operator_id, from_status, to_status, reason, api_key_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     RETURNING id, contact_id, at, event, from_operator_id, to_operator_id, from_status, to_status, reason, \
     api_key_id";

pub const HISTORY_OF_CONTACT: &str = "SELECT id, contact_id, at, event, from_operator_id, to_operator_id, \
     from_status, to_status, reason, api_key_id FROM contact_history WHERE contact_id = $1 ORDER BY id \
     LIMIT $2 OFFSET $3";

pub const CONTACT_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM contacts WHERE id = $1)";

// ---- webhooks and their outbox ----

pub const WEBHOOKS: &str = "SELECT id, url, events, created_at FROM webhooks ORDER BY id";

pub const WEBHOOK_BY_ID: &str = "SELECT id, url, events, created_at FROM webhooks WHERE id = $1";

/// Every webhook's id and event types: which of them an event goes to.
pub const WEBHOOK_SUBSCRIPTIONS: &str = "SELECT id, events FROM webhooks ORDER BY id";

pub const WEBHOOKS_EXIST: &str = "SELECT EXISTS (SELECT 1 FROM webhooks)";

pub const INSERT_WEBHOOK: &str = "INSERT INTO webhooks (url, events, secret, created_at) \
     VALUES ($1, $2, $3, $4) RETURNING id, url, events, created_at";

/// Its deliveries and their attempts go with it (ON DELETE CASCADE).
pub const DELETE_WEBHOOK: &str = "DELETE FROM webhooks WHERE id = $1";

pub const INSERT_EVENT: &str =
    "INSERT INTO webhook_events (type, data, created_at) VALUES ($1, $2, $3) RETURNING id";

pub const INSERT_DELIVERY: &str = "INSERT INTO webhook_deliveries \
     (webhook_id, event_id, state, due_at_ms, created_at) VALUES ($1, $2, 'pending', $3, $4)";

/// A delivery as the API shows it; callers append WHERE, ORDER BY and LIMIT.
pub const DELIVERY_SELECT: &str = "SELECT d.id, d.webhook_id, d.event_id, e.type AS event_type, d.state, \
     d.attempt_count, d.due_at_ms, d.last_status_code, d.last_error, d.created_at, d.delivered_at \
     FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id";

pub const DELIVERY_ATTEMPTS: &str = "SELECT attempt, at, status_code, error, duration_ms \
     FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt";

/// Leases the deliveries due by `$1` until `$2`, so that no other sender takes them meanwhile; should this
/// instance die while sending, the lease runs out and another sends them again (at least once).
pub const CLAIM_DELIVERIES_SQLITE: &str = "UPDATE webhook_deliveries SET due_at_ms = $2 WHERE id IN \
     (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND due_at_ms <= $1 \
     ORDER BY due_at_ms, id LIMIT $3) RETURNING id";

pub const CLAIM_DELIVERIES_POSTGRES: &str = "UPDATE webhook_deliveries SET due_at_ms = $2 WHERE id IN \
     (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND due_at_ms <= $1 \
     ORDER BY due_at_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING id";

/// What sending a delivery takes.
pub const DELIVERY_JOB: &str = "SELECT d.id, d.attempt_count, w.url, w.secret, e.id AS event_id, \
     e.type AS event_type, e.data, e.created_at AS event_created_at \
     FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
     JOIN webhook_events e ON e.id = d.event_id WHERE d.id = $1";

pub const INSERT_ATTEMPT: &str = "INSERT INTO webhook_attempts \
     (delivery_id, attempt, at, status_code, error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6)";

/// Records the outcome of an attempt: `$2` the new state, `$4` the next due time (pending only).
pub const UPDATE_DELIVERY: &str = "UPDATE webhook_deliveries SET state = $2, attempt_count = $3, \
     due_at_ms = $4, last_status_code = $5, last_error = $6, delivered_at = $7 WHERE id = $1";

/// Makes a delivery of the webhook pending and due at `$3` (a failed one, sent again by hand).
pub const RETRY_DELIVERY: &str = "UPDATE webhook_deliveries SET state = 'pending', due_at_ms = $3 \
     WHERE id = $2 AND webhook_id = $1";

// ---- housekeeping ----

pub const PURGE_IDEMPOTENCY_KEYS: &str = "DELETE FROM idempotency_keys WHERE created_at < $1";

/// Deliveries done with (delivered, or failed for good) before `$1`; their attempts go with them.
pub const PURGE_DELIVERIES: &str =
    "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND created_at < $1";

/// Events before `$1` that no delivery refers to any more.
pub const PURGE_EVENTS: &str = "DELETE FROM webhook_events WHERE created_at < $1 AND NOT EXISTS \
     (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)";
