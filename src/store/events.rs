//! What happens to a contact is written down in the transaction of the change itself: in the contact's
//! history, and — for every webhook that asked for that kind of event — in the outbox that the webhook sender
//! delivers from. Either the change, its history entry and its events are all committed, or none of them.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::tx::{HistoryChange, WriteTx};
use crate::error::AppError;
use crate::model::Contact;

type Result<T> = std::result::Result<T, AppError>;

/// The kinds of history entry.
pub mod entry {
    pub const CREATED: &str = "created";
    pub const ASSIGNED: &str = "assigned";
    pub const UNASSIGNED: &str = "unassigned";
    pub const STATUS_CHANGED: &str = "status_changed";
}

/// Why a change happened.
pub mod reason {
    /// The contact arrived (routed, or left waiting).
    pub const CREATION: &str = "creation";
    /// Capacity freed up and the contact was next in its source's queue.
    pub const QUEUE: &str = "queue";
    /// Somebody changed it through the API.
    pub const MANUAL: &str = "manual";
    /// Its operator was deleted.
    pub const OPERATOR_DELETED: &str = "operator_deleted";
}

/// The webhook event types.
pub const CONTACT_CREATED: &str = "contact.created";
pub const CONTACT_ASSIGNED: &str = "contact.assigned";
pub const CONTACT_UNASSIGNED: &str = "contact.unassigned";
pub const CONTACT_STATUS_CHANGED: &str = "contact.status_changed";
pub const EVENT_TYPES: [&str; 4] = [
    CONTACT_CREATED,
    CONTACT_ASSIGNED,
    CONTACT_UNASSIGNED,
    CONTACT_STATUS_CHANGED,
];

/// The webhook events a history entry stands for: a contact routed as it arrives is both created and assigned.
fn event_types(change: &HistoryChange) -> &'static [&'static str] {
    match change.event {
        entry::CREATED if change.to_operator_id.is_some() => &[CONTACT_CREATED, CONTACT_ASSIGNED],
        entry::CREATED => &[CONTACT_CREATED],
        entry::ASSIGNED => &[CONTACT_ASSIGNED],
        entry::UNASSIGNED => &[CONTACT_UNASSIGNED],
        _ => &[CONTACT_STATUS_CHANGED],
    }
}

/// Records the change in the contact's history and queues its events for the webhooks that receive them.
/// `snapshot` is the contact as the change left it, when the caller has it at hand; otherwise it is read,
/// and only when some webhook wants it.
pub async fn record(
    tx: &mut impl WriteTx,
    change: HistoryChange,
    snapshot: Option<&Contact>,
) -> Result<()> {
    let entry = tx.insert_history(&change).await?;
    let subscriptions = tx.webhook_subscriptions().await?;
    if subscriptions.is_empty() {
        return Ok(());
    }
    let mut data = None;
    for &event_type in event_types(&change) {
        let receivers: Vec<i64> = subscriptions
            .iter()
            .filter(|(_, events)| events.split(',').any(|e| e == event_type))
            .map(|(id, _)| *id)
            .collect();
        if receivers.is_empty() {
            continue;
        }
        let data = match &data {
            Some(data) => data,
            None => {
                let contact = match snapshot {
                    Some(contact) => contact.clone(),
                    None => tx.contact(change.contact_id).await?.ok_or_else(|| {
                        AppError::Internal(anyhow::anyhow!("a changed contact is missing"))
                    })?,
                };
                data.insert(json!({ "contact": contact, "change": entry }).to_string())
            }
        };
        let event_id = tx.insert_event(event_type, data, entry.at).await?;
        let due_at_ms = entry.at.timestamp_millis();
        for webhook_id in receivers {
            tx.insert_delivery(webhook_id, event_id, due_at_ms, entry.at)
                .await?;
        }
    }
    Ok(())
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
        "created_at": created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": data,
    })
}
