//! The schemas of webhook deliveries, as `GET /webhooks/{id}/deliveries` and the routes under it return them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::each;
use super::wire::{serialize_optional_timestamp, serialize_timestamp};
use crate::store::deliveries;

/// One event on its way to one webhook.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = 1)]
    pub webhook_id: i64,
    #[schema(example = 1)]
    pub event_id: i64,
    #[schema(example = "contact.assigned")]
    pub event_type: String,
    /// `pending` (to be sent, or retried), `delivered` (a 2xx answer), or `failed` (every attempt failed).
    #[schema(example = "delivered")]
    pub state: String,
    #[schema(example = 1)]
    pub attempt_count: i64,
    /// When a pending delivery is next tried.
    #[serde(serialize_with = "serialize_optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime, example = json!(null))]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[schema(example = 200)]
    pub last_status_code: Option<i64>,
    #[schema(example = json!(null))]
    pub last_error: Option<String>,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T16:38:00.123456Z")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "serialize_optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-11-25T16:38:00.234567Z")]
    pub delivered_at: Option<DateTime<Utc>>,
}

/// One try at sending a delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryAttempt {
    #[schema(example = 1)]
    pub attempt: i64,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T16:38:00.123456Z")]
    pub at: DateTime<Utc>,
    /// The receiver's answer; `null` when there was none (refused connection, timeout).
    #[schema(example = 200)]
    pub status_code: Option<i64>,
    #[schema(example = json!(null))]
    pub error: Option<String>,
    #[schema(example = 12)]
    pub duration_ms: i64,
}

/// A delivery with the event it carries and every attempt at it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: Delivery,
    /// The event, exactly as sent: `{"id", "type", "created_at", "data": {"contact", "change"}}`.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub attempts: Vec<DeliveryAttempt>,
}

impl From<deliveries::Delivery> for Delivery {
    fn from(delivery: deliveries::Delivery) -> Self {
        Self {
            id: delivery.id,
            webhook_id: delivery.webhook_id,
            event_id: delivery.event_id,
            event_type: delivery.event_type,
            state: delivery.state.as_str().to_owned(),
            attempt_count: delivery.attempt_count,
            next_attempt_at: delivery.next_attempt_at,
            last_status_code: delivery.last_status_code,
            last_error: delivery.last_error,
            created_at: delivery.created_at,
            delivered_at: delivery.delivered_at,
        }
    }
}

impl From<deliveries::DeliveryAttempt> for DeliveryAttempt {
    fn from(attempt: deliveries::DeliveryAttempt) -> Self {
        Self {
            attempt: attempt.attempt,
            at: attempt.at,
            status_code: attempt.status_code,
            error: attempt.error,
            duration_ms: attempt.duration_ms,
        }
    }
}

impl From<deliveries::DeliveryDetail> for DeliveryDetail {
    fn from(detail: deliveries::DeliveryDetail) -> Self {
        Self {
            delivery: detail.delivery.into(),
            payload: detail.payload,
            attempts: each(detail.attempts),
        }
    }
}
