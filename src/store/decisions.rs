//! The record of every automatic assignment attempt ([`crate::domain::Decision`]), written in the attempt's own
//! transaction: why a contact went to whom, or why it waits. Each row keeps the candidates and exclusions
//! compactly, by operator id; names are joined when read. Fairness over a window and the queue's pace (what
//! a waiting contact's ETA is reckoned from) are read from here too.

use std::borrow::Cow;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::executor::{Executor, Record, Row, params, returning};
use super::{Page, Result, Store, contacts, operators};
use crate::domain::fairness::{Assignment, Window};
use crate::domain::{Candidate, Decision, Exclusion, Reach, Strategy, weighted_shares};
use crate::error::AppError;

/// A candidate as a record holds it: `[operator_id, weight, load, max_load, probability]`.
type RecordedCandidate = (i64, f64, i64, i64, f64);

/// An attempt's `record` column: `k` the candidates as `[operator_id, weight, load, max_load]`, each with the
/// probability the decision's strategy implies ([`implied_probabilities`]); `c` the candidates as
/// `[operator_id, weight, load, max_load, probability]`, for a decision whose probabilities are not those (and
/// in every record written before `k`); `x` the excluded as `[operator_id, why]`; `d` what the strategy used.
/// The probabilities were two fifths of a record's bytes, and the records the most of every new contact's.
/// Written from borrowed parts (no copy of the detail on the write path), read back owned.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Compact<'a> {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    k: Vec<(i64, f64, i64, i64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    c: Vec<RecordedCandidate>,
    #[serde(default)]
    x: Vec<(i64, Cow<'a, str>)>,
    #[serde(default)]
    d: Cow<'a, Value>,
}

impl Compact<'_> {
    /// The candidates as `[operator_id, weight, load, max_load, probability]`, however they were written.
    fn candidates(&self, row: &DecisionRow) -> Result<Vec<RecordedCandidate>> {
        if self.k.is_empty() {
            return Ok(self.c.clone());
        }
        let implied = implied_probabilities(
            row.strategy()?,
            &row.reason,
            row.chosen_operator_id,
            self.k
                .iter()
                .map(|&(operator_id, weight, ..)| (operator_id, weight)),
        );
        Ok(self
            .k
            .iter()
            .zip(implied)
            .map(|(&(operator_id, weight, load, max_load), p)| {
                (operator_id, weight, load, max_load, p)
            })
            .collect())
    }
}

/// The probabilities a decision's candidates had, as its strategy gives them: their shares of the weights for
/// a weighted random draw, certainty for the one chosen otherwise (a deterministic strategy, or a returning
/// lead given back to their operator, whatever the strategy).
fn implied_probabilities(
    strategy: Strategy,
    reason: &str,
    chosen_operator_id: Option<i64>,
    candidates: impl Iterator<Item = (i64, f64)> + Clone,
) -> Vec<f64> {
    if strategy == Strategy::WeightedRandom && reason != super::history::reason::STICKY {
        return weighted_shares(candidates.map(|(_, weight)| weight));
    }
    candidates
        .map(|(operator_id, _)| f64::from(u8::from(Some(operator_id) == chosen_operator_id)))
        .collect()
}

/// Writes the decision, and returns its id for the history entry it makes (or, with [`attach`], follows).
pub async fn record(
    db: &mut impl Executor,
    contact_id: i64,
    source_id: i64,
    at: DateTime<Utc>,
    reason: &str,
    decision: &Decision,
) -> Result<i64> {
    let text = record_column(decision, reason)?;
    let sql = returning!(
        write: "INSERT INTO routing_decisions (contact_id, source_id, at, reason, strategy, \
             chosen_operator_id, record) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        columns: "id AS value",
        read_back: "FROM routing_decisions WHERE id = last_insert_rowid()",
    );
    let params = params![
        contact_id,
        source_id,
        at,
        reason,
        decision.strategy.as_str(),
        decision.chosen_operator_id,
        text.as_str()
    ];
    db.written_one(&sql, params).await
}

/// The decision's `record` column ([`Compact`]), for an attempt made for `reason`.
pub fn record_column(decision: &Decision, reason: &str) -> Result<String> {
    let weights = decision
        .candidates
        .iter()
        .map(|(c, _)| (c.operator_id, c.weight));
    let implied = implied_probabilities(
        decision.strategy,
        reason,
        decision.chosen_operator_id,
        weights,
    );
    let as_implied = implied
        .iter()
        .zip(&decision.candidates)
        .all(|(implied, (_, probability))| implied.to_bits() == probability.to_bits());
    let (mut k, mut c) = (Vec::new(), Vec::new());
    for &(candidate, probability) in &decision.candidates {
        let Candidate {
            operator_id,
            weight,
            load,
            max_load,
            ..
        } = candidate;
        if as_implied {
            k.push((operator_id, weight, load, max_load));
        } else {
            c.push((operator_id, weight, load, max_load, probability));
        }
    }
    let compact = Compact {
        k,
        c,
        x: decision
            .excluded
            .iter()
            .map(|e| (e.operator_id, Cow::Borrowed(e.why.as_str())))
            .collect(),
        d: Cow::Borrowed(&decision.detail),
    };
    serde_json::to_string(&compact)
        .map_err(|error| AppError::Internal(anyhow::anyhow!("decision record: {error}")))
}

/// Points the history entry to the decision that followed it: how a decision made after its entry is found.
pub async fn attach(db: &mut impl Executor, history_id: i64, decision_id: i64) -> Result<()> {
    let sql = "UPDATE contact_history SET decision_id = $2 WHERE id = $1";
    db.execute(sql, params![history_id, decision_id]).await?;
    Ok(())
}

/// One candidate of a recorded decision.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsideredOperator {
    pub operator_id: i64,
    /// `None` once the operator is deleted.
    pub operator_name: Option<String>,
    pub weight: f64,
    pub load: i64,
    pub max_load: i64,
    pub probability: f64,
}

/// One operator left out of a recorded decision.
#[derive(Debug, Clone, PartialEq)]
pub struct ExcludedOperator {
    pub operator_id: i64,
    pub operator_name: Option<String>,
    pub why: Exclusion,
}

/// A decision as read back.
#[derive(Debug, Clone)]
pub struct DecisionRecord {
    pub id: i64,
    pub contact_id: i64,
    pub source_id: i64,
    pub at: DateTime<Utc>,
    /// One of the history's reasons: `creation`, `queue`, `sticky`, `accept_timeout`, `declined`,
    /// `operator_unavailable`.
    pub reason: String,
    pub strategy: Strategy,
    pub chosen_operator_id: Option<i64>,
    pub candidates: Vec<ConsideredOperator>,
    pub excluded: Vec<ExcludedOperator>,
    pub detail: Value,
}

/// A decision's row before names are joined.
struct DecisionRow {
    id: i64,
    contact_id: i64,
    source_id: i64,
    at: DateTime<Utc>,
    reason: String,
    strategy: String,
    chosen_operator_id: Option<i64>,
    record: String,
}

record!(DecisionRow {
    id,
    contact_id,
    source_id,
    at,
    reason,
    strategy,
    chosen_operator_id,
    record
});

impl DecisionRow {
    fn compact(&self) -> Result<Compact<'_>> {
        serde_json::from_str(&self.record).map_err(|error| {
            AppError::Internal(anyhow::anyhow!(
                "decision {} holds an unreadable record: {error}",
                self.id
            ))
        })
    }

    fn strategy(&self) -> Result<Strategy> {
        Strategy::parse(&self.strategy).map_err(|error| {
            AppError::Internal(anyhow::anyhow!(
                "decision {}: strategy {}",
                self.id,
                error.0
            ))
        })
    }
}

const DECISION_COLUMNS: &str =
    "id, contact_id, source_id, at, reason, strategy, chosen_operator_id, record";

/// The page of the contact's decisions, oldest first, if the contact is within reach as this very statement
/// reads it.
async fn list(
    db: &mut impl Executor,
    contact_id: i64,
    reach: Reach,
    page: Page,
) -> Result<Vec<DecisionRecord>> {
    // Through the history entries that point to them: the contact's index is theirs.
    let sql = format!(
        "SELECT {DECISION_COLUMNS} FROM routing_decisions WHERE id IN (SELECT h.decision_id \
         FROM contact_history h WHERE h.contact_id = $1 AND h.decision_id IS NOT NULL) AND contact_id = $1 \
         AND EXISTS (SELECT 1 FROM contacts WHERE id = $1 AND ($4 IS NULL OR operator_id = $4)) \
         ORDER BY id LIMIT $2 OFFSET $3"
    );
    let params = params![contact_id, page.limit, page.skip, reach.operator_id()];
    let rows: Vec<DecisionRow> = db.all(&sql, params).await?;
    named(db, rows).await
}

/// The newest decisions of every source, newest first: the dashboard's feed.
pub async fn recent(db: &mut impl Executor, limit: i64) -> Result<Vec<DecisionRecord>> {
    let sql = format!("SELECT {DECISION_COLUMNS} FROM routing_decisions ORDER BY id DESC LIMIT $1");
    let rows: Vec<DecisionRow> = db.all(&sql, params![limit]).await?;
    named(db, rows).await
}

/// The contact's latest decision, if it has one: for a waiting contact, why it waits.
pub async fn latest(db: &mut impl Executor, contact_id: i64) -> Result<Option<DecisionRecord>> {
    let sql = format!(
        "SELECT {DECISION_COLUMNS} FROM routing_decisions WHERE id = (SELECT MAX(h.decision_id) \
         FROM contact_history h WHERE h.contact_id = $1) AND contact_id = $1"
    );
    let rows: Vec<DecisionRow> = db.all(&sql, params![contact_id]).await?;
    Ok(named(db, rows).await?.pop())
}

/// The rows as records, with their operators' names.
async fn named(db: &mut impl Executor, rows: Vec<DecisionRow>) -> Result<Vec<DecisionRecord>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    // Operators are few; their names are read once for the page.
    let names = operators::names(db).await?;
    let name_of = |id: i64| names.get(&id).cloned();
    rows.iter()
        .map(|row| {
            let compact = row.compact()?;
            let excluded = compact
                .x
                .iter()
                .map(|(operator_id, why)| {
                    let why = Exclusion::parse(why).map_err(|error| {
                        AppError::Internal(anyhow::anyhow!("decision {}: {}", row.id, error.0))
                    })?;
                    Ok(ExcludedOperator {
                        operator_id: *operator_id,
                        operator_name: name_of(*operator_id),
                        why,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(DecisionRecord {
                id: row.id,
                contact_id: row.contact_id,
                source_id: row.source_id,
                at: row.at,
                reason: row.reason.clone(),
                strategy: row.strategy()?,
                chosen_operator_id: row.chosen_operator_id,
                candidates: compact
                    .candidates(row)?
                    .into_iter()
                    .map(
                        |(operator_id, weight, load, max_load, probability)| ConsideredOperator {
                            operator_id,
                            operator_name: name_of(operator_id),
                            weight,
                            load,
                            max_load,
                            probability,
                        },
                    )
                    .collect(),
                excluded,
                detail: compact.d.into_owned(),
            })
        })
        .collect()
}

/// The source's assignments chosen by its strategy in the window, oldest first: sticky ones went to a
/// lead's previous operator whatever the weights, and are not counted against them.
pub async fn strategy_assignments(
    db: &mut impl Executor,
    source_id: i64,
    window: Window,
) -> Result<Vec<Assignment>> {
    let sql = format!(
        "SELECT {DECISION_COLUMNS} FROM routing_decisions WHERE source_id = $1 \
         AND ($2 IS NULL OR at >= $2) AND ($3 IS NULL OR at < $3) \
         AND chosen_operator_id IS NOT NULL AND reason <> 'sticky' ORDER BY at, id"
    );
    let params = params![source_id, window.since(), window.until()];
    let rows: Vec<DecisionRow> = db.all(&sql, params).await?;
    rows.iter()
        .filter_map(|row| row.chosen_operator_id.map(|chosen| (row, chosen)))
        .map(|(row, chosen_operator_id)| {
            Ok(Assignment {
                chosen_operator_id,
                candidates: row
                    .compact()?
                    .candidates(row)?
                    .into_iter()
                    .map(|(operator_id, weight, load, max_load, _)| Candidate {
                        operator_id,
                        weight,
                        load,
                        max_load,
                        last_assigned_at: None,
                    })
                    .collect(),
            })
        })
        .collect()
}

/// How far back the queue's pace looks, and how many of its latest assignments it counts at most.
pub const PACE_WINDOW: TimeDelta = TimeDelta::hours(1);
pub const PACE_SAMPLE: i64 = 50;
/// The shortest span the pace is measured over, so that one assignment a moment ago is not read as a
/// torrent.
pub const PACE_MIN_SPAN: TimeDelta = TimeDelta::minutes(1);

/// The rate, per second, at which the source's waiting contacts were assigned lately: its latest (at most
/// [`PACE_SAMPLE`]) assignments from the queue within [`PACE_WINDOW`] before `now`, divided by the time from
/// the oldest of them to now (at least [`PACE_MIN_SPAN`]). `None` when there was none.
pub async fn queue_pace(
    db: &mut impl Executor,
    source_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<f64>> {
    /// One assignment's time.
    struct At(DateTime<Utc>);
    impl Record for At {
        fn decode(row: &Row<'_>) -> Result<Self> {
            row.get("at").map(At)
        }
    }
    let sql = "SELECT at FROM routing_decisions WHERE source_id = $1 AND at >= $2 AND at <= $3 \
         AND reason = 'queue' AND chosen_operator_id IS NOT NULL ORDER BY at DESC LIMIT $4";
    let times: Vec<At> = db
        .all(sql, params![source_id, now - PACE_WINDOW, now, PACE_SAMPLE])
        .await?;
    let Some(At(oldest)) = times.last() else {
        return Ok(None);
    };
    let span = (now - *oldest).max(PACE_MIN_SPAN);
    Ok(Some(times.len() as f64 / span.as_seconds_f64()))
}

/// A waiting contact's expected wait in whole seconds: its queue position over its source's [`queue_pace`],
/// rounded up. It supposes the queue goes on moving at the pace it had, and nobody older joins it ahead.
pub fn eta_seconds(queue_position: i64, pace: f64) -> i64 {
    let seconds = queue_position as f64 / pace;
    // To the microsecond first, so that the last bit of a float cannot add a whole second.
    ((seconds * 1e6).round() / 1e6).ceil() as i64
}

impl Store {
    /// The contact's decisions, oldest first, if the contact is within reach.
    pub async fn contact_decisions(
        &self,
        id: i64,
        reach: Reach,
        page: Page,
    ) -> Result<Vec<DecisionRecord>> {
        read!(self, |db| {
            if !contacts::within_reach(db, id, reach).await? {
                return Err(AppError::not_found("Contact"));
            }
            list(db, id, reach, page).await
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::domain::strategy::choose;
    use crate::domain::{Field, Round};
    use crate::store::history::reason;

    fn field(weights: &[f64]) -> Field {
        Field {
            candidates: weights
                .iter()
                .enumerate()
                .map(|(i, &weight)| Candidate {
                    operator_id: i as i64 + 1,
                    weight,
                    load: i as i64,
                    max_load: 10,
                    last_assigned_at: None,
                })
                .collect(),
            excluded: Vec::new(),
        }
    }

    /// The decision's record written, then read back as a row of the table would be.
    fn written_and_read(decision: &Decision, reason: &str) -> (Value, Vec<RecordedCandidate>) {
        let record = record_column(decision, reason).unwrap();
        let row = DecisionRow {
            id: 1,
            contact_id: 1,
            source_id: 1,
            at: Utc::now(),
            reason: reason.to_owned(),
            strategy: decision.strategy.as_str().to_owned(),
            chosen_operator_id: decision.chosen_operator_id,
            record: record.clone(),
        };
        let candidates = row.compact().unwrap().candidates(&row).unwrap();
        (serde_json::from_str(&record).unwrap(), candidates)
    }

    fn as_decided(decision: &Decision) -> Vec<RecordedCandidate> {
        decision
            .candidates
            .iter()
            .map(|(c, p)| (c.operator_id, c.weight, c.load, c.max_load, *p))
            .collect()
    }

    #[test]
    fn every_strategys_probabilities_are_left_out_and_read_back_exactly() {
        let field = field(&[1.0, 2.0, 3.0, 4.0, 0.7]);
        let mut rng = StdRng::seed_from_u64(7);
        for strategy in [
            Strategy::WeightedRandom,
            Strategy::SmoothWeighted,
            Strategy::LeastLoaded,
        ] {
            let choice = choose(strategy, &field.candidates, &Round::default(), &mut rng).unwrap();
            let decision = Decision::chosen(strategy, &field, &choice);
            for why in [reason::CREATION, reason::QUEUE] {
                let (record, read) = written_and_read(&decision, why);
                assert!(record.get("c").is_none(), "{strategy:?}: {record}");
                assert_eq!(record["k"].as_array().map(Vec::len), Some(5), "{record}");
                assert_eq!(read, as_decided(&decision), "{strategy:?} for {why}");
            }
            let sticky = Decision::sticky(strategy, &field, 3, 24);
            let (record, read) = written_and_read(&sticky, reason::STICKY);
            assert!(record.get("c").is_none(), "{record}");
            assert_eq!(read, as_decided(&sticky), "{strategy:?}, sticky");
        }
    }

    #[test]
    fn probabilities_other_than_the_strategys_are_kept() {
        let field = field(&[1.0, 3.0]);
        let mut rng = StdRng::seed_from_u64(7);
        let choice = choose(
            Strategy::WeightedRandom,
            &field.candidates,
            &Round::default(),
            &mut rng,
        );
        let mut decision = Decision::chosen(Strategy::WeightedRandom, &field, &choice.unwrap());
        decision.candidates[0].1 = 0.5;
        decision.candidates[1].1 = 0.5;
        let (record, read) = written_and_read(&decision, reason::CREATION);
        assert!(record.get("k").is_none(), "{record}");
        assert_eq!(read, as_decided(&decision));
    }

    #[test]
    fn a_record_written_with_every_probability_reads_as_before() {
        let row = DecisionRow {
            id: 1,
            contact_id: 1,
            source_id: 1,
            at: Utc::now(),
            reason: reason::CREATION.to_owned(),
            strategy: "weighted_random".to_owned(),
            chosen_operator_id: Some(2),
            record: r#"{"c":[[1,1.0,0,10,0.25],[2,3.0,4,10,0.75]],"x":[[3,"full"]],"d":{"random":2.5,"total_weight":4.0}}"#.to_owned(),
        };
        let compact = row.compact().unwrap();
        assert_eq!(
            compact.candidates(&row).unwrap(),
            vec![(1, 1.0, 0, 10, 0.25), (2, 3.0, 4, 10, 0.75)]
        );
        assert_eq!(compact.x.len(), 1);
    }

    #[test]
    fn an_eta_is_the_position_over_the_pace_rounded_up() {
        // Three assignments over ten minutes.
        let pace = 3.0 / 600.0;
        assert_eq!(eta_seconds(1, pace), 200);
        assert_eq!(eta_seconds(2, pace), 400);
        // Seven over ten minutes: 85.71… s for the first.
        assert_eq!(eta_seconds(1, 7.0 / 600.0), 86);
        assert_eq!(eta_seconds(7, 7.0 / 600.0), 600);
    }
}
