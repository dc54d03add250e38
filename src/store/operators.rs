//! Operators and their capacity: the rows, the one statement that claims a unit of capacity (what keeps
//! max_load exact under concurrency), and the changes an admin makes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::audit::{self, Actor, AuditChange, action};
use super::executor::{Dialect, Executor, params, returning};
use super::history::{self, HistoryChange, entry, reason};
use super::queue::{self, Drained};
use super::{Page, Result, Store, acceptance, contacts, sources, tallies, time_off};
use crate::domain::{
    Accepting, Availability, CapacityClaim, MaxLoad, Name, Period, Presence, Schedule, TimeZoneName,
};
use crate::error::AppError;

macro_rules! operator_columns {
    () => {
        "id, name, is_active, max_load, active_load, created_at, availability, away_until, timezone, schedule"
    };
}

/// A person who handles contacts, as stored.
#[derive(Debug, Clone)]
pub struct Operator {
    pub id: i64,
    pub name: String,
    /// Whether the operator takes new contacts.
    pub is_active: bool,
    /// Most contacts in status `active` the operator is given automatically.
    pub max_load: i64,
    pub created_at: DateTime<Utc>,
    /// Contacts in status `active` assigned to the operator.
    pub active_load: i64,
    /// The operator's own switch.
    pub availability: Availability,
    /// When an away operator is available again by themselves.
    pub away_until: Option<DateTime<Utc>>,
    pub timezone: TimeZoneName,
    /// `None`: always on shift.
    pub schedule: Option<Schedule>,
}

record!(Operator {
    id,
    name,
    is_active,
    max_load,
    active_load,
    created_at,
    availability,
    away_until,
    timezone,
    schedule
});

impl Operator {
    /// What decides whether they take contacts, with their time off.
    pub fn presence<'a>(&'a self, time_off: &'a [Period]) -> Presence<'a> {
        Presence {
            is_active: self.is_active,
            availability: self.availability,
            away_until: self.away_until,
            timezone: self.timezone,
            schedule: self.schedule.as_ref(),
            time_off,
        }
    }
}

/// An operator as the API shows them: whether they take contacts at the instant they were read, and when
/// that next changes.
#[derive(Debug, Clone)]
pub struct OperatorNow {
    pub operator: Operator,
    pub accepting: Accepting,
}

#[derive(Debug, Clone)]
pub struct NewOperator {
    pub name: Name,
    pub is_active: bool,
    pub max_load: MaxLoad,
    pub availability: Availability,
    pub away_until: Option<DateTime<Utc>>,
    pub timezone: TimeZoneName,
    pub schedule: Option<Schedule>,
}

/// Fields left `None` keep their value; `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default)]
pub struct OperatorChanges {
    pub name: Option<Name>,
    pub is_active: Option<bool>,
    pub max_load: Option<MaxLoad>,
    pub availability: Option<Availability>,
    pub away_until: Option<Option<DateTime<Utc>>>,
    pub timezone: Option<TimeZoneName>,
    pub schedule: Option<Option<Schedule>>,
}

impl OperatorChanges {
    /// Whether the change may move when the operator takes contacts.
    fn touches_presence(&self) -> bool {
        self.is_active.is_some()
            || self.availability.is_some()
            || self.away_until.is_some()
            || self.timezone.is_some()
            || self.schedule.is_some()
    }
}

// ---- statements ----

pub async fn list(db: &mut impl Executor, page: Page) -> Result<Vec<Operator>> {
    let sql = concat!(
        "SELECT ",
        operator_columns!(),
        " FROM operators ORDER BY id LIMIT $1 OFFSET $2"
    );
    db.all(sql, params![page.limit, page.skip]).await
}

/// An operator's id and name.
struct OperatorName {
    id: i64,
    name: String,
}

record!(OperatorName { id, name });

/// Every operator's name, by id: operators are few, and what names many of them reads them all at once.
pub async fn names(db: &mut impl Executor) -> Result<BTreeMap<i64, String>> {
    let names: Vec<OperatorName> = db
        .all("SELECT id, name FROM operators ORDER BY id", params![])
        .await?;
    Ok(names.into_iter().map(|o| (o.id, o.name)).collect())
}

pub async fn find(db: &mut impl Executor, id: i64) -> Result<Option<Operator>> {
    let sql = concat!(
        "SELECT ",
        operator_columns!(),
        " FROM operators WHERE id = $1"
    );
    db.optional(sql, params![id]).await
}

/// How a read locks the operator's row until the transaction ends, where the database locks rows.
#[derive(Debug, Clone, Copy)]
enum Lock {
    /// Against every other change and lock.
    Update,
    /// Against other changes, but not against rows that come to refer to the operator meanwhile.
    NoKeyUpdate,
    /// Against deletion only.
    Share,
}

async fn find_locked(db: &mut impl Executor, id: i64, lock: Lock) -> Result<Option<Operator>> {
    let sql = match (db.dialect(), lock) {
        (Dialect::Sqlite, _) => return find(db, id).await,
        (Dialect::Postgres, Lock::Update) => concat!(
            "SELECT ",
            operator_columns!(),
            " FROM operators WHERE id = $1 FOR UPDATE"
        ),
        (Dialect::Postgres, Lock::NoKeyUpdate) => concat!(
            "SELECT ",
            operator_columns!(),
            " FROM operators WHERE id = $1 FOR NO KEY UPDATE"
        ),
        (Dialect::Postgres, Lock::Share) => concat!(
            "SELECT ",
            operator_columns!(),
            " FROM operators WHERE id = $1 FOR SHARE"
        ),
    };
    db.optional(sql, params![id]).await
}

pub async fn find_for_update(db: &mut impl Executor, id: i64) -> Result<Option<Operator>> {
    find_locked(db, id, Lock::Update).await
}

/// The operator as it is before a change of its settings, kept from other changes until the transaction ends
/// (as the UPDATE itself would), while contacts may still be given to them.
async fn find_for_change(db: &mut impl Executor, id: i64) -> Result<Option<Operator>> {
    find_locked(db, id, Lock::NoKeyUpdate).await
}

/// The operator, kept from being deleted until the transaction ends (so that a link to them cannot point at
/// an operator deleted meanwhile).
pub async fn find_for_share(db: &mut impl Executor, id: i64) -> Result<Option<Operator>> {
    find_locked(db, id, Lock::Share).await
}

/// Every operator's (id, active load, max_load), for the metrics.
pub async fn loads(db: &mut impl Executor) -> Result<Vec<Operator>> {
    let sql = concat!(
        "SELECT ",
        operator_columns!(),
        " FROM operators ORDER BY id"
    );
    db.all(sql, params![]).await
}

/// Takes one unit of the operator's capacity if, as committed right now, the operator is active and below
/// max_load. This conditional update is what keeps max_load exact under concurrency, across processes too:
/// PostgreSQL re-checks the condition on the latest row version after waiting for a concurrent writer. `at`
/// becomes their last assignment (least_loaded's last tie-break).
pub async fn claim_capacity(
    db: &mut impl Executor,
    operator_id: i64,
    at: DateTime<Utc>,
) -> Result<Option<Operator>> {
    let sql = returning!(
        write: "UPDATE operators SET active_load = active_load + 1, last_assigned_at = $2 \
             WHERE id = $1 AND is_active AND active_load < max_load",
        columns: operator_columns!(),
        read_back: "FROM operators WHERE id = $1",
    );
    db.written(&sql, params![operator_id, at]).await
}

/// Changes the active load by `delta`, without a capacity check (a contact closed, reopened or moved). No
/// clamping: a load that would go below 0 means the counter drifted, which the CHECK constraint reports.
pub async fn adjust_load(db: &mut impl Executor, operator_id: i64, delta: i64) -> Result<()> {
    let sql = "UPDATE operators SET active_load = active_load + $2 WHERE id = $1";
    db.execute(sql, params![operator_id, delta]).await?;
    Ok(())
}

/// Claims capacity through [`claim_capacity`], for routing's choose-and-claim loop, and checks on the row the
/// claim returns — the operator as committed now, after waiting for any concurrent change of them — that they
/// still take contacts at `now` by their availability and schedule; if not, the unit is given back and the
/// claim refused. (Time off was read with the candidates; a period added concurrently counts from its commit.)
pub struct Claimer<'a, E> {
    pub db: &'a mut E,
    pub now: DateTime<Utc>,
}

impl<E: Executor> CapacityClaim for Claimer<'_, E> {
    type Claimed = Operator;
    type Error = AppError;

    async fn claim(&mut self, operator_id: i64) -> Result<Option<Operator>> {
        let Some(operator) = claim_capacity(self.db, operator_id, self.now).await? else {
            return Ok(None);
        };
        if operator.presence(&[]).accepting_at(self.now) {
            return Ok(Some(operator));
        }
        adjust_load(self.db, operator_id, -1).await?;
        Ok(None)
    }
}

// ---- operations ----

pub async fn create(db: &mut impl Executor, new: &NewOperator, actor: Actor) -> Result<Operator> {
    let sql = concat!(
        "INSERT INTO operators (name, is_active, max_load, created_at, availability, away_until, timezone, ",
        "schedule) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
        operator_columns!()
    );
    let schedule = new.schedule.as_ref().map(Schedule::to_json);
    let params = params![
        new.name.as_str(),
        new.is_active,
        new.max_load.get(),
        super::now(),
        new.availability.as_str(),
        new.away_until,
        new.timezone.as_str(),
        schedule.as_deref()
    ];
    let operator = db.one(sql, params).await?;
    let change = AuditChange::created(action::OPERATOR_CREATED, &operator);
    audit::record(db, actor, change).await?;
    Ok(operator)
}

/// Changes the operator; capacity it gains (activated, max_load raised) goes to the queues at once.
pub async fn update(
    db: &mut impl Executor,
    routing: &crate::domain::Routing,
    id: i64,
    changes: &OperatorChanges,
    actor: Actor,
) -> Result<(Operator, Drained)> {
    let before = find_for_change(db, id)
        .await?
        .ok_or_else(|| AppError::not_found("Operator"))?;
    let sql = concat!(
        "UPDATE operators SET name = COALESCE($2, name), is_active = COALESCE($3, is_active), ",
        "max_load = COALESCE($4, max_load), availability = COALESCE($5, availability), ",
        "availability_changed_at = CASE WHEN $5 <> availability THEN $11 ELSE availability_changed_at END, ",
        "away_until = CASE WHEN $6 THEN $7 ELSE away_until END, timezone = COALESCE($8, timezone), ",
        "schedule = CASE WHEN $9 THEN $10 ELSE schedule END WHERE id = $1 RETURNING ",
        operator_columns!()
    );
    let schedule = changes
        .schedule
        .as_ref()
        .map(|s| s.as_ref().map(Schedule::to_json));
    let params = params![
        id,
        changes.name.as_ref().map(Name::as_str),
        changes.is_active,
        changes.max_load.map(MaxLoad::get),
        changes.availability.map(Availability::as_str),
        changes.away_until.is_some(),
        changes.away_until.flatten(),
        changes.timezone.map(TimeZoneName::as_str),
        schedule.is_some(),
        schedule.as_ref().and_then(|s| s.as_deref()),
        routing.clock.now()
    ];
    let operator = db.one(sql, params).await?;
    let change = AuditChange::changed(action::OPERATOR_UPDATED, &before, &operator);
    audit::record(db, actor, change).await?;
    // Capacity gained goes to the queues; an operator who stopped taking contacts gives theirs back where
    // their sources requeue them (each a no-op in the other case).
    let drained = queue::drain_for_operator(db, routing, id)
        .await?
        .and(acceptance::requeue_if_unavailable(db, routing, id).await?);
    Ok((operator, drained))
}

/// Removes the operator and its weights; its contacts stay, without an operator, in the status they had. Its
/// active contacts so go back to their sources' queues (by age, so usually to the front), which drain among
/// the operators left.
pub async fn delete(
    db: &mut impl Executor,
    routing: &crate::domain::Routing,
    id: i64,
    actor: Actor,
) -> Result<Drained> {
    let operator = find_for_update(db, id)
        .await?
        .ok_or_else(|| AppError::not_found("Operator"))?;
    // Exactly the contacts the update changed: one changed by hand meanwhile is not among them.
    let contacts = contacts::unassign_all_of(db, id).await?;
    tallies::move_to_unassigned(db, id).await?;
    // Before the cascade would, so that each removal is written down.
    for weight in sources::unlink_operator_everywhere(db, id).await? {
        let change = AuditChange::removed(action::WEIGHT_REMOVED, &weight);
        audit::record(db, actor, change).await?;
    }
    db.execute("DELETE FROM operators WHERE id = $1", params![id])
        .await?;
    let change = AuditChange::removed(action::OPERATOR_DELETED, &operator);
    audit::record(db, actor, change).await?;
    let at = super::now();
    let mut requeued = Vec::new();
    for contact in contacts {
        if contact.status.is_active() {
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
            api_key_id: actor.key_id(),
            decision_id: None,
        };
        history::record(db, change, None, routing.clock.now()).await?;
    }
    queue::drain(db, routing, &requeued).await
}

impl Store {
    /// Every operator's name, by id ([`names`]).
    pub async fn operator_names(&self) -> Result<BTreeMap<i64, String>> {
        read!(self, |db| names(db).await)
    }

    pub async fn create_operator(&self, new: NewOperator, actor: Actor) -> Result<OperatorNow> {
        let operator = transaction!(self, |db| create(db, &new, actor).await)?;
        self.signals.presence.notify_one();
        Ok(self.operator_now(operator, &[]))
    }

    pub async fn list_operators(&self, page: Page) -> Result<Vec<OperatorNow>> {
        let (operators, time_off) = read!(self, |db| {
            let operators = list(db, page).await?;
            let time_off = match (operators.first(), operators.last()) {
                (Some(first), Some(last)) => time_off::of_operators(db, first.id, last.id).await?,
                _ => Vec::new(),
            };
            (operators, time_off)
        });
        Ok(self.with_time_off(operators, &time_off))
    }

    pub async fn get_operator(&self, id: i64) -> Result<OperatorNow> {
        let (operator, time_off) = read!(self, |db| {
            let operator = find(db, id)
                .await?
                .ok_or_else(|| AppError::not_found("Operator"))?;
            (operator, time_off::of_operator(db, id).await?)
        });
        let periods: Vec<Period> = time_off.iter().map(time_off::TimeOff::period).collect();
        Ok(self.operator_now(operator, &periods))
    }

    pub async fn update_operator(
        &self,
        id: i64,
        changes: OperatorChanges,
        actor: Actor,
    ) -> Result<OperatorNow> {
        let routing = self.routing.clone();
        let presence = changes.touches_presence();
        let (operator, drained) =
            transaction!(self, |db| update(db, &routing, id, &changes, actor).await)?;
        if presence {
            self.signals.presence.notify_one();
        }
        self.changed(&drained).await;
        let time_off = read!(self, |db| time_off::of_operator(db, id).await)?;
        let periods: Vec<Period> = time_off.iter().map(time_off::TimeOff::period).collect();
        Ok(self.operator_now(operator, &periods))
    }

    /// Every operator with whether they take contacts now, by the store's clock (for the availability timer).
    pub async fn operators_now(&self) -> Result<Vec<OperatorNow>> {
        let (operators, time_off) = read!(self, |db| {
            let operators = loads(db).await?;
            let time_off = match (operators.first(), operators.last()) {
                (Some(first), Some(last)) => time_off::of_operators(db, first.id, last.id).await?,
                _ => Vec::new(),
            };
            (operators, time_off)
        });
        Ok(self.with_time_off(operators, &time_off))
    }

    fn with_time_off(
        &self,
        operators: Vec<Operator>,
        time_off: &[time_off::TimeOff],
    ) -> Vec<OperatorNow> {
        operators
            .into_iter()
            .map(|operator| {
                let periods: Vec<Period> = time_off
                    .iter()
                    .filter(|t| t.operator_id == operator.id)
                    .map(time_off::TimeOff::period)
                    .collect();
                self.operator_now(operator, &periods)
            })
            .collect()
    }

    /// The operator with whether they take contacts now, by the store's clock.
    fn operator_now(&self, operator: Operator, time_off: &[Period]) -> OperatorNow {
        let accepting = operator.presence(time_off).at(self.now());
        OperatorNow {
            operator,
            accepting,
        }
    }

    pub async fn delete_operator(&self, id: i64, actor: Actor) -> Result<()> {
        let routing = self.routing.clone();
        let drained = transaction!(self, |db| delete(db, &routing, id, actor).await)?;
        self.changed(&drained).await;
        Ok(())
    }

    /// Every operator's (id, active load, max_load), for the metrics.
    pub async fn operator_loads(&self) -> Result<Vec<(i64, i64, i64)>> {
        let operators = read!(self, |db| loads(db).await)?;
        Ok(operators
            .into_iter()
            .map(|o| (o.id, o.active_load, o.max_load))
            .collect())
    }
}
