//! The reads of the dashboard's pages that the API has no endpoint for: each operator's oldest active contact
//! and assignments today, the day's arrivals, the feed of decisions, why each waiting contact waits, and the
//! change marker its live updates follow. Each reads an index range, not the whole history.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::decisions::{self, DecisionRecord};
use super::executor::{Executor, Record, Row, params};
use super::queue;
use super::{Page, Result, Store};
use crate::store::contacts::Contact;

/// What the "Now" page adds to each operator.
#[derive(Debug, Clone, Default)]
pub struct OperatorDay {
    /// When their availability last changed; `None`: not since they were created.
    pub availability_changed_at: Option<DateTime<Utc>>,
    /// When their longest-held active contact was assigned to them.
    pub oldest_active_at: Option<DateTime<Utc>>,
    /// Automatic assignments to them since the start of the day.
    pub assigned_today: i64,
}

/// The desk since the start of the day.
#[derive(Debug, Clone, Default)]
pub struct DeskDay {
    pub operators: BTreeMap<i64, OperatorDay>,
    /// Contacts that arrived since the start of the day (their first routing decision).
    pub arrived_today: i64,
    /// When the contact waiting longest arrived.
    pub oldest_waiting_since: Option<DateTime<Utc>>,
    /// Contacts waiting, all sources.
    pub waiting: i64,
}

/// A waiting contact, with the decision that left it waiting.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub contact: Contact,
    pub decision: Option<DecisionRecord>,
}

struct Row2(i64, Option<DateTime<Utc>>);
impl Record for Row2 {
    fn decode(row: &Row<'_>) -> Result<Self> {
        Ok(Row2(row.get("id")?, row.get("at")?))
    }
}

struct Counted(i64, i64);
impl Record for Counted {
    fn decode(row: &Row<'_>) -> Result<Self> {
        Ok(Counted(row.get("id")?, row.get("n")?))
    }
}

struct Marker(i64, i64);
impl Record for Marker {
    fn decode(row: &Row<'_>) -> Result<Self> {
        Ok(Marker(row.get("history")?, row.get("audit")?))
    }
}

struct WaitingNow(i64, Option<DateTime<Utc>>);
impl Record for WaitingNow {
    fn decode(row: &Row<'_>) -> Result<Self> {
        Ok(WaitingNow(row.get("waiting")?, row.get("since")?))
    }
}

async fn desk_day(db: &mut impl Executor, day_start: DateTime<Utc>) -> Result<DeskDay> {
    let mut day = DeskDay::default();
    let sql = "SELECT id, availability_changed_at AS at FROM operators";
    for Row2(id, at) in db.all::<Row2>(sql, params![]).await? {
        day.operators.entry(id).or_default().availability_changed_at = at;
    }
    // Active contacts are few (at most the operators' capacity, and those waiting): by the status index.
    let sql = "SELECT operator_id AS id, MIN(assigned_at) AS at FROM contacts \
         WHERE status = 'active' AND operator_id IS NOT NULL GROUP BY operator_id";
    for Row2(id, at) in db.all::<Row2>(sql, params![]).await? {
        day.operators.entry(id).or_default().oldest_active_at = at;
    }
    // The day's decisions, source by source along their (source, at) index.
    let sql = "SELECT d.chosen_operator_id AS id, COUNT(*) AS n FROM sources s \
         JOIN routing_decisions d ON d.source_id = s.id AND d.at >= $1 \
         WHERE d.chosen_operator_id IS NOT NULL GROUP BY d.chosen_operator_id";
    for Counted(id, n) in db.all::<Counted>(sql, params![day_start]).await? {
        day.operators.entry(id).or_default().assigned_today = n;
    }
    let sql = "SELECT CAST(0 AS BIGINT) AS id, COUNT(*) AS n FROM sources s \
         JOIN routing_decisions d ON d.source_id = s.id AND d.at >= $1 WHERE d.reason = 'creation'";
    day.arrived_today = db.one::<Counted>(sql, params![day_start]).await?.1;
    let sql = "SELECT COUNT(*) AS waiting, MIN(created_at) AS since FROM contacts \
         WHERE operator_id IS NULL AND status = 'active'";
    let WaitingNow(waiting, since) = db.one(sql, params![]).await?;
    day.waiting = waiting;
    day.oldest_waiting_since = since;
    Ok(day)
}

impl Store {
    /// The newest history entry's id and the newest audit entry's id: what moves whenever anything a page
    /// shows changes.
    pub async fn change_marker(&self) -> Result<(i64, i64)> {
        let sql = "SELECT (SELECT COALESCE(MAX(id), 0) FROM contact_history) AS history, \
             (SELECT COALESCE(MAX(id), 0) FROM audit_log) AS audit";
        let Marker(history, audit) = read!(self, |db| db.one(sql, params![]).await)?;
        Ok((history, audit))
    }

    pub async fn desk_day(&self, day_start: DateTime<Utc>) -> Result<DeskDay> {
        read_transaction!(self, |db| desk_day(db, day_start).await)
    }

    /// The newest decisions of every source, newest first.
    pub async fn recent_decisions(&self, limit: i64) -> Result<Vec<DecisionRecord>> {
        read!(self, |db| decisions::recent(db, limit).await)
    }

    /// The first of the source's waiting contacts, oldest first, each with why it waits.
    pub async fn waiting_with_reasons(&self, source_id: i64, limit: i64) -> Result<Vec<Waiting>> {
        let now = self.now();
        read_transaction!(self, |db| {
            let page = Page { skip: 0, limit };
            let contacts = queue::page_of(db, source_id, page, now).await?;
            let mut waiting = Vec::with_capacity(contacts.len());
            for contact in contacts {
                let decision = decisions::latest(db, contact.id).await?;
                waiting.push(Waiting { contact, decision });
            }
            Ok(waiting)
        })
    }
}
