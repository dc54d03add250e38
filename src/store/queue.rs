//! The queue: a source's contacts that found no free operator wait, oldest first, and are assigned — by the
//! same draw-and-claim as new contacts — as soon as capacity may have appeared. The changes that can free
//! capacity call [`drain`] in their own transaction, so that the contacts waiting get the capacity before
//! any newer contact can; a periodic sweep drains whatever was missed. A waiting contact's place and ETA are
//! read here. Manual assignment is here too: it moves capacity, and drains what it frees.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::audit::{self, Actor, AuditChange, action};
use super::contacts::Contact;
use super::executor::{Dialect, Executor, params};
use super::history::{self, HistoryChange, entry, reason};
use super::operators::Operator;
use super::tallies::{self, count_key};
use super::{Page, Result, Store, acceptance, candidates, contacts, decisions, operators, sources};
use crate::domain::{
    AcceptTimeout, Candidate, Chooser, Exclusion, Field, Round, Routing, Status, Strategy,
    choose_and_claim,
};
use crate::error::AppError;

/// Most contacts one transaction assigns from the queues; the rest are left to the background sweep, so that
/// no single request holds the database for long.
pub const DRAIN_BUDGET: usize = 256;

/// Waiting contacts read beyond the free capacity, in case concurrent drains hold the first ones.
const LOOKAHEAD: i64 = 32;

/// The condition of a waiting contact, on `contacts` as `c` or unqualified.
macro_rules! waiting {
    () => {
        "operator_id IS NULL AND status = 'active'"
    };
}
pub(super) use waiting as waiting_condition;

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

// ---- reads ----

/// A contact waiting in its queue.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    id: i64,
    /// Some operators declined it or let it time out: it is not theirs to take.
    refused: bool,
}

record!(Waiting { id, refused });

/// The oldest waiting contacts of the source, at most `limit`, as read now (not locked), leaving out those
/// that every operator linked to the source refused: they wait for someone new, and must not fill the read
/// ahead of contacts that can be assigned.
async fn waiting(db: &mut impl Executor, source_id: i64, limit: i64) -> Result<Vec<Waiting>> {
    let sql = concat!(
        "SELECT id, EXISTS (SELECT 1 FROM contact_refusals r WHERE r.contact_id = contacts.id) AS refused ",
        "FROM contacts WHERE source_id = $1 AND ",
        waiting!(),
        " AND (NOT EXISTS (SELECT 1 FROM contact_refusals r WHERE r.contact_id = contacts.id) ",
        "OR EXISTS (SELECT 1 FROM source_operator_weights w WHERE w.source_id = contacts.source_id ",
        "AND NOT EXISTS (SELECT 1 FROM contact_refusals r ",
        "WHERE r.contact_id = contacts.id AND r.operator_id = w.operator_id))) ",
        "ORDER BY id LIMIT $2"
    );
    db.all(sql, params![source_id, limit]).await
}

/// How many contacts of the source wait ahead of contact `id`, or with it.
pub async fn position(db: &mut impl Executor, source_id: i64, id: i64) -> Result<i64> {
    let sql = concat!(
        "SELECT COUNT(*) AS value FROM contacts WHERE source_id = $1 AND ",
        waiting!(),
        " AND id <= $2"
    );
    db.one(sql, params![source_id, id]).await
}

/// Sets the queue position and the ETA of a waiting contact, its source's pace read at `now` (the routing
/// clock's).
pub async fn place(
    db: &mut impl Executor,
    contact: &mut Contact,
    now: DateTime<Utc>,
) -> Result<()> {
    let queue_position = position(db, contact.source_id, contact.id).await?;
    let pace = decisions::queue_pace(db, contact.source_id, now).await?;
    contact.queue_position = Some(queue_position);
    contact.eta_seconds = pace.map(|pace| decisions::eta_seconds(queue_position, pace));
    Ok(())
}

/// Sets the queue position and the ETA of the waiting contacts among `contacts`: per source, one count up to
/// the oldest of them and one walk over the queue from there to the newest, rather than a count for each;
/// and the source's pace, read once at `now` (the routing clock's).
pub async fn fill_positions(
    db: &mut impl Executor,
    contacts: &mut [Contact],
    now: DateTime<Utc>,
) -> Result<()> {
    let mut sources: Vec<i64> = contacts
        .iter()
        .filter(|c| c.is_waiting())
        .map(|c| c.source_id)
        .collect();
    sources.sort_unstable();
    sources.dedup();
    for source_id in sources {
        let waiting_here = || {
            contacts
                .iter()
                .filter(|c| c.is_waiting() && c.source_id == source_id)
        };
        let (Some(first), Some(last)) = (
            waiting_here().map(|c| c.id).min(),
            waiting_here().map(|c| c.id).max(),
        ) else {
            continue;
        };
        let ahead = position(db, source_id, first - 1).await?;
        let sql = concat!(
            "SELECT id AS value FROM contacts WHERE source_id = $1 AND ",
            waiting!(),
            " AND id BETWEEN $2 AND $3 ORDER BY id"
        );
        let queue: Vec<i64> = db.all(sql, params![source_id, first, last]).await?;
        let pace = decisions::queue_pace(db, source_id, now).await?;
        for contact in contacts
            .iter_mut()
            .filter(|c| c.is_waiting() && c.source_id == source_id)
        {
            // A contact read before a concurrent change may be missing from the queue read after it.
            contact.queue_position = queue
                .binary_search(&contact.id)
                .ok()
                .map(|index| ahead + index as i64 + 1);
            contact.eta_seconds = contact
                .queue_position
                .zip(pace)
                .map(|(position, pace)| decisions::eta_seconds(position, pace));
        }
    }
    Ok(())
}

/// A page of the source's queue, oldest first, with their positions and ETAs (the pace read at `now`, the
/// routing clock's).
pub(super) async fn page_of(
    db: &mut impl Executor,
    source_id: i64,
    page: Page,
    now: DateTime<Utc>,
) -> Result<Vec<Contact>> {
    sources::find(db, source_id)
        .await?
        .ok_or_else(|| AppError::not_found("Source"))?;
    let sql = concat!(
        contacts::contact_select!(),
        " WHERE c.source_id = $1 AND c.operator_id IS NULL AND c.status = 'active' ",
        "ORDER BY c.id LIMIT $2 OFFSET $3"
    );
    let contacts: Vec<Contact> = db
        .all(sql, params![source_id, page.limit, page.skip])
        .await?;
    let pace = if contacts.is_empty() {
        None
    } else {
        decisions::queue_pace(db, source_id, now).await?
    };
    Ok(contacts
        .into_iter()
        .zip(1..)
        .map(|(contact, index)| {
            let position = page.skip.saturating_add(index);
            Contact {
                queue_position: Some(position),
                eta_seconds: pace.map(|pace| decisions::eta_seconds(position, pace)),
                ..contact
            }
        })
        .collect())
}

/// The live sources with a waiting contact: what the sweep drains.
async fn sources_with_waiting(db: &mut impl Executor) -> Result<Vec<i64>> {
    let sql = concat!(
        "SELECT s.id AS value FROM sources s WHERE s.deleted_at IS NULL AND EXISTS ",
        "(SELECT 1 FROM contacts c WHERE c.source_id = s.id AND c.",
        waiting!(),
        ") ORDER BY s.id"
    );
    db.all(sql, params![]).await
}

/// Whether the contact still waits and is this transaction's to give to the operator: on PostgreSQL it is
/// then locked until the transaction ends; false when it was assigned meanwhile, or another transaction (a
/// concurrent drain about to assign it, a change by hand) holds it, in which case it is left to that one — or
/// when the operator refused it since the drain read the queue.
async fn lock_waiting(db: &mut impl Executor, id: i64, operator_id: i64) -> Result<bool> {
    let sql = match db.dialect() {
        Dialect::Sqlite => concat!(
            "SELECT id AS value FROM contacts WHERE id = $1 AND ",
            waiting!(),
            " AND NOT EXISTS (SELECT 1 FROM contact_refusals r WHERE r.contact_id = $1 AND r.operator_id = $2)"
        ),
        Dialect::Postgres => concat!(
            "SELECT id AS value FROM contacts WHERE id = $1 AND ",
            waiting!(),
            " AND NOT EXISTS (SELECT 1 FROM contact_refusals r WHERE r.contact_id = $1 AND r.operator_id = $2)",
            " FOR UPDATE SKIP LOCKED"
        ),
    };
    Ok(db
        .optional::<i64>(sql, params![id, operator_id])
        .await?
        .is_some())
}

// ---- drains ----

/// One source's part in a drain: who may take its contacts (and who may not), who waits, and how it chooses.
struct SourceQueue {
    source_id: i64,
    field: Field,
    waiting: VecDeque<Waiting>,
    accept_timeout: AcceptTimeout,
    chooser: Chooser,
}

/// The operator is out of capacity: they are no candidate of any source of the drain.
fn drop_everywhere(queues: &mut [SourceQueue], operator_id: i64) {
    for queue in queues.iter_mut() {
        if queue
            .field
            .candidates
            .iter()
            .any(|c| c.operator_id == operator_id)
        {
            queue.field.exclude(operator_id, Exclusion::Full);
        }
    }
}

/// The operator took a unit: wherever they are a candidate their load is as the claim left it, and they are
/// full where it reached max_load.
fn claimed_everywhere(queues: &mut [SourceQueue], operator: &Operator, at: DateTime<Utc>) {
    for queue in queues.iter_mut() {
        if let Some(candidate) = queue
            .field
            .candidates
            .iter_mut()
            .find(|c| c.operator_id == operator.id)
        {
            candidate.load = operator.active_load;
            candidate.last_assigned_at = Some(at);
        }
    }
    if operator.active_load >= operator.max_load {
        drop_everywhere(queues, operator.id);
    }
}

/// The operator's unit was given back: wherever they were a candidate before `before`, they are one again,
/// at the load they had.
fn give_back(queues: &mut [SourceQueue], before: &[Field]) {
    for (queue, before) in queues.iter_mut().zip(before) {
        queue.field = before.clone();
    }
}

/// Assigns the waiting contacts of the sources, oldest first across all of them, while their operators have
/// capacity, and at most [`DRAIN_BUDGET`] of them. Each assignment is chosen by its source's strategy and
/// recorded as a decision.
pub async fn drain(
    db: &mut impl Executor,
    routing: &Routing,
    source_ids: &[i64],
) -> Result<Drained> {
    let mut source_ids = source_ids.to_vec();
    source_ids.sort_unstable();
    source_ids.dedup();
    let mut queues = Vec::new();
    for &source_id in &source_ids {
        let mut field = candidates::field_of(db, source_id, routing.clock.now()).await?;
        if field.candidates.is_empty() {
            continue;
        }
        // As many as the free capacity seen, and some to spare for the ones concurrent drains take first.
        let free_slots: i64 = field.candidates.iter().map(Candidate::free_slots).sum();
        let limit = (free_slots + LOOKAHEAD).min(DRAIN_BUDGET as i64);
        let waiting = waiting(db, source_id, limit).await?;
        if waiting.is_empty() {
            continue;
        }
        let rules = sources::rules_of(db, source_id).await?;
        let mut round = Round::default();
        if rules.strategy == Strategy::SmoothWeighted || sources::takes_turns(db, rules.strategy) {
            round = sources::lock_round(db, source_id).await?;
        }
        if sources::takes_turns(db, rules.strategy) {
            // Read again now that the choices before this one are committed.
            field = candidates::field_of(db, source_id, routing.clock.now()).await?;
        }
        queues.push(SourceQueue {
            source_id,
            field,
            waiting: waiting.into(),
            accept_timeout: rules.accept_timeout,
            chooser: Chooser::new(rules.strategy, round),
        });
    }
    let mut assigned = 0;
    let mut skipped = false;
    while assigned < DRAIN_BUDGET {
        let next = (0..queues.len())
            .filter(|&i| !queues[i].field.candidates.is_empty())
            .filter_map(|i| queues[i].waiting.front().map(|&w| (w.id, w.refused, i)))
            .min();
        let Some((contact_id, has_refusals, index)) = next else {
            break;
        };
        let source_id = queues[index].source_id;
        let now = routing.clock.now();
        let mut refused = Vec::new();
        let mut claimer = operators::Claimer { db: &mut *db, now };
        let chooser_before = queues[index].chooser.clone();
        let fields_before: Vec<Field> = queues.iter().map(|q| q.field.clone()).collect();
        let queue = &mut queues[index];
        let (claimed, decision) = if has_refusals {
            // Only the others may take it; should none be left, it waits on and the queue moves past it.
            let refusers = acceptance::refusers(claimer.db, contact_id).await?;
            let mut others = queue.field.without_refusers(&refusers);
            if others.candidates.is_empty() {
                queue.waiting.pop_front();
                continue;
            }
            choose_and_claim(
                &mut others,
                &mut queue.chooser,
                &routing.random,
                &mut claimer,
                |operator_id| refused.push(operator_id),
            )
            .await?
        } else {
            choose_and_claim(
                &mut queue.field,
                &mut queue.chooser,
                &routing.random,
                &mut claimer,
                |operator_id| refused.push(operator_id),
            )
            .await?
        };
        for &operator_id in &refused {
            drop_everywhere(&mut queues, operator_id);
        }
        let Some(operator) = claimed else {
            continue; // that source has nobody left; its contacts wait on
        };
        claimed_everywhere(&mut queues, &operator, now);
        queues[index].waiting.pop_front();
        // Only the contact about to be assigned is locked, and only once it has an operator: a drain never
        // holds a contact it does not assign, so concurrent drains take the next ones, oldest first.
        if !lock_waiting(db, contact_id, operator.id).await? {
            skipped = true;
            operators::adjust_load(db, operator.id, -1).await?;
            give_back(&mut queues, &fields_before);
            for &operator_id in &refused {
                drop_everywhere(&mut queues, operator_id);
            }
            queues[index].chooser = chooser_before;
            continue;
        }
        let accept_timeout = queues[index].accept_timeout;
        contacts::set_operator(db, contact_id, Some(operator.id), now, accept_timeout).await?;
        // Ascending operator keys, as every transaction moving counts takes them, so as not to deadlock.
        tallies::count(db, source_id, count_key(None), Status::ACTIVE, -1).await?;
        tallies::count(db, source_id, operator.id, Status::ACTIVE, 1).await?;
        let decision_id =
            decisions::record(db, contact_id, source_id, now, reason::QUEUE, &decision).await?;
        let change = HistoryChange {
            contact_id,
            at: super::now(),
            event: entry::ASSIGNED,
            from_operator_id: None,
            to_operator_id: Some(operator.id),
            from_status: Some(Status::active()),
            to_status: Status::active(),
            reason: reason::QUEUE,
            api_key_id: None,
            decision_id: Some(decision_id),
        };
        history::record(db, change, None, now).await?;
        assigned += 1;
    }
    for queue in &queues {
        sources::save_round(db, queue.source_id, &queue.chooser).await?;
    }
    Ok(Drained {
        assigned,
        more: assigned == DRAIN_BUDGET || skipped,
        sources: source_ids,
    })
}

/// Every source the operator's freed capacity could go to.
pub async fn drain_for_operator(
    db: &mut impl Executor,
    routing: &Routing,
    operator_id: i64,
) -> Result<Drained> {
    let sources = sources::sources_of_operator(db, operator_id).await?;
    drain(db, routing, &sources).await
}

// ---- by hand ----

/// A contact given to an operator (or taken from one, `None`) by hand.
#[derive(Debug, Clone)]
pub struct ManualAssignment {
    pub operator_id: Option<i64>,
    /// Assign even to an inactive operator, or past max_load.
    pub force: bool,
}

/// Assigns the contact by hand, moving its unit of load (when active) from the previous operator to the new
/// one. An inactive operator, or a full one for an active contact, is refused with 409 unless forced. The
/// previous operator's freed capacity drains their queues at once; an active contact left without an operator
/// waits in its source's queue like any other.
pub async fn assign_manually(
    db: &mut impl Executor,
    routing: &Routing,
    id: i64,
    assignment: &ManualAssignment,
    actor: Actor,
) -> Result<Drained> {
    let current = contacts::state_for_update(db, id).await?;
    let target = assignment.operator_id;
    let mut drained = Drained::default();
    if current.operator_id != target {
        let active = current.status.is_active();
        if let Some(operator_id) = target {
            let operator = operators::find_for_update(db, operator_id)
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
                    operators::adjust_load(db, operator_id, 1).await?;
                } else if operators::claim_capacity(db, operator_id, routing.clock.now())
                    .await?
                    .is_none()
                {
                    return refuse(format!(
                        "is at max_load ({} of {} active contacts)",
                        operator.active_load, operator.max_load
                    ));
                }
            }
        }
        if active && let Some(previous) = current.operator_id {
            operators::adjust_load(db, previous, -1).await?;
        }
        // An active contact given by hand is the operator's to accept like any other; one that is not
        // active is not due to be accepted.
        let timeout = if active {
            sources::rules_of(db, current.source_id)
                .await?
                .accept_timeout
        } else {
            AcceptTimeout::default()
        };
        contacts::set_operator(db, id, target, routing.clock.now(), timeout).await?;
        let mut changes = [(count_key(current.operator_id), -1), (count_key(target), 1)];
        changes.sort();
        for (operator_key, delta) in changes {
            tallies::count(
                db,
                current.source_id,
                operator_key,
                current.status.as_str(),
                delta,
            )
            .await?;
        }
        let change = HistoryChange {
            contact_id: id,
            at: super::now(),
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
            api_key_id: actor.key_id(),
            decision_id: None,
        };
        history::record(db, change, None, routing.clock.now()).await?;
        let change = AuditChange {
            action: action::CONTACT_ASSIGNED_MANUALLY,
            target_type: audit::target::CONTACT,
            target_id: id,
            before: Some(json!({
                "operator_id": current.operator_id,
                "status": current.status.as_str(),
            })),
            after: Some(json!({
                "operator_id": target,
                "status": current.status.as_str(),
                "force": assignment.force,
            })),
        };
        audit::record(db, actor, change).await?;
        if active {
            let mut sources = match current.operator_id {
                Some(previous) => sources::sources_of_operator(db, previous).await?,
                None => Vec::new(),
            };
            if target.is_none() {
                sources.push(current.source_id);
            }
            drained = drain(db, routing, &sources).await?;
        }
    }
    Ok(drained)
}

impl Store {
    /// A page of the source's queue, oldest first.
    pub async fn queue(&self, source_id: i64, page: Page) -> Result<Vec<Contact>> {
        let now = self.now();
        read!(self, |db| page_of(db, source_id, page, now).await)
    }

    /// The live sources with contacts waiting.
    pub async fn sources_with_waiting(&self) -> Result<Vec<i64>> {
        read!(self, |db| sources_with_waiting(db).await)
    }

    pub(super) async fn drain_sources(&self, sources: Vec<i64>) -> Result<Drained> {
        let routing = self.routing.clone();
        transaction!(self, |db| drain(db, &routing, &sources).await)
    }

    /// Assigns what it can of the source's queue (at most [`DRAIN_BUDGET`] contacts).
    pub async fn drain_source(&self, source_id: i64) -> Result<Drained> {
        let drained = self.drain_sources(vec![source_id]).await?;
        // The sweep looks again itself (no second look after commit), and is woken again only if a contact
        // was skipped.
        let swept = Drained {
            assigned: drained.assigned,
            more: drained.more && drained.assigned < DRAIN_BUDGET,
            sources: Vec::new(),
        };
        self.changed(&swept).await;
        Ok(drained)
    }

    /// Drains the queues of every source the operator is linked to (they may have started taking contacts).
    pub async fn drain_for_operator(&self, operator_id: i64) -> Result<Drained> {
        let routing = self.routing.clone();
        let drained = transaction!(self, |db| drain_for_operator(db, &routing, operator_id)
            .await)?;
        self.changed(&drained).await;
        Ok(drained)
    }
}
