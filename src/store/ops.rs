//! The write operations, each one transaction, written once for both backends against [`WriteTx`]. They run
//! inside whatever transaction the store gives them (a savepoint in a SQLite batch, or a PostgreSQL
//! transaction that is retried on conflict), so each reads what it needs and checks it itself: nothing here
//! trusts an earlier read made outside the transaction.

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

use super::tx::{WriteTx, count_key};
use crate::domain::{
    Candidate, LeadIdentity, MaxLoad, Name, Scope, Status, Text, Weight, choose_operator,
};
use crate::error::AppError;
use crate::model::{self, ApiKey, Contact, Lead, Operator, OperatorWeight, Source};

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

pub async fn update_operator(
    tx: &mut impl WriteTx,
    id: i64,
    changes: &OperatorChanges,
) -> Result<Operator> {
    tx.update_operator(
        id,
        changes.name.as_ref().map(Name::as_str),
        changes.is_active,
        changes.max_load.map(MaxLoad::get),
    )
    .await?
    .ok_or_else(|| AppError::not_found("Operator"))
}

/// Removes the operator and its weights; its contacts stay, without an operator, in the status they had.
pub async fn delete_operator(tx: &mut impl WriteTx, id: i64) -> Result<()> {
    tx.operator_for_update(id)
        .await?
        .ok_or_else(|| AppError::not_found("Operator"))?;
    tx.unassign_contacts_of(id).await?;
    tx.move_counts_to_unassigned(id).await?;
    tx.delete_operator(id).await?;
    Ok(())
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

pub async fn link_operator(
    tx: &mut impl WriteTx,
    source_id: i64,
    operator_id: i64,
    weight: Weight,
) -> Result<OperatorWeight> {
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
    tx.insert_weight(source_id, operator_id, weight.get()).await
}

pub async fn update_weight(
    tx: &mut impl WriteTx,
    source_id: i64,
    operator_id: i64,
    weight: Weight,
) -> Result<OperatorWeight> {
    tx.update_weight(source_id, operator_id, weight.get())
        .await?
        .ok_or_else(not_linked)
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
            });
        }
        tx.forget_idempotent_request(&key.client, &key.key).await?;
    }
    let contact = route_new_contact(tx, new, now).await?;
    if let Some(key) = &new.idempotency {
        tx.remember_idempotent_request(&key.client, &key.key, &key.fingerprint, contact.id, now)
            .await?;
    }
    Ok(CreatedContact {
        contact,
        replayed: false,
    })
}

async fn route_new_contact(
    tx: &mut impl WriteTx,
    new: &NewContact,
    created_at: DateTime<Utc>,
) -> Result<Contact> {
    let source = tx
        .source(new.source_id)
        .await?
        .ok_or_else(|| AppError::not_found("Source"))?;
    let lead = resolve_lead(tx, &new.lead).await?;
    let operator = assign_operator(tx, source.id).await?;
    let operator_id = operator.as_ref().map(|o| o.id);
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
    tx.count_contacts(source.id, count_key(operator_id), Status::ACTIVE, 1)
        .await?;
    Ok(Contact {
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
    })
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
async fn assign_operator(tx: &mut impl WriteTx, source_id: i64) -> Result<Option<Operator>> {
    let mut candidates = tx.candidates(source_id).await?;
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
/// assignment, not an operator's own decision.
pub async fn set_contact_status(
    tx: &mut impl WriteTx,
    id: i64,
    status: &Status,
) -> Result<Contact> {
    let current = tx
        .contact_state_for_update(id)
        .await?
        .ok_or_else(|| AppError::not_found("Contact"))?;
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
    }
    tx.contact(id)
        .await?
        .ok_or_else(|| AppError::not_found("Contact"))
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
