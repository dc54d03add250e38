//! Webhooks and their outbox: the receivers an admin registers, and the events a change queues for them in
//! its own transaction. Sending is [`super::deliveries`]' and the sender's ([`crate::webhooks`]).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::audit::{self, Actor, AuditChange, action};
use super::contacts::{self, Contact};
use super::executor::{Executor, Record, Row, params, returning};
use super::history::{HistoryChange, HistoryEntry, entry};
use super::{Result, Store};
use crate::domain::{DeliveryState, Status, WebhookUrl};
use crate::error::AppError;

/// The webhook event types.
pub const CONTACT_CREATED: &str = "contact.created";
pub const CONTACT_ASSIGNED: &str = "contact.assigned";
pub const CONTACT_UNASSIGNED: &str = "contact.unassigned";
pub const CONTACT_STATUS_CHANGED: &str = "contact.status_changed";
pub const CONTACT_ACCEPTED: &str = "contact.accepted";
pub const EVENT_TYPES: [&str; 5] = [
    CONTACT_CREATED,
    CONTACT_ASSIGNED,
    CONTACT_UNASSIGNED,
    CONTACT_STATUS_CHANGED,
    CONTACT_ACCEPTED,
];

macro_rules! webhook_columns {
    () => {
        "id, url, events, created_at"
    };
}

/// A receiver of events.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: i64,
    pub url: WebhookUrl,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A webhook as stored: its event types comma-separated.
impl Record for Webhook {
    fn decode(row: &Row<'_>) -> Result<Self> {
        let events: String = row.get("events")?;
        Ok(Webhook {
            id: row.get("id")?,
            url: row.get("url")?,
            events: events.split(',').map(str::to_owned).collect(),
            created_at: row.get("created_at")?,
        })
    }
}

/// A webhook to create, already checked.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: WebhookUrl,
    pub events: Vec<&'static str>,
    pub secret: String,
}

/// The webhook events a history entry stands for: a contact routed as it arrives is both created and assigned.
fn event_types(change: &HistoryChange) -> &'static [&'static str] {
    match change.event {
        entry::CREATED if change.to_operator_id.is_some() => &[CONTACT_CREATED, CONTACT_ASSIGNED],
        entry::CREATED => &[CONTACT_CREATED],
        entry::ASSIGNED => &[CONTACT_ASSIGNED],
        entry::UNASSIGNED => &[CONTACT_UNASSIGNED],
        entry::ACCEPTED => &[CONTACT_ACCEPTED],
        _ => &[CONTACT_STATUS_CHANGED],
    }
}

/// A webhook's id and the event types it receives.
pub struct Subscription {
    webhook_id: i64,
    events: String,
}

impl Record for Subscription {
    fn decode(row: &Row<'_>) -> Result<Self> {
        Ok(Subscription {
            webhook_id: row.get("id")?,
            events: row.get("events")?,
        })
    }
}

/// Queues the change's events for every webhook that receives them. `snapshot` is the contact as the change
/// left it, when the caller has it at hand; otherwise it is read, and only when some webhook wants it, with
/// its ETA as of `now` (the routing clock's) if it waits.
pub async fn enqueue(
    db: &mut impl Executor,
    change: &HistoryChange,
    entry: &HistoryEntry,
    snapshot: Option<&Contact>,
    now: DateTime<Utc>,
) -> Result<()> {
    let subscriptions = subscriptions(db).await?;
    enqueue_for(db, &subscriptions, change, entry, snapshot, now).await
}

/// Every webhook, with the events it receives.
pub async fn subscriptions(db: &mut impl Executor) -> Result<Vec<Subscription>> {
    let sql = "SELECT id, events FROM webhooks ORDER BY id";
    db.all(sql, params![]).await
}

/// [`enqueue`] for the subscriptions as read earlier in the transaction: a new contact reads them before it
/// claims an operator's capacity, so that PostgreSQL's lock on the operator is held for fewer round trips.
pub async fn enqueue_for(
    db: &mut impl Executor,
    subscriptions: &[Subscription],
    change: &HistoryChange,
    entry: &HistoryEntry,
    snapshot: Option<&Contact>,
    now: DateTime<Utc>,
) -> Result<()> {
    if subscriptions.is_empty() {
        return Ok(());
    }
    let mut data = None;
    for &event_type in event_types(change) {
        let receivers: Vec<i64> = subscriptions
            .iter()
            .filter(|s| s.events.split(',').any(|e| e == event_type))
            .map(|s| s.webhook_id)
            .collect();
        if receivers.is_empty() {
            continue;
        }
        let data = match &data {
            Some(data) => data,
            None => {
                let contact = match snapshot {
                    Some(contact) => contact.clone(),
                    None => contacts::find(db, change.contact_id, now)
                        .await?
                        .ok_or_else(|| {
                            AppError::Internal(anyhow::anyhow!("a changed contact is missing"))
                        })?,
                };
                data.insert(event_data(&contact, entry))
            }
        };
        let sql = returning!(
            write: "INSERT INTO webhook_events (type, data, created_at) VALUES ($1, $2, $3)",
            columns: "id AS value",
            read_back: "FROM webhook_events WHERE id = last_insert_rowid()",
        );
        let event_id: i64 = db
            .written_one(&sql, params![event_type, data.as_str(), entry.at])
            .await?;
        let due_at_ms = entry.at.timestamp_millis();
        for webhook_id in receivers {
            let sql = "INSERT INTO webhook_deliveries (webhook_id, event_id, state, due_at_ms, created_at) \
                 VALUES ($1, $2, $3, $4, $5)";
            let pending = DeliveryState::Pending.as_str();
            let params = params![webhook_id, event_id, pending, due_at_ms, entry.at];
            db.execute(sql, params).await?;
        }
    }
    Ok(())
}

/// A time as events spell it: RFC 3339 in UTC with a `Z` and six fractional digits, as the API does.
pub fn event_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// An event's `data`: the contact as the change left it, and the change, in the JSON the API shows them in
/// (`Contact` and `HistoryEntry` of its OpenAPI document).
pub fn event_data(contact: &Contact, change: &HistoryEntry) -> String {
    json!({ "contact": contact_json(contact), "change": change_json(change) }).to_string()
}

fn contact_json(contact: &Contact) -> Value {
    let (lead, source) = (&contact.lead, &contact.source);
    let operator = contact.operator.as_ref().map(|operator| {
        json!({
            "id": operator.id,
            "name": operator.name,
            "is_active": operator.is_active,
            "max_load": operator.max_load,
            "created_at": event_time(operator.created_at),
        })
    });
    json!({
        "id": contact.id,
        "lead_id": contact.lead_id,
        "source_id": contact.source_id,
        "operator_id": contact.operator_id,
        "status": contact.status.as_str(),
        "message": contact.message,
        "created_at": event_time(contact.created_at),
        "assigned_at": contact.assigned_at.map(event_time),
        "accepted_at": contact.accepted_at.map(event_time),
        "lead": {
            "id": lead.id,
            "external_id": lead.external_id,
            "phone": lead.phone,
            "email": lead.email,
            "name": lead.name,
            "created_at": event_time(lead.created_at),
        },
        "source": {
            "id": source.id,
            "name": source.name,
            "description": source.description,
            "created_at": event_time(source.created_at),
        },
        "operator": operator,
        "queue_position": contact.queue_position,
        "eta_seconds": contact.eta_seconds,
    })
}

fn change_json(change: &HistoryEntry) -> Value {
    json!({
        "id": change.id,
        "contact_id": change.contact_id,
        "at": event_time(change.at),
        "event": change.event,
        "from_operator_id": change.from_operator_id,
        "to_operator_id": change.to_operator_id,
        "from_status": change.from_status.as_ref().map(Status::as_str),
        "to_status": change.to_status.as_str(),
        "reason": change.reason,
        "api_key_id": change.api_key_id,
        "decision_id": change.decision_id,
    })
}

pub async fn find(db: &mut impl Executor, id: i64) -> Result<Option<Webhook>> {
    let sql = concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks WHERE id = $1"
    );
    db.optional(sql, params![id]).await
}

async fn exist(db: &mut impl Executor) -> Result<bool> {
    let sql = "SELECT EXISTS (SELECT 1 FROM webhooks) AS value";
    db.one(sql, params![]).await
}

async fn create(db: &mut impl Executor, new: &NewWebhook, actor: Actor) -> Result<Webhook> {
    let sql = concat!(
        "INSERT INTO webhooks (url, events, secret, created_at) VALUES ($1, $2, $3, $4) RETURNING ",
        webhook_columns!()
    );
    let events = new.events.join(",");
    let params = params![new.url.as_str(), &events, &new.secret, super::now()];
    let webhook = db.one(sql, params).await?;
    let change = AuditChange::created(action::WEBHOOK_CREATED, &webhook);
    audit::record(db, actor, change).await?;
    Ok(webhook)
}

/// Removes the webhook with its deliveries and their attempts (ON DELETE CASCADE): nothing more is sent to it.
async fn delete(db: &mut impl Executor, id: i64, actor: Actor) -> Result<()> {
    let sql = concat!(
        "DELETE FROM webhooks WHERE id = $1 RETURNING ",
        webhook_columns!()
    );
    let webhook: Webhook = db
        .optional(sql, params![id])
        .await?
        .ok_or_else(|| AppError::not_found("Webhook"))?;
    let change = AuditChange::removed(action::WEBHOOK_DELETED, &webhook);
    audit::record(db, actor, change).await
}

impl Store {
    pub async fn create_webhook(&self, new: NewWebhook, actor: Actor) -> Result<Webhook> {
        let webhook = transaction!(self, |db| create(db, &new, actor).await)?;
        self.signals
            .webhooks_exist
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(webhook)
    }

    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>> {
        let sql = concat!("SELECT ", webhook_columns!(), " FROM webhooks ORDER BY id");
        read!(self, |db| db.all(sql, params![]).await)
    }

    pub async fn get_webhook(&self, id: i64) -> Result<Webhook> {
        read!(self, |db| find(db, id).await)?.ok_or_else(|| AppError::not_found("Webhook"))
    }

    pub async fn delete_webhook(&self, id: i64, actor: Actor) -> Result<()> {
        transaction!(self, |db| delete(db, id, actor).await)
    }

    pub async fn webhooks_exist(&self) -> Result<bool> {
        read!(self, |db| exist(db).await)
    }
}
