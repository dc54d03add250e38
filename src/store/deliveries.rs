//! Deliveries: one event on its way to one webhook, leased by a sender, tried, and retried with back-off
//! until it is delivered or fails for good. Every attempt is kept for the API to show.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use super::executor::{Dialect, Executor, Record, Row, params};
use super::{Page, Result, Store, audit, contacts, webhooks};
use crate::domain::{DeliveryState, WebhookUrl};
use crate::error::AppError;

/// How long a delivery done with (delivered, or failed for good) stays visible through the API.
pub const DELIVERY_RETENTION: TimeDelta = TimeDelta::days(7);

/// A delivery as the API shows it; callers append WHERE, ORDER BY and LIMIT.
macro_rules! delivery_select {
    () => {
        "SELECT d.id, d.webhook_id, d.event_id, e.type AS event_type, d.state, d.attempt_count, \
         d.due_at_ms, d.last_status_code, d.last_error, d.created_at, d.delivered_at \
         FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id"
    };
}

/// One event on its way to one webhook.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: i64,
    pub event_type: String,
    pub state: DeliveryState,
    pub attempt_count: i64,
    /// When a pending delivery is next tried.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// One try at sending a delivery.
#[derive(Debug, Clone)]
pub struct DeliveryAttempt {
    pub attempt: i64,
    pub at: DateTime<Utc>,
    /// The receiver's answer; `None` when there was none (refused connection, timeout).
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// A delivery with the event it carries, exactly as sent, and every attempt at it.
#[derive(Debug, Clone)]
pub struct DeliveryDetail {
    pub delivery: Delivery,
    pub payload: serde_json::Value,
    pub attempts: Vec<DeliveryAttempt>,
}

impl Record for Delivery {
    fn decode(row: &Row<'_>) -> Result<Self> {
        let state: DeliveryState = row.get("state")?;
        let due_at_ms: Option<i64> = row.get("due_at_ms")?;
        let next_attempt_at = match state {
            DeliveryState::Pending => due_at_ms.and_then(DateTime::from_timestamp_millis),
            _ => None,
        };
        Ok(Delivery {
            id: row.get("id")?,
            webhook_id: row.get("webhook_id")?,
            event_id: row.get("event_id")?,
            event_type: row.get("event_type")?,
            state,
            attempt_count: row.get("attempt_count")?,
            next_attempt_at,
            last_status_code: row.get("last_status_code")?,
            last_error: row.get("last_error")?,
            created_at: row.get("created_at")?,
            delivered_at: row.get("delivered_at")?,
        })
    }
}

record!(DeliveryAttempt {
    attempt,
    at,
    status_code,
    error,
    duration_ms
});

/// What sending one delivery takes.
#[derive(Debug, Clone)]
pub struct DeliveryJob {
    pub id: i64,
    pub attempt_count: i64,
    pub url: WebhookUrl,
    pub secret: String,
    pub event_id: i64,
    pub event_type: String,
    /// The event's `data`, JSON.
    pub data: String,
    pub event_created_at: DateTime<Utc>,
}

record!(DeliveryJob {
    id,
    attempt_count,
    url,
    secret,
    event_id,
    event_type,
    data,
    event_created_at
});

/// How one attempt at a delivery went.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub delivery_id: i64,
    /// 1 for the first attempt.
    pub number: i64,
    pub at: DateTime<Utc>,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// The receiver answered 2xx.
    pub delivered: bool,
    /// When to try again, if it failed and attempts are left.
    pub retry_at: Option<DateTime<Utc>>,
}

/// The body a delivery sends: the event with its id, type and time, around the `data` stored in the outbox.
pub fn event_body(
    event_id: i64,
    event_type: &str,
    created_at: DateTime<Utc>,
    data: &str,
) -> serde_json::Value {
    let data: serde_json::Value = serde_json::from_str(data).unwrap_or(serde_json::Value::Null);
    json!({
        "id": event_id,
        "type": event_type,
        "created_at": webhooks::event_time(created_at),
        "data": data,
    })
}

async fn find(db: &mut impl Executor, webhook_id: i64, id: i64) -> Result<Option<Delivery>> {
    let sql = concat!(delivery_select!(), " WHERE d.webhook_id = $1 AND d.id = $2");
    db.optional(sql, params![webhook_id, id]).await
}

/// What sending the delivery takes (also read for its payload).
async fn job(db: &mut impl Executor, id: i64) -> Result<Option<DeliveryJob>> {
    let sql = "SELECT d.id, d.attempt_count, w.url, w.secret, e.id AS event_id, e.type AS event_type, \
         e.data, e.created_at AS event_created_at \
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         JOIN webhook_events e ON e.id = d.event_id WHERE d.id = $1";
    db.optional(sql, params![id]).await
}

/// Leases up to `limit` deliveries that are due, for `lease`, so that no other sender takes them meanwhile;
/// should this instance die while sending, the lease runs out and another sends them again (at least once).
async fn claim(db: &mut impl Executor, lease: TimeDelta, limit: i64) -> Result<Vec<DeliveryJob>> {
    let sql = match db.dialect() {
        Dialect::Sqlite => {
            "UPDATE webhook_deliveries SET due_at_ms = $2 WHERE id IN \
             (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND due_at_ms <= $1 \
             ORDER BY due_at_ms, id LIMIT $3) RETURNING id AS value"
        }
        Dialect::Postgres => {
            "UPDATE webhook_deliveries SET due_at_ms = $2 WHERE id IN \
             (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND due_at_ms <= $1 \
             ORDER BY due_at_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING id AS value"
        }
    };
    let now = Utc::now().timestamp_millis();
    let lease_until = now + lease.num_milliseconds();
    let ids: Vec<i64> = db.all(sql, params![now, lease_until, limit]).await?;
    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(job) = job(db, id).await? {
            jobs.push(job);
        }
    }
    Ok(jobs)
}

/// Logs the attempt and moves the delivery on: delivered, due again later, or failed for good. A delivery
/// whose webhook was deleted meanwhile is gone, and so is the record of this attempt.
async fn record_attempt(db: &mut impl Executor, attempt: &Attempt) -> Result<()> {
    if job(db, attempt.delivery_id).await?.is_none() {
        return Ok(());
    }
    let sql = "INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error, duration_ms) \
         VALUES ($1, $2, $3, $4, $5, $6)";
    let params = params![
        attempt.delivery_id,
        attempt.number,
        attempt.at,
        attempt.status_code,
        attempt.error.as_deref(),
        attempt.duration_ms
    ];
    db.execute(sql, params).await?;
    let state = match (attempt.delivered, attempt.retry_at) {
        (true, _) => DeliveryState::Delivered,
        (false, Some(_)) => DeliveryState::Pending,
        (false, None) => DeliveryState::Failed,
    };
    let due_at_ms = attempt
        .retry_at
        .filter(|_| !attempt.delivered)
        .map(|at| at.timestamp_millis());
    let sql = "UPDATE webhook_deliveries SET state = $2, attempt_count = $3, due_at_ms = $4, \
         last_status_code = $5, last_error = $6, delivered_at = $7 WHERE id = $1";
    let params = params![
        attempt.delivery_id,
        state.as_str(),
        attempt.number,
        due_at_ms,
        attempt.status_code,
        attempt.error.as_deref(),
        attempt.delivered.then_some(attempt.at)
    ];
    db.execute(sql, params).await?;
    Ok(())
}

/// Makes the webhook's delivery pending and due now, whatever became of it.
async fn retry(db: &mut impl Executor, webhook_id: i64, id: i64) -> Result<()> {
    let sql = "UPDATE webhook_deliveries SET state = $4, due_at_ms = $3 \
         WHERE id = $2 AND webhook_id = $1";
    let now = Utc::now().timestamp_millis();
    let pending = DeliveryState::Pending.as_str();
    if db
        .execute(sql, params![webhook_id, id, now, pending])
        .await?
        == 0
    {
        return Err(AppError::not_found("Delivery"));
    }
    Ok(())
}

/// Forgets the deliveries done with (delivered, or failed for good) for longer than [`DELIVERY_RETENTION`],
/// their attempts with them, and the events left without a delivery.
async fn purge(db: &mut impl Executor, now: DateTime<Utc>) -> Result<()> {
    let before = now - DELIVERY_RETENTION;
    let sql = "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND created_at < $1";
    db.execute(sql, params![before]).await?;
    let sql = "DELETE FROM webhook_events WHERE created_at < $1 AND NOT EXISTS \
         (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)";
    db.execute(sql, params![before]).await?;
    Ok(())
}

impl Store {
    /// The webhook's deliveries, newest first.
    pub async fn deliveries(&self, webhook_id: i64, page: Page) -> Result<Vec<Delivery>> {
        read!(self, |db| {
            webhooks::find(db, webhook_id)
                .await?
                .ok_or_else(|| AppError::not_found("Webhook"))?;
            let sql = concat!(
                delivery_select!(),
                " WHERE d.webhook_id = $1 ORDER BY d.id DESC LIMIT $2 OFFSET $3"
            );
            db.all(sql, params![webhook_id, page.limit, page.skip])
                .await
        })
    }

    /// A delivery with its payload and every attempt at it.
    pub async fn delivery(&self, webhook_id: i64, id: i64) -> Result<DeliveryDetail> {
        read!(self, |db| {
            let not_found = || AppError::not_found("Delivery");
            let delivery = find(db, webhook_id, id).await?.ok_or_else(not_found)?;
            let job = job(db, id).await?.ok_or_else(not_found)?;
            let sql = "SELECT attempt, at, status_code, error, duration_ms FROM webhook_attempts \
                 WHERE delivery_id = $1 ORDER BY attempt";
            let attempts = db.all(sql, params![id]).await?;
            Ok(DeliveryDetail {
                delivery,
                payload: event_body(
                    job.event_id,
                    &job.event_type,
                    job.event_created_at,
                    &job.data,
                ),
                attempts,
            })
        })
    }

    /// Makes the delivery pending and due now, and wakes the sender.
    pub async fn retry_delivery(&self, webhook_id: i64, id: i64) -> Result<Delivery> {
        transaction!(self, |db| retry(db, webhook_id, id).await)?;
        self.signals.outbox.notify_one();
        read!(self, |db| find(db, webhook_id, id).await)?
            .ok_or_else(|| AppError::not_found("Delivery"))
    }

    /// Leases up to `limit` deliveries that are due, for `lease`.
    pub async fn claim_deliveries(&self, lease: TimeDelta, limit: i64) -> Result<Vec<DeliveryJob>> {
        transaction!(self, |db| claim(db, lease, limit).await)
    }

    pub async fn record_attempt(&self, attempt: Attempt) -> Result<()> {
        transaction!(self, |db| record_attempt(db, &attempt).await)
    }

    /// Forgets expired idempotency keys, old deliveries, and audit entries past their retention.
    pub async fn purge_expired(&self) -> Result<()> {
        let audit_retention = self.audit_retention;
        transaction!(self, |db| {
            let now = super::now();
            contacts::purge_idempotency_keys(db, now).await?;
            purge(db, now).await?;
            match audit_retention {
                Some(retention) => audit::purge(db, now, retention).await,
                None => Ok(()),
            }
        })
    }
}
