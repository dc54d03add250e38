//! A contact's history: every change to it is written down in the change's own transaction, together with its
//! webhook events ([`super::webhooks::enqueue`]). Either the change, its history entry and its events are all
//! committed, or none of them.

use chrono::{DateTime, Utc};

use super::contacts::{self, Contact};
use super::executor::{Executor, params, returning};
use super::{Page, Result, Store, webhooks};
use crate::domain::{Reach, Status};
use crate::error::AppError;

/// The kinds of history entry.
pub mod entry {
    pub const CREATED: &str = "created";
    pub const ASSIGNED: &str = "assigned";
    pub const UNASSIGNED: &str = "unassigned";
    pub const STATUS_CHANGED: &str = "status_changed";
    /// Its operator accepted it.
    pub const ACCEPTED: &str = "accepted";
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
    /// Its operator stopped taking contacts, and its source requeues their contacts.
    pub const OPERATOR_UNAVAILABLE: &str = "operator_unavailable";
    /// The lead came back, and went to the operator of their last contact.
    pub const STICKY: &str = "sticky";
    /// Its operator did not accept it within its source's accept timeout.
    pub const ACCEPT_TIMEOUT: &str = "accept_timeout";
    /// Its operator gave it up.
    pub const DECLINED: &str = "declined";
}

/// The columns of a [`HistoryEntry`].
macro_rules! history_columns {
    () => {
        "id, contact_id, at, event, from_operator_id, to_operator_id, from_status, to_status, reason, \
         api_key_id, decision_id"
    };
}
pub(super) use history_columns;

/// One change in a contact's life: its creation, an assignment, a status change.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub id: i64,
    pub contact_id: i64,
    pub at: DateTime<Utc>,
    /// One of [`entry`].
    pub event: String,
    pub from_operator_id: Option<i64>,
    pub to_operator_id: Option<i64>,
    pub from_status: Option<Status>,
    pub to_status: Status,
    /// One of [`reason`].
    pub reason: String,
    /// The API key that made a manual change.
    pub api_key_id: Option<i64>,
    /// The routing decision that made an automatic assignment (or left the contact waiting).
    pub decision_id: Option<i64>,
}

record!(HistoryEntry {
    id,
    contact_id,
    at,
    event,
    from_operator_id,
    to_operator_id,
    from_status,
    to_status,
    reason,
    api_key_id,
    decision_id
});

/// A change to record in a contact's history.
#[derive(Debug, Clone)]
pub struct HistoryChange {
    pub contact_id: i64,
    pub at: DateTime<Utc>,
    pub event: &'static str,
    pub from_operator_id: Option<i64>,
    pub to_operator_id: Option<i64>,
    pub from_status: Option<Status>,
    pub to_status: Status,
    pub reason: &'static str,
    pub api_key_id: Option<i64>,
    /// The routing decision behind it, for an automatic assignment attempt.
    pub decision_id: Option<i64>,
}

/// Records the change in the contact's history and queues its events for the webhooks that receive them.
/// `snapshot` is the contact as the change left it, when the caller has it at hand; otherwise it is read,
/// and only when some webhook wants it, with its ETA as of `now` (the routing clock's) if it waits. Returns
/// the entry's id.
pub async fn record(
    db: &mut impl Executor,
    change: HistoryChange,
    snapshot: Option<&Contact>,
    now: DateTime<Utc>,
) -> Result<i64> {
    let entry = insert(db, &change).await?;
    webhooks::enqueue(db, &change, &entry, snapshot, now).await?;
    Ok(entry.id)
}

/// Writes the history entry alone; its events are the caller's to queue.
pub async fn insert(db: &mut impl Executor, change: &HistoryChange) -> Result<HistoryEntry> {
    let sql = returning!(
        write: concat!(
            "INSERT INTO contact_history (contact_id, at, event, from_operator_id, to_operator_id, ",
            "from_status, to_status, reason, api_key_id, decision_id) ",
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ),
        columns: history_columns!(),
        read_back: "FROM contact_history WHERE id = last_insert_rowid()",
    );
    let params = params![
        change.contact_id,
        change.at,
        change.event,
        change.from_operator_id,
        change.to_operator_id,
        change.from_status.as_ref().map(Status::as_str),
        change.to_status.as_str(),
        change.reason,
        change.api_key_id,
        change.decision_id
    ];
    db.written_one(&sql, params).await
}

/// The page of the contact's history, if the contact is within reach as this very statement reads it: the
/// check before it may have seen the contact before it was given to another operator.
async fn list(
    db: &mut impl Executor,
    contact_id: i64,
    reach: Reach,
    page: Page,
) -> Result<Vec<HistoryEntry>> {
    let sql = concat!(
        "SELECT ",
        history_columns!(),
        " FROM contact_history WHERE contact_id = $1 AND EXISTS (SELECT 1 FROM contacts ",
        "WHERE id = $1 AND ($4 IS NULL OR operator_id = $4)) ORDER BY id LIMIT $2 OFFSET $3"
    );
    let params = params![contact_id, page.limit, page.skip, reach.operator_id()];
    db.all(sql, params).await
}

impl Store {
    /// The contact's history, oldest first, if the contact is within reach.
    pub async fn contact_history(
        &self,
        id: i64,
        reach: Reach,
        page: Page,
    ) -> Result<Vec<HistoryEntry>> {
        read!(self, |db| {
            if !contacts::within_reach(db, id, reach).await? {
                return Err(AppError::not_found("Contact"));
            }
            list(db, id, reach, page).await
        })
    }
}
