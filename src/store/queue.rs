//! The queue: a source's contacts that found no free operator wait, oldest first, and are assigned — by the
//! same weighted draw as new contacts, with the same capacity claim — as soon as capacity may have appeared.
//! The changes that can free capacity call [`drain`] in their own transaction, so that the contacts waiting
//! get the capacity before any newer contact can; a periodic sweep drains whatever was missed.

use std::collections::VecDeque;

use super::events::{self, entry, reason};
use super::tx::{HistoryChange, WriteTx, count_key};
use crate::domain::{Candidate, Status, choose_operator};
use crate::error::AppError;
use crate::model::{self, Contact, Operator};

type Result<T> = std::result::Result<T, AppError>;

/// Most contacts one transaction assigns from the queues; the rest are left to the background sweep, so that
/// no single request holds the database for long.
pub const DRAIN_BUDGET: usize = 256;

/// Waiting contacts read beyond the free capacity, in case concurrent drains hold the first ones.
const LOOKAHEAD: i64 = 32;

/// What a drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drained {
    pub assigned: usize,
    /// The budget ran out, or a contact was skipped because another transaction held it: contacts may still
    /// wait with capacity free.
    pub more: bool,
    /// The sources whose queues were looked at (or, for a new contact left waiting, its source). On
    /// PostgreSQL they are drained once more after the commit: two concurrent transactions — one freeing
    /// capacity, one adding a waiting contact — cannot see each other's uncommitted work, but whichever
    /// commits last sees the other's in its second look.
    pub sources: Vec<i64>,
}

impl Drained {
    /// Nothing was drained, but the source's queue needs the second look.
    pub fn look_again(source_id: i64) -> Drained {
        Drained {
            sources: vec![source_id],
            ..Drained::default()
        }
    }

    pub fn and(mut self, other: Drained) -> Drained {
        self.assigned += other.assigned;
        self.more |= other.more;
        self.sources.extend(other.sources);
        self.sources.sort_unstable();
        self.sources.dedup();
        self
    }
}

/// One source's part in a drain: who may take its contacts, and who waits.
struct SourceQueue {
    source_id: i64,
    candidates: Vec<Candidate>,
    /// The candidates as first read, to restore one whose claimed unit was given back.
    linked: Vec<Candidate>,
    waiting: VecDeque<i64>,
}

/// The operator's unit was given back: wherever it was a candidate, it is one again.
fn give_back(queues: &mut [SourceQueue], operator: &Operator) {
    for queue in queues.iter_mut() {
        let present = queue
            .candidates
            .iter()
            .any(|c| c.operator_id == operator.id);
        if !present
            && let Some(candidate) = queue.linked.iter().find(|c| c.operator_id == operator.id)
        {
            queue.candidates.push(*candidate);
        }
    }
}

/// Assigns the waiting contacts of the sources, oldest first across all of them, while their operators have
/// capacity, and at most [`DRAIN_BUDGET`] of them.
pub async fn drain(tx: &mut impl WriteTx, source_ids: &[i64]) -> Result<Drained> {
    let mut source_ids = source_ids.to_vec();
    source_ids.sort_unstable();
    source_ids.dedup();
    let mut queues = Vec::new();
    for &source_id in &source_ids {
        let candidates = tx.candidates(source_id).await?;
        if candidates.is_empty() {
            continue;
        }
        // As many as the free capacity seen, and some to spare for the ones concurrent drains take first.
        let free_slots: i64 = candidates.iter().map(|c| c.free_slots.max(0)).sum();
        let limit = (free_slots + LOOKAHEAD).min(DRAIN_BUDGET as i64);
        let waiting = tx.waiting_contacts(source_id, limit).await?;
        if !waiting.is_empty() {
            queues.push(SourceQueue {
                source_id,
                linked: candidates.clone(),
                candidates,
                waiting: waiting.into(),
            });
        }
    }
    let mut assigned = 0;
    let mut skipped = false;
    while assigned < DRAIN_BUDGET {
        let next = (0..queues.len())
            .filter(|&i| !queues[i].candidates.is_empty())
            .filter_map(|i| queues[i].waiting.front().map(|&id| (id, i)))
            .min();
        let Some((contact_id, index)) = next else {
            break;
        };
        let source_id = queues[index].source_id;
        let Some(operator) = claim(tx, &mut queues, index).await? else {
            continue; // that source has nobody left; its contacts wait on
        };
        queues[index].waiting.pop_front();
        // Only the contact about to be assigned is locked, and only once it has an operator: a drain never
        // holds a contact it does not assign, so concurrent drains take the next ones, oldest first.
        if !tx.lock_waiting_contact(contact_id).await? {
            skipped = true;
            tx.adjust_load(operator.id, -1).await?;
            give_back(&mut queues, &operator);
            continue;
        }
        tx.assign_contact(contact_id, Some(operator.id)).await?;
        // Ascending operator keys, as every transaction moving counts takes them, so as not to deadlock.
        tx.count_contacts(source_id, count_key(None), Status::ACTIVE, -1)
            .await?;
        tx.count_contacts(source_id, operator.id, Status::ACTIVE, 1)
            .await?;
        let change = HistoryChange {
            contact_id,
            at: model::now(),
            event: entry::ASSIGNED,
            from_operator_id: None,
            to_operator_id: Some(operator.id),
            from_status: Some(Status::ACTIVE.to_owned()),
            to_status: Status::ACTIVE.to_owned(),
            reason: reason::QUEUE,
            api_key_id: None,
        };
        events::record(tx, change, None).await?;
        assigned += 1;
    }
    Ok(Drained {
        assigned,
        more: assigned == DRAIN_BUDGET || skipped,
        sources: source_ids,
    })
}

/// Draws among the free operators of `queues[index]` and claims a unit of the one drawn. An operator found
/// full (or full after this claim) is dropped from every source of the drain, as operators serve several.
async fn claim(
    tx: &mut impl WriteTx,
    queues: &mut [SourceQueue],
    index: usize,
) -> Result<Option<Operator>> {
    let drop_operator = |queues: &mut [SourceQueue], operator_id: i64| {
        for queue in queues.iter_mut() {
            queue.candidates.retain(|c| c.operator_id != operator_id);
        }
    };
    loop {
        let Some(pick) = choose_operator(&queues[index].candidates, &mut rand::rng()) else {
            return Ok(None);
        };
        match tx.claim_capacity(pick.operator_id).await? {
            Some(operator) => {
                if operator.active_load >= operator.max_load {
                    drop_operator(queues, operator.id);
                }
                return Ok(Some(operator));
            }
            None => drop_operator(queues, pick.operator_id),
        }
    }
}

/// Every source the operator's freed capacity could go to.
pub async fn drain_for_operator(tx: &mut impl WriteTx, operator_id: i64) -> Result<Drained> {
    let sources = tx.sources_of_operator(operator_id).await?;
    drain(tx, &sources).await
}

/// A contact given to an operator (or taken from one, `None`) by hand.
#[derive(Debug, Clone)]
pub struct ManualAssignment {
    pub operator_id: Option<i64>,
    /// Assign even to an inactive operator, or past max_load.
    pub force: bool,
    pub api_key_id: Option<i64>,
}

/// Assigns the contact by hand, moving its unit of load (when active) from the previous operator to the new
/// one. An inactive operator, or a full one for an active contact, is refused with 409 unless forced. The
/// previous operator's freed capacity drains their queues at once; an active contact left without an operator
/// waits in its source's queue like any other.
pub async fn assign_manually(
    tx: &mut impl WriteTx,
    id: i64,
    assignment: &ManualAssignment,
) -> Result<(Contact, Drained)> {
    let current = tx
        .contact_state_for_update(id)
        .await?
        .ok_or_else(|| AppError::not_found("Contact"))?;
    let target = assignment.operator_id;
    let mut drained = Drained::default();
    if current.operator_id != target {
        let active = current.status == Status::ACTIVE;
        if let Some(operator_id) = target {
            let operator = tx
                .operator_for_update(operator_id)
                .await?
                .ok_or_else(|| AppError::not_found("Operator"))?;
            let refuse = |why: String| {
                Err(AppError::Conflict(format!(
                    "Operator {operator_id} {why}; send \"force\": true to assign anyway"
                )))
            };
            if !operator.is_active && !assignment.force {
                return refuse("is inactive".to_owned());
            }
            if active {
                if assignment.force {
                    tx.adjust_load(operator_id, 1).await?;
                } else if tx.claim_capacity(operator_id).await?.is_none() {
                    return refuse(format!(
                        "is at max_load ({} of {} active contacts)",
                        operator.active_load, operator.max_load
                    ));
                }
            }
        }
        if active && let Some(previous) = current.operator_id {
            tx.adjust_load(previous, -1).await?;
        }
        tx.assign_contact(id, target).await?;
        let mut changes = [(count_key(current.operator_id), -1), (count_key(target), 1)];
        changes.sort();
        for (operator_key, delta) in changes {
            tx.count_contacts(current.source_id, operator_key, &current.status, delta)
                .await?;
        }
        let change = HistoryChange {
            contact_id: id,
            at: model::now(),
            event: if target.is_some() {
                entry::ASSIGNED
            } else {
                entry::UNASSIGNED
            },
            from_operator_id: current.operator_id,
            to_operator_id: target,
            from_status: Some(current.status.clone()),
            to_status: current.status.clone(),
            reason: reason::MANUAL,
            api_key_id: assignment.api_key_id,
        };
        events::record(tx, change, None).await?;
        if active {
            let mut sources = match current.operator_id {
                Some(previous) => tx.sources_of_operator(previous).await?,
                None => Vec::new(),
            };
            if target.is_none() {
                sources.push(current.source_id);
            }
            drained = drain(tx, &sources).await?;
        }
    }
    let contact = tx
        .contact(id)
        .await?
        .ok_or_else(|| AppError::not_found("Contact"))?;
    Ok((contact, drained))
}
