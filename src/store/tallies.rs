//! The contact counts per (source, operator, status) that the stats read: kept up to date by every change to a
//! contact, in its own transaction, so that the stats never count rows; and, for a source's stats, the
//! assignments its fairness is measured over.

use std::collections::BTreeMap;

use super::executor::{Executor, params, returning};
use super::operators::{self, Operator};
use super::sources::{self, SourceDetail};
use super::{Result, Store, decisions};
use crate::domain::fairness::{Assignment, Window};
use crate::error::AppError;

/// `operator_id` as `contact_counts` keys it: 0 for unassigned contacts.
pub fn count_key(operator_id: Option<i64>) -> i64 {
    operator_id.unwrap_or(0)
}

/// Contacts of one (operator or "unassigned") on one source, from `contact_counts`.
#[derive(Debug, Clone)]
pub struct OperatorTally {
    /// 0 for unassigned contacts.
    pub operator_id: i64,
    pub operator_name: Option<String>,
    pub contacts: i64,
    pub active_contacts: i64,
}

record!(OperatorTally {
    operator_id,
    operator_name,
    contacts,
    active_contacts
});

/// Contacts of one operator on one source in one status, from `contact_counts`.
#[derive(Debug, Clone)]
pub struct SourceStatusTally {
    pub source_id: i64,
    pub source_name: String,
    pub status: String,
    pub contacts: i64,
}

record!(SourceStatusTally {
    source_id,
    source_name,
    status,
    contacts
});

/// What a source's stats are made of, read in one transaction.
#[derive(Debug, Clone)]
pub struct SourceStatsRead {
    pub detail: SourceDetail,
    pub tallies: Vec<OperatorTally>,
    /// The automatic assignments of the window that its strategy chose.
    pub assignments: Vec<Assignment>,
    /// Every operator's name, by id (deleted ones are missing); empty when there is no assignment to name.
    pub operator_names: BTreeMap<i64, String>,
}

/// Adds `delta` to the number of contacts of (source, operator or 0, status), and returns the new number.
/// Transactions that move two counts take them in ascending order, so as not to deadlock.
pub async fn count(
    db: &mut impl Executor,
    source_id: i64,
    operator_key: i64,
    status: &str,
    delta: i64,
) -> Result<i64> {
    let sql = returning!(
        write: "INSERT INTO contact_counts (source_id, operator_id, status, contacts) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (source_id, operator_id, status) \
             DO UPDATE SET contacts = contact_counts.contacts + excluded.contacts",
        columns: "contacts AS value",
        read_back: "FROM contact_counts WHERE source_id = $1 AND operator_id = $2 AND status = $3",
    );
    db.written_one(&sql, params![source_id, operator_key, status, delta])
        .await
}

/// Moves the operator's counts to "unassigned" (operator 0), as its contacts just were.
pub async fn move_to_unassigned(db: &mut impl Executor, operator_id: i64) -> Result<()> {
    let sql = "INSERT INTO contact_counts (source_id, operator_id, status, contacts) \
         SELECT source_id, 0, status, contacts FROM contact_counts WHERE operator_id = $1 \
         ON CONFLICT (source_id, operator_id, status) \
         DO UPDATE SET contacts = contact_counts.contacts + excluded.contacts";
    db.execute(sql, params![operator_id]).await?;
    let sql = "DELETE FROM contact_counts WHERE operator_id = $1";
    db.execute(sql, params![operator_id]).await?;
    Ok(())
}

/// Per operator (0 = unassigned) of the source: contacts in all, and in status `active`.
async fn of_source(db: &mut impl Executor, source_id: i64) -> Result<Vec<OperatorTally>> {
    let sql = "SELECT cc.operator_id, o.name AS operator_name, \
         CAST(SUM(cc.contacts) AS BIGINT) AS contacts, \
         CAST(SUM(CASE WHEN cc.status = 'active' THEN cc.contacts ELSE 0 END) AS BIGINT) AS active_contacts \
         FROM contact_counts cc LEFT JOIN operators o ON o.id = cc.operator_id \
         WHERE cc.source_id = $1 GROUP BY cc.operator_id, o.name ORDER BY cc.operator_id";
    db.all(sql, params![source_id]).await
}

/// The operator's contacts per source and status.
async fn of_operator(db: &mut impl Executor, operator_id: i64) -> Result<Vec<SourceStatusTally>> {
    let sql = "SELECT cc.source_id, s.name AS source_name, cc.status, cc.contacts \
         FROM contact_counts cc JOIN sources s ON s.id = cc.source_id \
         WHERE cc.operator_id = $1 AND cc.contacts > 0 ORDER BY cc.source_id, cc.status";
    db.all(sql, params![operator_id]).await
}

impl Store {
    /// The operator and their contacts per source and status.
    pub async fn operator_tallies(&self, id: i64) -> Result<(Operator, Vec<SourceStatusTally>)> {
        read!(self, |db| {
            let operator = operators::find(db, id)
                .await?
                .ok_or_else(|| AppError::not_found("Operator"))?;
            Ok((operator, of_operator(db, id).await?))
        })
    }

    /// The source, its weights, its contacts per operator (0 = unassigned) and its strategy's assignments in
    /// the window, as of one moment.
    pub async fn source_stats(&self, id: i64, window: Window) -> Result<SourceStatsRead> {
        read_transaction!(self, |db| {
            let detail = sources::detail(db, id).await?;
            let tallies = of_source(db, id).await?;
            let assignments = decisions::strategy_assignments(db, id, window).await?;
            let operator_names = if assignments.is_empty() {
                BTreeMap::new()
            } else {
                operators::names(db).await?
            };
            Ok(SourceStatsRead {
                detail,
                tallies,
                assignments,
                operator_names,
            })
        })
    }
}
