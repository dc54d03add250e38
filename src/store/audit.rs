//! The audit trail: every change an admin makes — through the API or with the `keys` CLI — to operators,
//! sources, weights, operators' time off, webhooks, API keys, and the manual assignment of contacts, is written down in the
//! change's own transaction: when, by whom (a key, `open` while no key exists, or `cli`), what, to which
//! target, and the target's values before and after. Either the change and its entry are both committed, or
//! neither is. Secrets never enter it: a webhook's secret and a key's token hash are not among the values
//! kept. Contacts posted by bots and their status changes are not admin changes; their history is
//! [`super::history`]'s.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::api_keys::ApiKey;
use super::executor::{Executor, Filters, Record, Row, params};
use super::operators::Operator;
use super::sources::{OperatorWeight, Source};
use super::time_off::TimeOff;
use super::webhooks::{Webhook, event_time};
use super::{Page, Result, Store};
use crate::error::AppError;

/// What was done.
pub mod action {
    pub const OPERATOR_CREATED: &str = "operator.created";
    pub const OPERATOR_UPDATED: &str = "operator.updated";
    pub const OPERATOR_DELETED: &str = "operator.deleted";
    pub const SOURCE_CREATED: &str = "source.created";
    pub const SOURCE_UPDATED: &str = "source.updated";
    pub const SOURCE_DELETED: &str = "source.deleted";
    /// An operator linked to a source, with a weight.
    pub const WEIGHT_SET: &str = "weight.set";
    pub const WEIGHT_UPDATED: &str = "weight.updated";
    /// An operator unlinked from a source: by hand, or because the source or the operator was deleted.
    pub const WEIGHT_REMOVED: &str = "weight.removed";
    pub const WEBHOOK_CREATED: &str = "webhook.created";
    pub const WEBHOOK_DELETED: &str = "webhook.deleted";
    pub const KEY_CREATED: &str = "key.created";
    pub const KEY_REVOKED: &str = "key.revoked";
    pub const CONTACT_ASSIGNED_MANUALLY: &str = "contact.assigned_manually";
    pub const TIME_OFF_CREATED: &str = "time_off.created";
    pub const TIME_OFF_DELETED: &str = "time_off.deleted";
}

/// Every action, for the API to check a filter against.
pub const ACTIONS: [&str; 16] = [
    action::OPERATOR_CREATED,
    action::OPERATOR_UPDATED,
    action::OPERATOR_DELETED,
    action::SOURCE_CREATED,
    action::SOURCE_UPDATED,
    action::SOURCE_DELETED,
    action::WEIGHT_SET,
    action::WEIGHT_UPDATED,
    action::WEIGHT_REMOVED,
    action::WEBHOOK_CREATED,
    action::WEBHOOK_DELETED,
    action::KEY_CREATED,
    action::KEY_REVOKED,
    action::CONTACT_ASSIGNED_MANUALLY,
    action::TIME_OFF_CREATED,
    action::TIME_OFF_DELETED,
];

/// What a change was made to.
pub mod target {
    pub const OPERATOR: &str = "operator";
    pub const SOURCE: &str = "source";
    /// An operator's link to a source (its id is the weight's `id`).
    pub const WEIGHT: &str = "weight";
    pub const WEBHOOK: &str = "webhook";
    pub const API_KEY: &str = "api_key";
    pub const CONTACT: &str = "contact";
    /// A period of an operator's time off.
    pub const TIME_OFF: &str = "time_off";
}

pub const TARGET_TYPES: [&str; 7] = [
    target::OPERATOR,
    target::SOURCE,
    target::WEIGHT,
    target::WEBHOOK,
    target::API_KEY,
    target::CONTACT,
    target::TIME_OFF,
];

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A request with this API key.
    Key(i64),
    /// A request while the API was open (no key was ever created).
    Open,
    /// `leadrouter keys` on the command line.
    Cli,
}

impl Actor {
    /// Whoever sent an API request: its key, or nobody while the API is open.
    pub fn api(key_id: Option<i64>) -> Actor {
        key_id.map_or(Actor::Open, Actor::Key)
    }

    pub fn key_id(self) -> Option<i64> {
        match self {
            Actor::Key(id) => Some(id),
            Actor::Open | Actor::Cli => None,
        }
    }

    /// As the trail names it: `key 3`, `open`, `cli`.
    pub fn name(self) -> String {
        match self {
            Actor::Key(id) => format!("key {id}"),
            Actor::Open => "open".to_owned(),
            Actor::Cli => "cli".to_owned(),
        }
    }
}

/// A record the trail keeps the values of: its type and id, and its values as JSON, secrets left out.
pub trait Audited {
    const TARGET_TYPE: &'static str;
    fn target_id(&self) -> i64;
    fn values(&self) -> Value;
}

impl Audited for Operator {
    const TARGET_TYPE: &'static str = target::OPERATOR;
    fn target_id(&self) -> i64 {
        self.id
    }
    /// Its settings; not its load, which contacts change, not admins.
    fn values(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "is_active": self.is_active,
            "max_load": self.max_load,
            "availability": self.availability.as_str(),
            "away_until": self.away_until.map(event_time),
            "timezone": self.timezone.as_str(),
            "schedule": self.schedule.as_ref().map(|s| s.0.iter().map(|s| s.spelling()).collect::<Vec<_>>()),
            "created_at": event_time(self.created_at),
        })
    }
}

impl Audited for Source {
    const TARGET_TYPE: &'static str = target::SOURCE;
    fn target_id(&self) -> i64 {
        self.id
    }
    fn values(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "on_operator_unavailable": self.rules.on_operator_unavailable.as_str(),
            "sticky_hours": self.rules.sticky_hours.get(),
            "accept_timeout_secs": self.rules.accept_timeout.secs(),
            "strategy": self.rules.strategy.as_str(),
            "created_at": event_time(self.created_at),
        })
    }
}

impl Audited for TimeOff {
    const TARGET_TYPE: &'static str = target::TIME_OFF;
    fn target_id(&self) -> i64 {
        self.id
    }
    fn values(&self) -> Value {
        json!({
            "id": self.id,
            "operator_id": self.operator_id,
            "starts_at": event_time(self.starts_at),
            "ends_at": event_time(self.ends_at),
            "reason": self.reason,
        })
    }
}

impl Audited for OperatorWeight {
    const TARGET_TYPE: &'static str = target::WEIGHT;
    fn target_id(&self) -> i64 {
        self.id
    }
    fn values(&self) -> Value {
        json!({
            "id": self.id,
            "source_id": self.source_id,
            "operator_id": self.operator_id,
            "weight": self.weight,
        })
    }
}

impl Audited for Webhook {
    const TARGET_TYPE: &'static str = target::WEBHOOK;
    fn target_id(&self) -> i64 {
        self.id
    }
    /// Never its secret (the record does not even hold it).
    fn values(&self) -> Value {
        json!({
            "id": self.id,
            "url": self.url.as_str(),
            "events": self.events,
            "created_at": event_time(self.created_at),
        })
    }
}

impl Audited for ApiKey {
    const TARGET_TYPE: &'static str = target::API_KEY;
    fn target_id(&self) -> i64 {
        self.id
    }
    /// Never its token's hash (the record does not even hold it).
    fn values(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "scope": self.scope,
            "operator_id": self.operator_id,
            "created_at": event_time(self.created_at),
            "revoked_at": self.revoked_at.map(event_time),
        })
    }
}

/// A change to write down.
#[derive(Debug, Clone)]
pub struct AuditChange {
    /// One of [`action`].
    pub action: &'static str,
    /// One of [`target`].
    pub target_type: &'static str,
    pub target_id: i64,
    /// `None` for a creation.
    pub before: Option<Value>,
    /// `None` for a deletion.
    pub after: Option<Value>,
}

impl AuditChange {
    pub fn created<T: Audited>(action: &'static str, created: &T) -> Self {
        Self {
            action,
            target_type: T::TARGET_TYPE,
            target_id: created.target_id(),
            before: None,
            after: Some(created.values()),
        }
    }

    pub fn changed<T: Audited>(action: &'static str, before: &T, after: &T) -> Self {
        Self {
            action,
            target_type: T::TARGET_TYPE,
            target_id: after.target_id(),
            before: Some(before.values()),
            after: Some(after.values()),
        }
    }

    pub fn removed<T: Audited>(action: &'static str, removed: &T) -> Self {
        Self {
            action,
            target_type: T::TARGET_TYPE,
            target_id: removed.target_id(),
            before: Some(removed.values()),
            after: None,
        }
    }
}

/// One entry of the trail.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub key_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: i64,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// JSON as stored: text that [`record`] wrote, so anything else is an internal error.
fn json_column(row: &Row<'_>, column: &str) -> Result<Option<Value>> {
    let Some(text) = row.get::<Option<String>>(column)? else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|error| {
        AppError::Internal(anyhow::anyhow!(
            "column {column} holds {text:?}, which is not JSON: {error}"
        ))
    })
}

impl Record for AuditEntry {
    fn decode(row: &Row<'_>) -> Result<Self> {
        Ok(AuditEntry {
            id: row.get("id")?,
            at: row.get("at")?,
            key_id: row.get("key_id")?,
            actor: row.get("actor")?,
            action: row.get("action")?,
            target_type: row.get("target_type")?,
            target_id: row.get("target_id")?,
            before: json_column(row, "before")?,
            after: json_column(row, "after")?,
        })
    }
}

/// Which entries a list shows; absent filters do not filter. `since` is inclusive, `until` exclusive.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub target_type: Option<String>,
    pub target_id: Option<i64>,
    pub key_id: Option<i64>,
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

// ---- statements ----

/// Writes the change down, in the caller's transaction. A change that changed nothing (its values before
/// and after are the same) is not one, and is not written.
pub async fn record(db: &mut impl Executor, actor: Actor, change: AuditChange) -> Result<()> {
    if change.before.is_some() && change.before == change.after {
        return Ok(());
    }
    let sql = "INSERT INTO audit_log (at, key_id, actor, action, target_type, target_id, before, after) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    let before = change.before.as_ref().map(Value::to_string);
    let after = change.after.as_ref().map(Value::to_string);
    let actor_name = actor.name();
    let params = params![
        super::now(),
        actor.key_id(),
        &actor_name,
        change.action,
        change.target_type,
        change.target_id,
        before.as_deref(),
        after.as_deref()
    ];
    db.execute(sql, params).await?;
    Ok(())
}

async fn list(db: &mut impl Executor, filter: &AuditFilter, page: Page) -> Result<Vec<AuditEntry>> {
    let mut filters = Filters::default();
    filters.equals("target_type", filter.target_type.as_ref());
    filters.equals("target_id", filter.target_id);
    filters.equals("key_id", filter.key_id);
    filters.equals("action", filter.action.as_ref());
    filters.compare("at", ">=", filter.since);
    filters.compare("at", "<", filter.until);
    let (clauses, params) = filters.finish("at DESC, id DESC", page);
    let sql = format!(
        "SELECT id, at, key_id, actor, action, target_type, target_id, before, after FROM audit_log{clauses}"
    );
    db.all(&sql, &params).await
}

/// Forgets the entries older than `retention`.
pub async fn purge(db: &mut impl Executor, now: DateTime<Utc>, retention: TimeDelta) -> Result<()> {
    let sql = "DELETE FROM audit_log WHERE at < $1";
    db.execute(sql, params![now - retention]).await?;
    Ok(())
}

impl Store {
    /// The trail, newest first.
    pub async fn audit_log(&self, filter: AuditFilter, page: Page) -> Result<Vec<AuditEntry>> {
        read!(self, |db| list(db, &filter, page).await)
    }
}
