//! The write operations, each one transaction, written once for both backends against [`WriteTx`]. They run
//! inside whatever transaction the store gives them (a savepoint in a SQLite batch, or a PostgreSQL
//! transaction that is retried on conflict), so each reads what it needs and checks it itself: nothing here
//! trusts an earlier read made outside the transaction.

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

use super::events::{self, entry, reason};
use super::queue::{self, Drained};
use super::tx::{DeliveryJob, DeliveryUpdate, HistoryChange, WriteTx, count_key};
use crate::domain::{
    Candidate, LeadIdentity, MaxLoad, Name, Scope, Status, Text, Weight, choose_operator,
};
use crate::error::AppError;
use crate::model::{self, ApiKey, Contact, Lead, Operator, OperatorWeight, Source, Webhook};

type Result<T> = std::result::Result<T, AppError>;

#[derive(Debug, Clone)]
pub struct NewOperator {
    pub name: Name,
    pub is_active: bool,
    pub max_load: MaxLoad,
}

/// Fields left `None` keep their value.
#[derive(Debug, Clone, Default)]
pub struct OperatorChanges {
    pub name: Option<Name>,
    pub is_active: Option<bool>,
    pub max_load: Option<MaxLoad>,
}

#[derive(Debug, Clone)]
pub struct NewSource {
    pub name: Name,
    pub description: Option<Text>,
}

/// `name: None` keeps the name; `description: None` keeps it, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct SourceChanges {
    pub name: Option<Name>,
    pub description: Option<Option<Text>>,
}

#[derive(Debug, Clone)]
pub struct NewContact {
    pub source_id: i64,
    pub lead: LeadIdentity,
    pub message: Option<Text>,
    pub idempotency: Option<IdempotencyKey>,
    /// The API key that sent it, if the API is not open.
    pub created_by_key_id: Option<i64>,
}

impl NewContact {
    /// SHA-256 of the normalised request, so that a retry matches however its JSON was spelled.
    pub fn fingerprint(&self) -> String {
        // A JSON array: unambiguous, and independent of any type's Debug output.
        let canonical = serde_json::json!([
            self.source_id,
            self.lead.external_id,
            self.lead.phone.as_ref().map(|p| p.as_str()),
            self.lead.email.as_ref().map(|e| e.as_str()),
            self.lead.name,
            self.message.as_ref().map(Text::as_str),
        ])
        .to_string();
        Sha256::digest(canonical.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// An `Idempotency-Key` sent with a contact.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// Whose key it is: keys of different clients never meet.
    pub client: String,
    pub key: String,
    /// [`NewContact::fingerprint`] of the request that came with it.
    pub fingerprint: String,
}

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_WINDOW: TimeDelta = TimeDelta::hours(24);

/// A contact as `POST /contacts/` answers it: created now, or replayed for a retried idempotency key.
#[derive(Debug, Clone)]
pub struct CreatedContact {
    pub contact: Contact,
    pub replayed: bool,
    /// The older contacts of the source assigned first.
    pub drained: Drained,
}

// ---- operators ----

pub async fn create_operator(tx: &mut impl WriteTx, new: &NewOperator) -> Result<Operator> {
    tx.insert_operator(
        new.name.as_str(),
        new.is_active,
        new.max_load.get(),
        model::now(),
    )
    .await
}

/// Changes the operator; capacity it gains (activated, max_load raised) goes to the queues at once.
pub async fn update_operator(
    tx: &mut impl WriteTx,
    id: i64,
    changes: &OperatorChanges,
) -> Result<(Operator, Drained)> {
    let operator = tx
        .update_operator(
            id,
            changes.name.as_ref().map(Name::as_str),
            changes.is_active,
            changes.max_load.map(MaxLoad::get),
        )
        .await?
        .ok_or_else(|| AppError::not_found("Operator"))?;
    let drained = queue::drain_for_operator(tx, id).await?;
    Ok((operator, drained))
}

/// Removes the operator and its weights; its contacts stay, without an operator, in the status they had. Its
/// active contacts so go back to their sources' queues (by age, so usually to the front), which drain among
/// the operators left.
pub async fn delete_operator(
    tx: &mut impl WriteTx,
    id: i64,
    api_key_id: Option<i64>,
) -> Result<Drained> {
    tx.operator_for_update(id)
        .await?
        .ok_or_else(|| AppError::not_found("Operator"))?;
    // Exactly the contacts the update changed: one changed by hand meanwhile is not among them.
    let contacts = tx.unassign_contacts_of(id).await?;
    tx.move_counts_to_unassigned(id).await?;
    tx.delete_operator(id).await?;
    let at = model::now();
    let mut requeued = Vec::new();
    for contact in contacts {
        if contact.status == Status::ACTIVE {
            requeued.push(contact.source_id);
        }
        let change = HistoryChange {
            contact_id: contact.id,
            at,
            event: entry::UNASSIGNED,
            from_operator_id: Some(id),
            to_operator_id: None,
            from_status: Some(contact.status.clone()),
            to_status: contact.status,
            reason: reason::OPERATOR_DELETED,
            api_key_id,
        };
        events::record(tx, change, None).await?;
    }
    queue::drain(tx, &requeued).await
}

// ---- sources and weights ----

pub async fn create_source(tx: &mut impl WriteTx, new: &NewSource) -> Result<Source> {
    ensure_name_free(tx, new.name.as_str(), None).await?;
    let description = new.description.as_ref().map(Text::as_str);
    tx.insert_source(new.name.as_str(), description, model::now())
        .await
}

pub async fn update_source(
    tx: &mut impl WriteTx,
    id: i64,
    changes: &SourceChanges,
) -> Result<Source> {
    if let Some(name) = &changes.name {
        ensure_name_free(tx, name.as_str(), Some(id)).await?;
    }
    let description = changes
        .description
        .as_ref()
        .map(|d| d.as_ref().map(Text::as_str));
    tx.update_source(id, changes.name.as_ref().map(Name::as_str), description)
        .await?
        .ok_or_else(|| AppError::not_found("Source"))
}

async fn ensure_name_free(tx: &mut impl WriteTx, name: &str, except_id: Option<i64>) -> Result<()> {
    match tx.source_named(name).await? {
        Some(existing) if Some(existing.id) != except_id => Err(AppError::Conflict(format!(
            "A source named {name:?} already exists (id {})",
            existing.id
        ))),
        _ => Ok(()),
    }
}

/// Retires the source: it disappears from the API and takes no new contacts, its weights are removed, and its
/// contacts stay as they are (with their operators and statuses), still listed and counted.
pub async fn delete_source(tx: &mut impl WriteTx, id: i64) -> Result<()> {
    if !tx.retire_source(id, model::now()).await? {
        return Err(AppError::not_found("Source"));
    }
    tx.delete_weights_of_source(id).await
}

/// Links the operator to the source; the source's queue drains to them at once.
pub async fn link_operator(
    tx: &mut impl WriteTx,
    source_id: i64,
    operator_id: i64,
    weight: Weight,
) -> Result<(OperatorWeight, Drained)> {
    tx.source_for_share(source_id)
        .await?
        .ok_or_else(|| AppError::not_found("Source"))?;
    tx.operator(operator_id)
        .await?
        .ok_or_else(|| AppError::not_found("Operator"))?;
    if tx.weight(source_id, operator_id).await?.is_some() {
        return Err(AppError::Conflict(format!(
            "Operator {operator_id} is already linked to source {source_id}"
        )));
    }
    let linked = tx
        .insert_weight(source_id, operator_id, weight.get())
        .await?;
    let drained = queue::drain(tx, &[source_id]).await?;
    Ok((linked, drained))
}

pub async fn update_weight(
    tx: &mut impl WriteTx,
    source_id: i64,
    operator_id: i64,
    weight: Weight,
) -> Result<(OperatorWeight, Drained)> {
    let updated = tx
        .update_weight(source_id, operator_id, weight.get())
        .await?
        .ok_or_else(not_linked)?;
    let drained = queue::drain(tx, &[source_id]).await?;
    Ok((updated, drained))
}

pub async fn unlink_operator(
    tx: &mut impl WriteTx,
    source_id: i64,
    operator_id: i64,
) -> Result<()> {
    if !tx.delete_weight(source_id, operator_id).await? {
        return Err(not_linked());
    }
    Ok(())
}

fn not_linked() -> AppError {
    AppError::NotFound("Operator is not linked to this source".to_owned())
}

// ---- contacts ----

/// Identifies the lead, picks an operator, claims one unit of their capacity and stores the contact: all in
/// the caller's transaction, so that either all of it is committed or none of it. With an idempotency key
/// seen in the last 24 hours, creates nothing and answers the contact that key created.
pub async fn create_contact(tx: &mut impl WriteTx, new: &NewContact) -> Result<CreatedContact> {
    let now = model::now();
    if let Some(key) = &new.idempotency
        && let Some(earlier) = tx.idempotent_request(&key.client, &key.key).await?
    {
        if now - earlier.created_at < IDEMPOTENCY_WINDOW {
            if earlier.fingerprint != key.fingerprint {
                return Err(AppError::Unprocessable(
                    "Idempotency-Key: already used with a different request".to_owned(),
                ));
            }
            let contact = tx.contact(earlier.contact_id).await?.ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!(
                    "idempotency key points at a missing contact"
                ))
            })?;
            return Ok(CreatedContact {
                contact,
                replayed: true,
                drained: Drained::default(),
            });
        }
        tx.forget_idempotent_request(&key.client, &key.key).await?;
    }
    let (contact, drained) = route_new_contact(tx, new, now).await?;
    if let Some(key) = &new.idempotency {
        tx.remember_idempotent_request(&key.client, &key.key, &key.fingerprint, contact.id, now)
            .await?;
    }
    Ok(CreatedContact {
        contact,
        replayed: false,
        drained,
    })
}

/// Routes the contact as it arrives. It never jumps the queue: should the source have older contacts waiting
/// while an operator is free (capacity a trigger did not hand out), those are assigned first.
async fn route_new_contact(
    tx: &mut impl WriteTx,
    new: &NewContact,
    created_at: DateTime<Utc>,
) -> Result<(Contact, Drained)> {
    let source = tx
        .source(new.source_id)
        .await?
        .ok_or_else(|| AppError::not_found("Source"))?;
    let lead = resolve_lead(tx, &new.lead).await?;
    let mut candidates = tx.candidates(source.id).await?;
    let mut drained = Drained::default();
    if !candidates.is_empty() && !tx.waiting_contacts(source.id, 1).await?.is_empty() {
        drained = queue::drain(tx, &[source.id]).await?;
        candidates = tx.candidates(source.id).await?;
    }
    let operator = assign_operator(tx, candidates).await?;
    let operator_id = operator.as_ref().map(|o| o.id);
    if operator_id.is_none() {
        drained = drained.and(Drained::look_again(source.id));
    }
    let message = new.message.as_ref().map(Text::as_str);
    let id = tx
        .insert_contact(
            lead.id,
            source.id,
            operator_id,
            message,
            created_at,
            new.created_by_key_id,
        )
        .await?;
    let counted = tx
        .count_contacts(source.id, count_key(operator_id), Status::ACTIVE, 1)
        .await?;
    let contact = Contact {
        id,
        lead_id: lead.id,
        source_id: source.id,
        operator_id,
        status: Status::ACTIVE.to_owned(),
        message: message.map(str::to_owned),
        created_at,
        lead,
        source,
        operator,
        // The newest contact waits last: its place is the number waiting, which the counts hold, and reading
        // it there costs nothing however long the queue.
        queue_position: operator_id.is_none().then_some(counted),
    };
    let change = HistoryChange {
        contact_id: id,
        at: created_at,
        event: entry::CREATED,
        from_operator_id: None,
        to_operator_id: operator_id,
        from_status: None,
        to_status: Status::ACTIVE.to_owned(),
        reason: reason::CREATION,
        api_key_id: new.created_by_key_id,
    };
    events::record(tx, change, Some(&contact)).await?;
    Ok((contact, drained))
}

/// Finds the lead by external_id, then phone, then email (the first that matches wins), filling in the fields
/// it lacks unless another lead holds them; creates the lead when nothing matches.
async fn resolve_lead(tx: &mut impl WriteTx, identity: &LeadIdentity) -> Result<Lead> {
    if !identity.has_identifier() {
        return tx.insert_lead(identity, model::now()).await;
    }
    let holders = tx.leads_matching(identity).await?;
    let external_id = identity.external_id.as_deref();
    let phone = identity.phone.as_ref().map(|p| p.as_str());
    let email = identity.email.as_ref().map(|e| e.as_str());
    let held_by = |value: Option<&str>, field: fn(&Lead) -> Option<&str>| {
        value.and_then(|value| holders.iter().find(|lead| field(lead) == Some(value)))
    };
    let by_external_id = held_by(external_id, |l| l.external_id.as_deref());
    let by_phone = held_by(phone, |l| l.phone.as_deref());
    let by_email = held_by(email, |l| l.email.as_deref());

    let Some(lead) = by_external_id.or(by_phone).or(by_email) else {
        // Nobody holds any of the identifiers (or they would have matched), so the new lead takes them all.
        return tx.insert_lead(identity, model::now()).await;
    };
    let free = |holder: Option<&Lead>| holder.is_none_or(|other| other.id == lead.id);
    let fill = LeadIdentity {
        external_id: identity
            .external_id
            .clone()
            .filter(|_| lead.external_id.is_none() && free(by_external_id)),
        phone: identity
            .phone
            .clone()
            .filter(|_| lead.phone.is_none() && free(by_phone)),
        email: identity
            .email
            .clone()
            .filter(|_| lead.email.is_none() && free(by_email)),
        name: identity.name.clone().filter(|_| lead.name.is_none()),
    };
    if fill == LeadIdentity::default() {
        return Ok(lead.clone());
    }
    tx.fill_lead(lead.id, &fill).await
}

/// Draws among the free operators of the source and claims capacity on the one drawn. The claim re-checks
/// capacity as committed; should a concurrent transaction have taken the last slot, that operator is dropped
/// and the draw repeated among the rest, as if they had been the candidates all along.
async fn assign_operator(
    tx: &mut impl WriteTx,
    mut candidates: Vec<Candidate>,
) -> Result<Option<Operator>> {
    while let Some(pick) = draw(&candidates) {
        if let Some(operator) = tx.claim_capacity(pick.operator_id).await? {
            return Ok(Some(operator));
        }
        candidates.retain(|c| c.operator_id != pick.operator_id);
    }
    Ok(None)
}

fn draw(candidates: &[Candidate]) -> Option<Candidate> {
    choose_operator(candidates, &mut rand::rng())
}

/// Sets the contact's status, moving one unit of load when it enters or leaves `active`. Reopening a contact
/// gives it back to its operator even when that takes them over max_load: max_load bounds automatic
/// assignment, not an operator's own decision. A unit freed goes to the operator's queues at once; an
/// unassigned contact reopened waits in its source's queue (and is assigned if it can be).
pub async fn set_contact_status(
    tx: &mut impl WriteTx,
    id: i64,
    status: &Status,
    api_key_id: Option<i64>,
) -> Result<(Contact, Drained)> {
    let current = tx
        .contact_state_for_update(id)
        .await?
        .ok_or_else(|| AppError::not_found("Contact"))?;
    let mut drained = Drained::default();
    if current.status != status.as_str() {
        tx.set_contact_status(id, status.as_str()).await?;
        let was_active = current.status == Status::ACTIVE;
        if let Some(operator_id) = current.operator_id
            && was_active != status.is_active()
        {
            tx.adjust_load(operator_id, if was_active { -1 } else { 1 })
                .await?;
        }
        // Always in the same order, so that two transactions touching the same two counts cannot deadlock.
        let key = count_key(current.operator_id);
        let mut changes = [(current.status.as_str(), -1), (status.as_str(), 1)];
        changes.sort();
        for (status, delta) in changes {
            tx.count_contacts(current.source_id, key, status, delta)
                .await?;
        }
        let change = HistoryChange {
            contact_id: id,
            at: model::now(),
            event: entry::STATUS_CHANGED,
            from_operator_id: current.operator_id,
            to_operator_id: current.operator_id,
            from_status: Some(current.status.clone()),
            to_status: status.as_str().to_owned(),
            reason: reason::MANUAL,
            api_key_id,
        };
        events::record(tx, change, None).await?;
        drained = match current.operator_id {
            Some(operator_id) if was_active => queue::drain_for_operator(tx, operator_id).await?,
            None if status.is_active() => queue::drain(tx, &[current.source_id]).await?,
            _ => Drained::default(),
        };
    }
    let contact = tx
        .contact(id)
        .await?
        .ok_or_else(|| AppError::not_found("Contact"))?;
    Ok((contact, drained))
}

// ---- API keys ----

pub async fn create_api_key(
    tx: &mut impl WriteTx,
    name: &Name,
    scope: Scope,
    token_hash: &str,
) -> Result<ApiKey> {
    tx.insert_api_key(name.as_str(), scope.as_str(), token_hash, model::now())
        .await
}

/// Revokes by id, or by name when `key` is not a number.
pub async fn revoke_api_key(tx: &mut impl WriteTx, key: &str) -> Result<()> {
    let id = key.parse::<i64>().ok();
    let name = id.is_none().then_some(key);
    if !tx.revoke_api_key(id, name, model::now()).await? {
        return Err(AppError::NotFound(format!(
            "No live API key with id or name {key:?}"
        )));
    }
    Ok(())
}

// ---- webhooks ----

/// A webhook to create, already checked.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<&'static str>,
    pub secret: String,
}

pub async fn create_webhook(tx: &mut impl WriteTx, new: &NewWebhook) -> Result<Webhook> {
    let events = new.events.join(",");
    let row = tx
        .insert_webhook(&new.url, &events, &new.secret, model::now())
        .await?;
    Ok(Webhook::from(row))
}

/// Removes the webhook with its deliveries: nothing more is sent to it.
pub async fn delete_webhook(tx: &mut impl WriteTx, id: i64) -> Result<()> {
    if !tx.delete_webhook(id).await? {
        return Err(AppError::not_found("Webhook"));
    }
    Ok(())
}

/// Leases up to `limit` deliveries that are due, for `lease`, and returns what sending them takes.
pub async fn claim_deliveries(
    tx: &mut impl WriteTx,
    lease: TimeDelta,
    limit: i64,
) -> Result<Vec<DeliveryJob>> {
    let now = Utc::now().timestamp_millis();
    let ids = tx
        .claim_deliveries(now, now + lease.num_milliseconds(), limit)
        .await?;
    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(job) = tx.delivery_job(id).await? {
            jobs.push(job);
        }
    }
    Ok(jobs)
}

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

/// Logs the attempt and moves the delivery on: delivered, due again later, or failed for good. A delivery
/// whose webhook was deleted meanwhile is gone, and so is the record of this attempt.
pub async fn record_attempt(tx: &mut impl WriteTx, attempt: &Attempt) -> Result<()> {
    if tx.delivery_job(attempt.delivery_id).await?.is_none() {
        return Ok(());
    }
    tx.insert_attempt(
        attempt.delivery_id,
        attempt.number,
        attempt.at,
        attempt.status_code,
        attempt.error.as_deref(),
        attempt.duration_ms,
    )
    .await?;
    let state = match (attempt.delivered, attempt.retry_at) {
        (true, _) => "delivered",
        (false, Some(_)) => "pending",
        (false, None) => "failed",
    };
    let update = DeliveryUpdate {
        state,
        attempt_count: attempt.number,
        due_at_ms: attempt
            .retry_at
            .filter(|_| !attempt.delivered)
            .map(|at| at.timestamp_millis()),
        last_status_code: attempt.status_code,
        last_error: attempt.error.clone(),
        delivered_at: attempt.delivered.then_some(attempt.at),
    };
    tx.update_delivery(attempt.delivery_id, &update).await
}

/// Sends the webhook's delivery again, now, whatever became of it.
pub async fn retry_delivery(
    tx: &mut impl WriteTx,
    webhook_id: i64,
    delivery_id: i64,
) -> Result<()> {
    let now = Utc::now().timestamp_millis();
    if !tx.retry_delivery(webhook_id, delivery_id, now).await? {
        return Err(AppError::not_found("Delivery"));
    }
    Ok(())
}

/// How long a delivery done with (delivered, or failed for good) stays visible through the API.
pub const DELIVERY_RETENTION: TimeDelta = TimeDelta::days(7);

/// Forgets the idempotency keys older than their window, and the deliveries (with their attempts and events)
/// done with for longer than [`DELIVERY_RETENTION`].
pub async fn purge_expired(tx: &mut impl WriteTx) -> Result<()> {
    let now = model::now();
    tx.purge_idempotency_keys(now - IDEMPOTENCY_WINDOW).await?;
    tx.purge_deliveries(now - DELIVERY_RETENTION).await
}
