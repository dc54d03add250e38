//! What an operator does with a contact given to them, and what happens when they do not: accepting it,
//! declining it, the accept timeout, and the contacts of an operator who stops taking contacts on a source
//! that requeues them. A contact declined or timed out is never given to that operator again automatically
//! (their refusal is kept in `contact_refusals`); the queue drain honours the same refusals.

use chrono::{DateTime, Utc};

use super::contacts::{self, Contact, ContactState, state_columns};
use super::executor::{Executor, Record, Row, params};
use super::history::{self, HistoryChange, entry, reason};
use super::queue::{self, Drained, waiting_condition};
use super::tallies::{self, count_key};
use super::{Result, Store, candidates, decisions, operators, sources, time_off};
use crate::domain::{Chooser, Decision, Reach, Round, Routing, Status, Strategy, choose_and_claim};
use crate::error::AppError;

/// Most timed-out contacts one look hands on; the rest wait for the next look, moments later.
const TIMEOUT_BATCH: i64 = 64;

/// Why an operator was taken off a contact for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Declined,
    AcceptTimeout,
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Refusal::Declined => reason::DECLINED,
            Refusal::AcceptTimeout => reason::ACCEPT_TIMEOUT,
        }
    }
}

/// The operators who declined the contact or let it time out.
pub async fn refusers(db: &mut impl Executor, contact_id: i64) -> Result<Vec<i64>> {
    let sql = "SELECT operator_id AS value FROM contact_refusals WHERE contact_id = $1";
    db.all(sql, params![contact_id]).await
}

/// The contact, locked, if it is within reach (404 otherwise, as if it did not exist: an operator key reaches
/// only the contacts assigned to its operator as committed), active and assigned (409 otherwise).
async fn assigned_for_update(
    db: &mut impl Executor,
    id: i64,
    reach: Reach,
) -> Result<(ContactState, i64)> {
    let current = contacts::state_for_update(db, id).await?;
    if !reach.covers(current.operator_id) {
        return Err(AppError::not_found("Contact"));
    }
    if !current.status.is_active() {
        return Err(AppError::Conflict(format!(
            "Contact {id} is {}, not active",
            current.status.as_str()
        )));
    }
    match current.operator_id {
        Some(operator_id) => Ok((current, operator_id)),
        None => Err(AppError::Conflict(format!(
            "Contact {id} has no operator (it waits in its source's queue)"
        ))),
    }
}

/// Records that the contact's operator accepted it: it is no longer due to time out. Accepting it again
/// changes nothing.
pub async fn accept(
    db: &mut impl Executor,
    routing: &Routing,
    id: i64,
    api_key_id: Option<i64>,
    reach: Reach,
) -> Result<Contact> {
    let (current, operator_id) = assigned_for_update(db, id, reach).await?;
    if current.accepted_at.is_none() {
        let at = routing.clock.now();
        let sql = "UPDATE contacts SET accepted_at = $2, accept_deadline = NULL WHERE id = $1";
        db.execute(sql, params![id, at]).await?;
        let change = HistoryChange {
            contact_id: id,
            at: super::now(),
            event: entry::ACCEPTED,
            from_operator_id: Some(operator_id),
            to_operator_id: Some(operator_id),
            from_status: Some(current.status.clone()),
            to_status: current.status,
            reason: reason::MANUAL,
            api_key_id,
            decision_id: None,
        };
        history::record(db, change, None, at).await?;
    }
    contacts::expect(db, id, Reach::All, routing.clock.now()).await
}

/// The operator gives the contact up: it goes to another candidate at once, or waits in the queue.
pub async fn decline(
    db: &mut impl Executor,
    routing: &Routing,
    id: i64,
    api_key_id: Option<i64>,
    reach: Reach,
) -> Result<(Contact, Drained)> {
    let (current, operator_id) = assigned_for_update(db, id, reach).await?;
    let drained = hand_on(
        db,
        routing,
        &current,
        operator_id,
        Refusal::Declined,
        api_key_id,
    )
    .await?;
    Ok((
        contacts::expect(db, id, Reach::All, routing.clock.now()).await?,
        drained,
    ))
}

/// Takes the contact from `from` for good, and gives it to another candidate of its source who has not
/// refused it, or leaves it waiting (at its age) when there is none. `from`'s freed unit drains their queues.
async fn hand_on(
    db: &mut impl Executor,
    routing: &Routing,
    current: &ContactState,
    from: i64,
    refusal: Refusal,
    api_key_id: Option<i64>,
) -> Result<Drained> {
    let now = routing.clock.now();
    let sql = "INSERT INTO contact_refusals (contact_id, operator_id, reason, at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (contact_id, operator_id) DO UPDATE SET reason = excluded.reason, at = excluded.at";
    db.execute(sql, params![current.id, from, refusal.reason(), now])
        .await?;
    operators::adjust_load(db, from, -1).await?;
    let rules = sources::rules_of(db, current.source_id).await?;
    let mut round = Round::default();
    if rules.strategy == Strategy::SmoothWeighted || sources::takes_turns(db, rules.strategy) {
        round = sources::lock_round(db, current.source_id).await?;
    }
    let refused_by = refusers(db, current.id).await?;
    let mut field = candidates::field_of(db, current.source_id, now)
        .await?
        .without_refusers(&refused_by);
    let mut chooser = Chooser::new(rules.strategy, round);
    let (claimed, decision) = choose_and_claim(
        &mut field,
        &mut chooser,
        &routing.random,
        &mut operators::Claimer { db: &mut *db, now },
        |_| {},
    )
    .await?;
    sources::save_round(db, current.source_id, &chooser).await?;
    let to = claimed.map(|operator| operator.id);
    contacts::set_operator(db, current.id, to, now, rules.accept_timeout).await?;
    let decision_id = decisions::record(
        db,
        current.id,
        current.source_id,
        now,
        refusal.reason(),
        &decision,
    )
    .await?;
    let mut changes = [(count_key(Some(from)), -1), (count_key(to), 1)];
    changes.sort();
    for (operator_key, delta) in changes {
        tallies::count(db, current.source_id, operator_key, Status::ACTIVE, delta).await?;
    }
    let change = HistoryChange {
        contact_id: current.id,
        at: super::now(),
        event: if to.is_some() {
            entry::ASSIGNED
        } else {
            entry::UNASSIGNED
        },
        from_operator_id: Some(from),
        to_operator_id: to,
        from_status: Some(Status::active()),
        to_status: Status::active(),
        reason: refusal.reason(),
        api_key_id,
        decision_id: Some(decision_id),
    };
    history::record(db, change, None, now).await?;
    let mut drained = queue::drain_for_operator(db, routing, from).await?;
    if to.is_none() {
        drained = drained.and(Drained::look_again(current.source_id));
    }
    Ok(drained)
}

/// Hands the contact on if it is still due: active, assigned, not accepted, and past its deadline at `now`
/// as committed now (another instance may have handed it on first). A deadline that no longer applies is
/// cleared, so that it is not looked at again.
async fn expire(db: &mut impl Executor, routing: &Routing, id: i64) -> Result<Drained> {
    let current = contacts::state_for_update(db, id).await?;
    let now = routing.clock.now();
    let Some(deadline) = current.accept_deadline.filter(|deadline| *deadline <= now) else {
        return Ok(Drained::default());
    };
    match current.operator_id {
        Some(operator_id) if current.status.is_active() && current.accepted_at.is_none() => {
            hand_on(
                db,
                routing,
                &current,
                operator_id,
                Refusal::AcceptTimeout,
                None,
            )
            .await
        }
        _ => {
            tracing::debug!(contact_id = id, %deadline, "clearing an accept deadline that no longer applies");
            let sql = "UPDATE contacts SET accept_deadline = NULL WHERE id = $1";
            db.execute(sql, params![id]).await?;
            Ok(Drained::default())
        }
    }
}

/// An accept deadline, read alone.
struct Deadline(DateTime<Utc>);

impl Record for Deadline {
    fn decode(row: &Row<'_>) -> Result<Self> {
        row.get("accept_deadline").map(Deadline)
    }
}

/// Gives the operator's active contacts on the sources that requeue them back to those queues, if the
/// operator does not take contacts at the clock's now, and drains the queues to the others.
pub async fn requeue_if_unavailable(
    db: &mut impl Executor,
    routing: &Routing,
    operator_id: i64,
) -> Result<Drained> {
    // The operator first, then their contacts: the order operator changes and deletions lock them in.
    let Some(operator) = operators::find_for_update(db, operator_id).await? else {
        return Ok(Drained::default());
    };
    let time_off: Vec<_> = time_off::of_operator(db, operator_id)
        .await?
        .iter()
        .map(time_off::TimeOff::period)
        .collect();
    if operator
        .presence(&time_off)
        .accepting_at(routing.clock.now())
    {
        return Ok(Drained::default());
    }
    let sql = concat!(
        "UPDATE contacts SET operator_id = NULL, assigned_at = NULL, accepted_at = NULL, ",
        "accept_deadline = NULL WHERE operator_id = $1 AND status = 'active' AND source_id IN ",
        "(SELECT id FROM sources WHERE on_operator_unavailable = 'requeue') RETURNING ",
        state_columns!()
    );
    let mut requeued: Vec<ContactState> = db.all(sql, params![operator_id]).await?;
    if requeued.is_empty() {
        return Ok(Drained::default());
    }
    requeued.sort_by_key(|contact| contact.id);
    operators::adjust_load(db, operator_id, -(requeued.len() as i64)).await?;
    let at = super::now();
    let mut sources = Vec::new();
    let mut entries = Vec::new();
    for contact in &requeued {
        // Unassigned (key 0) before the operator's key: ascending, as every transaction moving counts.
        tallies::count(db, contact.source_id, count_key(None), Status::ACTIVE, 1).await?;
        tallies::count(db, contact.source_id, operator_id, Status::ACTIVE, -1).await?;
        let change = HistoryChange {
            contact_id: contact.id,
            at,
            event: entry::UNASSIGNED,
            from_operator_id: Some(operator_id),
            to_operator_id: None,
            from_status: Some(Status::active()),
            to_status: Status::active(),
            reason: reason::OPERATOR_UNAVAILABLE,
            api_key_id: None,
            decision_id: None,
        };
        entries.push(history::record(db, change, None, routing.clock.now()).await?);
        sources.push(contact.source_id);
    }
    tracing::info!(
        operator_id,
        requeued = requeued.len(),
        "operator stopped accepting; their contacts went back to the queues"
    );
    let drained = queue::drain(db, routing, &sources).await?;
    record_still_waiting(db, routing, &requeued, &entries).await?;
    Ok(drained)
}

/// For each requeued contact that the drain left waiting, a decision that says why it waits, which its
/// requeue's history entry (`entries`, one per contact) points to.
async fn record_still_waiting(
    db: &mut impl Executor,
    routing: &Routing,
    requeued: &[ContactState],
    entries: &[i64],
) -> Result<()> {
    let now = routing.clock.now();
    let mut fields = Vec::new();
    for (contact, &entry) in requeued.iter().zip(entries) {
        let sql = concat!(
            "SELECT EXISTS (SELECT 1 FROM contacts WHERE id = $1 AND ",
            waiting_condition!(),
            ") AS value"
        );
        if !db.one::<bool>(sql, params![contact.id]).await? {
            continue;
        }
        let decision = match fields.iter().find(|(id, _, _)| *id == contact.source_id) {
            Some((_, field, strategy)) => Decision::nobody(*strategy, field),
            None => {
                let field = candidates::field_of(db, contact.source_id, now).await?;
                let strategy = sources::rules_of(db, contact.source_id).await?.strategy;
                let decision = Decision::nobody(strategy, &field);
                fields.push((contact.source_id, field, strategy));
                decision
            }
        };
        let reason = reason::OPERATOR_UNAVAILABLE;
        let id =
            decisions::record(db, contact.id, contact.source_id, now, reason, &decision).await?;
        decisions::attach(db, entry, id).await?;
    }
    Ok(())
}

impl Store {
    pub async fn accept_contact(
        &self,
        id: i64,
        api_key_id: Option<i64>,
        reach: Reach,
    ) -> Result<Contact> {
        let routing = self.routing.clone();
        let contact = transaction!(self, |db| accept(db, &routing, id, api_key_id, reach).await)?;
        if self
            .signals
            .webhooks_exist
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            self.signals.outbox.notify_one();
        }
        Ok(contact)
    }

    /// The contact as the decline left it: with its next operator, or waiting (shown to the operator who
    /// declined it, though it is out of their reach from now on).
    pub async fn decline_contact(
        &self,
        id: i64,
        api_key_id: Option<i64>,
        reach: Reach,
    ) -> Result<Contact> {
        let routing = self.routing.clone();
        let (contact, drained) =
            transaction!(self, |db| decline(db, &routing, id, api_key_id, reach)
                .await)?;
        self.changed(&drained).await;
        Ok(contact)
    }

    /// Hands on every contact whose accept deadline has passed by the store's clock, each in a transaction of
    /// its own; returns the next deadline still ahead, for the timer to wake at.
    pub async fn expire_accept_timeouts(&self) -> Result<Option<DateTime<Utc>>> {
        let routing = self.routing.clone();
        loop {
            let now = self.now();
            let sql = "SELECT id AS value FROM contacts WHERE accept_deadline IS NOT NULL \
                 AND accept_deadline <= $1 ORDER BY accept_deadline, id LIMIT $2";
            let due: Vec<i64> = read!(self, |db| db.all(sql, params![now, TIMEOUT_BATCH]).await)?;
            for &id in &due {
                let routing = routing.clone();
                let drained = transaction!(self, |db| expire(db, &routing, id).await)?;
                if drained.assigned > 0 || !drained.sources.is_empty() {
                    tracing::info!(contact_id = id, "accept timeout: contact handed on");
                }
                self.changed(&drained).await;
            }
            if (due.len() as i64) < TIMEOUT_BATCH {
                break;
            }
        }
        let sql = "SELECT accept_deadline FROM contacts WHERE accept_deadline IS NOT NULL \
             ORDER BY accept_deadline LIMIT 1";
        let next: Option<Deadline> = read!(self, |db| db.optional(sql, params![]).await)?;
        Ok(next.map(|Deadline(at)| at))
    }

    /// Requeues the operator's contacts where their sources say so, if the operator does not take contacts
    /// now (the availability timer calls it when it sees them stop).
    pub async fn requeue_if_unavailable(&self, operator_id: i64) -> Result<Drained> {
        let routing = self.routing.clone();
        let drained = transaction!(self, |db| requeue_if_unavailable(db, &routing, operator_id)
            .await)?;
        self.changed(&drained).await;
        Ok(drained)
    }
}
