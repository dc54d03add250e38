//! Operators and their capacity: the rows, the one statement that claims a unit of capacity (what keeps
//! max_load exact under concurrency), and the changes an admin makes.

use chrono::{DateTime, Utc};

use super::audit::{self, Actor, AuditChange, action};
use super::executor::{Dialect, Executor, params};
use super::history::{self, HistoryChange, entry, reason};
use super::queue::{self, Drained};
use super::{Page, Result, Store, contacts, sources, tallies};
use crate::domain::{CapacityClaim, MaxLoad, Name};
use crate::error::AppError;

macro_rules! operator_columns {
    () => {
        "id, name, is_active, max_load, active_load, created_at"
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
}

record!(Operator {
    id,
    name,
    is_active,
    max_load,
    active_load,
    created_at
});

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

// ---- statements ----

pub async fn list(db: &mut impl Executor, page: Page) -> Result<Vec<Operator>> {
    let sql = concat!(
        "SELECT ",
        operator_columns!(),
        " FROM operators ORDER BY id LIMIT $1 OFFSET $2"
    );
    db.all(sql, params![page.limit, page.skip]).await
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
/// PostgreSQL re-checks the condition on the latest row version after waiting for a concurrent writer.
pub async fn claim_capacity(db: &mut impl Executor, operator_id: i64) -> Result<Option<Operator>> {
    let sql = concat!(
        "UPDATE operators SET active_load = active_load + 1 ",
        "WHERE id = $1 AND is_active AND active_load < max_load RETURNING ",
        operator_columns!()
    );
    db.optional(sql, params![operator_id]).await
}

/// Changes the active load by `delta`, without a capacity check (a contact closed, reopened or moved). No
/// clamping: a load that would go below 0 means the counter drifted, which the CHECK constraint reports.
pub async fn adjust_load(db: &mut impl Executor, operator_id: i64, delta: i64) -> Result<()> {
    let sql = "UPDATE operators SET active_load = active_load + $2 WHERE id = $1";
    db.execute(sql, params![operator_id, delta]).await?;
    Ok(())
}

/// Claims capacity through [`claim_capacity`], for routing's draw-and-claim loop.
pub struct Claimer<'a, E>(pub &'a mut E);

impl<E: Executor> CapacityClaim for Claimer<'_, E> {
    type Claimed = Operator;
    type Error = AppError;

    fn claim(&mut self, operator_id: i64) -> impl Future<Output = Result<Option<Operator>>> + Send {
        claim_capacity(self.0, operator_id)
    }
}

// ---- operations ----

pub async fn create(db: &mut impl Executor, new: &NewOperator, actor: Actor) -> Result<Operator> {
    let sql = concat!(
        "INSERT INTO operators (name, is_active, max_load, created_at) VALUES ($1, $2, $3, $4) RETURNING ",
        operator_columns!()
    );
    let params = params![
        new.name.as_str(),
        new.is_active,
        new.max_load.get(),
        super::now()
    ];
    let operator = db.one(sql, params).await?;
    let change = AuditChange::created(action::OPERATOR_CREATED, &operator);
    audit::record(db, actor, change).await?;
    Ok(operator)
}

/// Changes the operator; capacity it gains (activated, max_load raised) goes to the queues at once.
pub async fn update(
    db: &mut impl Executor,
    random: &crate::domain::RandomSource,
    id: i64,
    changes: &OperatorChanges,
    actor: Actor,
) -> Result<(Operator, Drained)> {
    let before = find_for_change(db, id)
        .await?
        .ok_or_else(|| AppError::not_found("Operator"))?;
    let sql = concat!(
        "UPDATE operators SET name = COALESCE($2, name), is_active = COALESCE($3, is_active), ",
        "max_load = COALESCE($4, max_load) WHERE id = $1 RETURNING ",
        operator_columns!()
    );
    let params = params![
        id,
        changes.name.as_ref().map(Name::as_str),
        changes.is_active,
        changes.max_load.map(MaxLoad::get)
    ];
    let operator = db.one(sql, params).await?;
    let change = AuditChange::changed(action::OPERATOR_UPDATED, &before, &operator);
    audit::record(db, actor, change).await?;
    let drained = queue::drain_for_operator(db, random, id).await?;
    Ok((operator, drained))
}

/// Removes the operator and its weights; its contacts stay, without an operator, in the status they had. Its
/// active contacts so go back to their sources' queues (by age, so usually to the front), which drain among
/// the operators left.
pub async fn delete(
    db: &mut impl Executor,
    random: &crate::domain::RandomSource,
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
        };
        history::record(db, change, None).await?;
    }
    queue::drain(db, random, &requeued).await
}

impl Store {
    pub async fn create_operator(&self, new: NewOperator, actor: Actor) -> Result<Operator> {
        transaction!(self, |db| create(db, &new, actor).await)
    }

    pub async fn list_operators(&self, page: Page) -> Result<Vec<Operator>> {
        read!(self, |db| list(db, page).await)
    }

    pub async fn get_operator(&self, id: i64) -> Result<Operator> {
        read!(self, |db| find(db, id).await)?.ok_or_else(|| AppError::not_found("Operator"))
    }

    pub async fn update_operator(
        &self,
        id: i64,
        changes: OperatorChanges,
        actor: Actor,
    ) -> Result<Operator> {
        let random = self.random.clone();
        let (operator, drained) =
            transaction!(self, |db| update(db, &random, id, &changes, actor).await)?;
        self.changed(&drained).await;
        Ok(operator)
    }

    pub async fn delete_operator(&self, id: i64, actor: Actor) -> Result<()> {
        let random = self.random.clone();
        let drained = transaction!(self, |db| delete(db, &random, id, actor).await)?;
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
