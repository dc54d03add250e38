//! What a write transaction can do, whichever backend runs it. The write operations ([`super::ops`]) are
//! written once against this trait; [`super::conn::Conn`] implements it with sqlx (PostgreSQL), and
//! [`super::sqlite_tx::SqliteTx`] with rusqlite on SQLite's writer thread, where a whole batch runs without
//! a thread hop per statement.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::domain::{Candidate, LeadIdentity};
use crate::error::AppError;
use crate::model::{
    ApiKey, Contact, HistoryEntry, Lead, Operator, OperatorWeight, Source, Webhook,
};

type Result<T> = std::result::Result<T, AppError>;

/// What a status change needs to know about a contact.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContactState {
    pub source_id: i64,
    pub operator_id: Option<i64>,
    pub status: String,
}

/// What an idempotency key remembers.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdempotentRequest {
    pub fingerprint: String,
    pub contact_id: i64,
    pub created_at: DateTime<Utc>,
}

/// A contact that just lost its operator.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OperatorContact {
    pub id: i64,
    pub source_id: i64,
    pub status: String,
}

/// A change to record in a contact's history.
#[derive(Debug, Clone)]
pub struct HistoryChange {
    pub contact_id: i64,
    pub at: DateTime<Utc>,
    pub event: &'static str,
    pub from_operator_id: Option<i64>,
    pub to_operator_id: Option<i64>,
    pub from_status: Option<String>,
    pub to_status: String,
    pub reason: &'static str,
    pub api_key_id: Option<i64>,
}

/// A webhook as stored: its event types comma-separated.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: i64,
    pub url: String,
    pub events: String,
    pub created_at: DateTime<Utc>,
}

impl From<WebhookRow> for Webhook {
    fn from(row: WebhookRow) -> Self {
        Webhook {
            id: row.id,
            url: row.url,
            events: row.events.split(',').map(str::to_owned).collect(),
            created_at: row.created_at,
        }
    }
}

/// What sending one delivery takes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryJob {
    pub id: i64,
    pub attempt_count: i64,
    pub url: String,
    pub secret: String,
    pub event_id: i64,
    pub event_type: String,
    /// The event's `data`, JSON.
    pub data: String,
    pub event_created_at: DateTime<Utc>,
}

/// A delivery's state after an attempt.
#[derive(Debug, Clone)]
pub struct DeliveryUpdate {
    pub state: &'static str,
    pub attempt_count: i64,
    pub due_at_ms: Option<i64>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// `operator_id` as `contact_counts` keys it: 0 for unassigned contacts.
pub fn count_key(operator_id: Option<i64>) -> i64 {
    operator_id.unwrap_or(0)
}

/// The statements of the write operations. Each runs inside the caller's transaction.
pub trait WriteTx: Send {
    fn operator(&mut self, id: i64) -> impl Future<Output = Result<Option<Operator>>> + Send;
    /// The operator, locked until the transaction ends where the database locks rows.
    fn operator_for_update(
        &mut self,
        id: i64,
    ) -> impl Future<Output = Result<Option<Operator>>> + Send;
    fn insert_operator(
        &mut self,
        name: &str,
        is_active: bool,
        max_load: i64,
        created_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Operator>> + Send;
    fn update_operator(
        &mut self,
        id: i64,
        name: Option<&str>,
        is_active: Option<bool>,
        max_load: Option<i64>,
    ) -> impl Future<Output = Result<Option<Operator>>> + Send;
    fn delete_operator(&mut self, id: i64) -> impl Future<Output = Result<bool>> + Send;
    /// One unit of the operator's capacity, if the operator is active and below max_load as committed now.
    fn claim_capacity(
        &mut self,
        operator_id: i64,
    ) -> impl Future<Output = Result<Option<Operator>>> + Send;
    /// Changes the active load by `delta`, without a capacity check (a contact closed or reopened).
    fn adjust_load(
        &mut self,
        operator_id: i64,
        delta: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// A source that has not been deleted.
    fn source(&mut self, id: i64) -> impl Future<Output = Result<Option<Source>>> + Send;
    /// A source that has not been deleted, kept from being deleted until the transaction ends where the
    /// database locks rows (so that a link cannot be added to a source being deleted).
    fn source_for_share(&mut self, id: i64) -> impl Future<Output = Result<Option<Source>>> + Send;
    fn source_named(&mut self, name: &str) -> impl Future<Output = Result<Option<Source>>> + Send;
    fn insert_source(
        &mut self,
        name: &str,
        description: Option<&str>,
        created_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Source>> + Send;
    /// `description`: `None` keeps it, `Some(None)` clears it.
    fn update_source(
        &mut self,
        id: i64,
        name: Option<&str>,
        description: Option<Option<&str>>,
    ) -> impl Future<Output = Result<Option<Source>>> + Send;
    /// Marks the source deleted; its contacts keep pointing at it.
    fn retire_source(
        &mut self,
        id: i64,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;
    fn weight(
        &mut self,
        source_id: i64,
        operator_id: i64,
    ) -> impl Future<Output = Result<Option<OperatorWeight>>> + Send;
    fn insert_weight(
        &mut self,
        source_id: i64,
        operator_id: i64,
        weight: f64,
    ) -> impl Future<Output = Result<OperatorWeight>> + Send;
    fn update_weight(
        &mut self,
        source_id: i64,
        operator_id: i64,
        weight: f64,
    ) -> impl Future<Output = Result<Option<OperatorWeight>>> + Send;
    fn delete_weight(
        &mut self,
        source_id: i64,
        operator_id: i64,
    ) -> impl Future<Output = Result<bool>> + Send;
    fn delete_weights_of_source(
        &mut self,
        source_id: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The operators that may take a contact of the source now: linked, active, below max_load.
    fn candidates(&mut self, source_id: i64)
    -> impl Future<Output = Result<Vec<Candidate>>> + Send;

    /// Every lead holding any of the identity's identifiers: at most three.
    fn leads_matching(
        &mut self,
        identity: &LeadIdentity,
    ) -> impl Future<Output = Result<Vec<Lead>>> + Send;
    fn insert_lead(
        &mut self,
        identity: &LeadIdentity,
        created_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Lead>> + Send;
    /// Sets the lead's empty fields to the given values.
    fn fill_lead(
        &mut self,
        id: i64,
        fill: &LeadIdentity,
    ) -> impl Future<Output = Result<Lead>> + Send;

    /// Inserts an `active` contact and returns its id.
    fn insert_contact(
        &mut self,
        lead_id: i64,
        source_id: i64,
        operator_id: Option<i64>,
        message: Option<&str>,
        created_at: DateTime<Utc>,
        created_by_key_id: Option<i64>,
    ) -> impl Future<Output = Result<i64>> + Send;
    fn contact(&mut self, id: i64) -> impl Future<Output = Result<Option<Contact>>> + Send;
    /// The contact's state, locked until the transaction ends where the database locks rows, so that two
    /// concurrent status changes cannot both move the same load.
    fn contact_state_for_update(
        &mut self,
        id: i64,
    ) -> impl Future<Output = Result<Option<ContactState>>> + Send;
    fn set_contact_status(
        &mut self,
        id: i64,
        status: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Leaves the operator's contacts without an operator (they keep their status), and returns them.
    fn unassign_contacts_of(
        &mut self,
        operator_id: i64,
    ) -> impl Future<Output = Result<Vec<OperatorContact>>> + Send;

    /// Adds `delta` to the number of contacts of (source, operator or 0, status), and returns the new number.
    fn count_contacts(
        &mut self,
        source_id: i64,
        operator_key: i64,
        status: &str,
        delta: i64,
    ) -> impl Future<Output = Result<i64>> + Send;
    /// Moves the operator's counts to "unassigned" (operator 0), as its contacts just were.
    fn move_counts_to_unassigned(
        &mut self,
        operator_id: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// What the client's idempotency key remembers, if anything.
    fn idempotent_request(
        &mut self,
        client: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<IdempotentRequest>>> + Send;
    fn forget_idempotent_request(
        &mut self,
        client: &str,
        key: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Fails with a unique violation when the key is taken, which is how racing retries are told apart.
    fn remember_idempotent_request(
        &mut self,
        client: &str,
        key: &str,
        fingerprint: &str,
        contact_id: i64,
        created_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The oldest waiting contacts of the source, at most `limit`, as read now (not locked).
    fn waiting_contacts(
        &mut self,
        source_id: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<i64>>> + Send;
    /// Whether the contact still waits and is this transaction's to assign: on PostgreSQL it is then locked
    /// until the transaction ends; false when it was assigned meanwhile, or another transaction holds it.
    fn lock_waiting_contact(&mut self, id: i64) -> impl Future<Output = Result<bool>> + Send;
    /// The live sources the operator is linked to.
    fn sources_of_operator(
        &mut self,
        operator_id: i64,
    ) -> impl Future<Output = Result<Vec<i64>>> + Send;
    fn assign_contact(
        &mut self,
        id: i64,
        operator_id: Option<i64>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn insert_history(
        &mut self,
        change: &HistoryChange,
    ) -> impl Future<Output = Result<HistoryEntry>> + Send;

    /// Every webhook's (id, comma-separated event types).
    fn webhook_subscriptions(&mut self) -> impl Future<Output = Result<Vec<(i64, String)>>> + Send;
    fn insert_event(
        &mut self,
        event_type: &str,
        data: &str,
        created_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<i64>> + Send;
    fn insert_delivery(
        &mut self,
        webhook_id: i64,
        event_id: i64,
        due_at_ms: i64,
        created_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn insert_webhook(
        &mut self,
        url: &str,
        events: &str,
        secret: &str,
        created_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<WebhookRow>> + Send;
    fn delete_webhook(&mut self, id: i64) -> impl Future<Output = Result<bool>> + Send;
    /// Leases at most `limit` deliveries due by `now_ms` until `lease_until_ms`, and returns their ids.
    fn claim_deliveries(
        &mut self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<i64>>> + Send;
    fn delivery_job(&mut self, id: i64)
    -> impl Future<Output = Result<Option<DeliveryJob>>> + Send;
    fn insert_attempt(
        &mut self,
        delivery_id: i64,
        attempt: i64,
        at: DateTime<Utc>,
        status_code: Option<i64>,
        error: Option<&str>,
        duration_ms: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    fn update_delivery(
        &mut self,
        delivery_id: i64,
        update: &DeliveryUpdate,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Makes the webhook's delivery pending and due at `due_at_ms`; false when there is no such delivery.
    fn retry_delivery(
        &mut self,
        webhook_id: i64,
        delivery_id: i64,
        due_at_ms: i64,
    ) -> impl Future<Output = Result<bool>> + Send;
    fn purge_idempotency_keys(
        &mut self,
        before: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Forgets the deliveries done with before `before`, and the events left without a delivery.
    fn purge_deliveries(
        &mut self,
        before: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;

    fn insert_api_key(
        &mut self,
        name: &str,
        scope: &str,
        token_hash: &str,
        created_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<ApiKey>> + Send;
    /// Revokes the live key with this id or this name; false when there is none.
    fn revoke_api_key(
        &mut self,
        id: Option<i64>,
        name: Option<&str>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;
}
