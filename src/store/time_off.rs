//! Operators' time off: periods in which they take no contacts, whatever their schedule says.

use chrono::{DateTime, Utc};

use super::audit::{self, Actor, AuditChange, action};
use super::executor::{Executor, params};
use super::queue::{self, Drained};
use super::{Result, Store, acceptance, operators};
use crate::domain::{Period, Routing, Text};
use crate::error::AppError;

macro_rules! time_off_columns {
    () => {
        "id, operator_id, starts_at, ends_at, reason, created_at"
    };
}

/// A period of an operator's time off, as stored.
#[derive(Debug, Clone)]
pub struct TimeOff {
    pub id: i64,
    pub operator_id: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

record!(TimeOff {
    id,
    operator_id,
    starts_at,
    ends_at,
    reason,
    created_at
});

impl TimeOff {
    pub fn period(&self) -> Period {
        Period {
            starts_at: self.starts_at,
            ends_at: self.ends_at,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewTimeOff {
    pub period: Period,
    pub reason: Option<Text>,
}

// ---- statements ----

/// The operator's time off, earliest first.
pub async fn of_operator(db: &mut impl Executor, operator_id: i64) -> Result<Vec<TimeOff>> {
    let sql = concat!(
        "SELECT ",
        time_off_columns!(),
        " FROM operator_time_off WHERE operator_id = $1 ORDER BY starts_at, id"
    );
    db.all(sql, params![operator_id]).await
}

/// The time off of every operator linked to the source.
pub async fn of_source(db: &mut impl Executor, source_id: i64) -> Result<Vec<TimeOff>> {
    let sql = "SELECT t.id, t.operator_id, t.starts_at, t.ends_at, t.reason, t.created_at \
         FROM operator_time_off t JOIN source_operator_weights w ON w.operator_id = t.operator_id \
         WHERE w.source_id = $1 ORDER BY t.operator_id, t.starts_at";
    db.all(sql, params![source_id]).await
}

/// The time off of the operators with ids from `first` to `last`.
pub async fn of_operators(db: &mut impl Executor, first: i64, last: i64) -> Result<Vec<TimeOff>> {
    let sql = concat!(
        "SELECT ",
        time_off_columns!(),
        " FROM operator_time_off WHERE operator_id BETWEEN $1 AND $2 ORDER BY operator_id, starts_at, id"
    );
    db.all(sql, params![first, last]).await
}

// ---- operations ----

pub async fn create(
    db: &mut impl Executor,
    operator_id: i64,
    new: &NewTimeOff,
    now: DateTime<Utc>,
    actor: Actor,
) -> Result<TimeOff> {
    // Kept from being deleted meanwhile, like a link to them.
    operators::find_for_share(db, operator_id)
        .await?
        .ok_or_else(|| AppError::not_found("Operator"))?;
    let sql = concat!(
        "INSERT INTO operator_time_off (operator_id, starts_at, ends_at, reason, created_at) ",
        "VALUES ($1, $2, $3, $4, $5) RETURNING ",
        time_off_columns!()
    );
    let params = params![
        operator_id,
        new.period.starts_at,
        new.period.ends_at,
        new.reason.as_ref().map(Text::as_str),
        now
    ];
    let time_off = db.one(sql, params).await?;
    let change = AuditChange::created(action::TIME_OFF_CREATED, &time_off);
    audit::record(db, actor, change).await?;
    Ok(time_off)
}

/// Removes the period; should that let the operator take contacts now, their sources' queues drain.
pub async fn delete(
    db: &mut impl Executor,
    routing: &Routing,
    operator_id: i64,
    id: i64,
    actor: Actor,
) -> Result<Drained> {
    operators::find(db, operator_id)
        .await?
        .ok_or_else(|| AppError::not_found("Operator"))?;
    let sql = concat!(
        "DELETE FROM operator_time_off WHERE id = $1 AND operator_id = $2 RETURNING ",
        time_off_columns!()
    );
    let removed: TimeOff = db
        .optional(sql, params![id, operator_id])
        .await?
        .ok_or_else(|| AppError::not_found("Time off"))?;
    let change = AuditChange::removed(action::TIME_OFF_DELETED, &removed);
    audit::record(db, actor, change).await?;
    queue::drain_for_operator(db, routing, operator_id).await
}

impl Store {
    /// Records the period; one under way now stops the operator at once, requeuing their contacts where
    /// their sources say so.
    pub async fn create_time_off(
        &self,
        operator_id: i64,
        new: NewTimeOff,
        actor: Actor,
    ) -> Result<TimeOff> {
        let now = self.now();
        let routing = self.routing.clone();
        let (time_off, drained) = transaction!(self, |db| {
            let time_off = create(db, operator_id, &new, now, actor).await?;
            let drained = if time_off.period().contains(now) {
                acceptance::requeue_if_unavailable(db, &routing, operator_id).await?
            } else {
                Drained::default()
            };
            Ok((time_off, drained))
        })?;
        self.signals.presence.notify_one();
        self.changed(&drained).await;
        Ok(time_off)
    }

    pub async fn list_time_off(&self, operator_id: i64) -> Result<Vec<TimeOff>> {
        read!(self, |db| {
            operators::find(db, operator_id)
                .await?
                .ok_or_else(|| AppError::not_found("Operator"))?;
            of_operator(db, operator_id).await
        })
    }

    pub async fn delete_time_off(&self, operator_id: i64, id: i64, actor: Actor) -> Result<()> {
        let routing = self.routing.clone();
        let drained = transaction!(self, |db| delete(db, &routing, operator_id, id, actor)
            .await)?;
        self.signals.presence.notify_one();
        self.changed(&drained).await;
        Ok(())
    }
}
