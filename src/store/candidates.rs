//! Who may take a source's contacts: the linked operators as routing reads them (weight, load, availability,
//! schedule, and their time off where it may matter), judged by [`crate::domain::evaluate`] into a field of
//! candidates and exclusions; for a new contact, the source, its field, its strategy's round and whether
//! its queue has contacts waiting, in one query; and for a what-if simulation, the source, its round and its
//! linked operators with their names, as of one moment.

use chrono::{DateTime, Utc};

use super::executor::{Executor, Record, Row, params};
use super::queue::waiting_condition;
use super::sources::Source;
use super::{Result, Store};
use crate::domain::{Field, LinkedOperator, Round, evaluate};
use crate::error::AppError;

impl Record for LinkedOperator {
    fn decode(row: &Row<'_>) -> Result<Self> {
        Ok(LinkedOperator {
            operator_id: row.get("operator_id")?,
            weight: row.get("weight")?,
            is_active: row.get("is_active")?,
            max_load: row.get("max_load")?,
            active_load: row.get("active_load")?,
            availability: row.get("availability")?,
            away_until: row.get("away_until")?,
            timezone: row.get("timezone")?,
            schedule: row.get("schedule")?,
            last_assigned_at: row.get("last_assigned_at")?,
            // Loaded apart, for the few who have any (see `candidates_of`).
            time_off: Vec::new(),
        })
    }
}

/// Whether a linked operator has any time off on record, read with them.
struct WithTimeOff(LinkedOperator, bool);

impl Record for WithTimeOff {
    fn decode(row: &Row<'_>) -> Result<Self> {
        Ok(WithTimeOff(
            LinkedOperator::decode(row)?,
            row.get("has_time_off")?,
        ))
    }
}

/// The linked operator columns that routing reads, `last_assigned_at` as the caller reads it, and whether
/// each has time off on record (on `source_operator_weights` as `w`, `operators` as `o`). In the order they
/// are decoded: a row finds a column by name fastest when it is the one after the last it found.
macro_rules! linked_columns {
    ($last_assigned_at:expr) => {
        concat!(
            "w.operator_id, w.weight, o.is_active, o.max_load, o.active_load, ",
            "o.availability, o.away_until, o.timezone, o.schedule, ",
            $last_assigned_at,
            " AS last_assigned_at, ",
            "EXISTS (SELECT 1 FROM operator_time_off t WHERE t.operator_id = o.id) AS has_time_off"
        )
    };
}

/// Who may take a contact of the source at `now` and who may not, by the rule of [`evaluate`], in operator
/// order. One query loads the operators with their availability and schedule, and whether they have time off
/// on record; only when one who otherwise accepts contacts has some is it loaded, by a second query.
pub async fn field_of(db: &mut impl Executor, source_id: i64, now: DateTime<Utc>) -> Result<Field> {
    let sql = concat!(
        "SELECT ",
        linked_columns!("o.last_assigned_at"),
        " FROM source_operator_weights w JOIN operators o ON o.id = w.operator_id ",
        "WHERE w.source_id = $1 ORDER BY w.operator_id"
    );
    let rows: Vec<WithTimeOff> = db.all(sql, params![source_id]).await?;
    field_with_time_off(db, source_id, rows, now).await
}

/// The field of the linked operators as read, their time off loaded if it may matter (see [`with_time_off`]).
async fn field_with_time_off(
    db: &mut impl Executor,
    source_id: i64,
    rows: Vec<WithTimeOff>,
    now: DateTime<Utc>,
) -> Result<Field> {
    let linked = with_time_off(db, source_id, rows, now).await?;
    Ok(evaluate(&linked, now, &[]))
}

/// The linked operators as read, their time off loaded if it may matter: to whether they are a candidate at
/// `now`, or to why not (time off is said before full).
async fn with_time_off(
    db: &mut impl Executor,
    source_id: i64,
    rows: Vec<WithTimeOff>,
    now: DateTime<Utc>,
) -> Result<Vec<LinkedOperator>> {
    let needs_time_off = rows.iter().any(|WithTimeOff(operator, has_time_off)| {
        *has_time_off && operator.presence().accepting_at(now)
    });
    let mut linked: Vec<LinkedOperator> = rows
        .into_iter()
        .map(|WithTimeOff(operator, _)| operator)
        .collect();
    if needs_time_off {
        for time_off in super::time_off::of_source(db, source_id).await? {
            if let Some(operator) = linked
                .iter_mut()
                .find(|o| o.operator_id == time_off.operator_id)
            {
                operator.time_off.push(time_off.period());
            }
        }
    }
    Ok(linked)
}

/// What routing a new contact of a live source starts from: the source, its field at `now`, its strategy's
/// round, and whether contacts wait in its queue.
pub struct RoutingView {
    pub source: Source,
    pub field: Field,
    pub round: Round,
    pub has_waiting: bool,
}

/// One row of [`routing_view`]'s query: the source, or one of its linked operators.
enum RoutingRow {
    Source {
        source: Source,
        round: Round,
        has_waiting: bool,
    },
    Linked(WithTimeOff),
}

impl Record for RoutingRow {
    fn decode(row: &Row<'_>) -> Result<Self> {
        if row.get::<Option<i64>>("id")?.is_none() {
            return WithTimeOff::decode(row).map(RoutingRow::Linked);
        }
        Ok(RoutingRow::Source {
            source: Source::decode(row)?,
            round: super::sources::round_column(row)?,
            has_waiting: row.get("has_waiting")?,
        })
    }
}

/// [`RoutingView`] of the source, or `None` when there is no live source of that id: the source, its
/// operators and its queue in one query, where they were three — a new contact's one read before it writes.
/// The source comes in a row of its own, and each operator in one with the source's columns NULL: a join would repeat the source in every operator's row, and decoding it once per row (its strings,
/// its timestamp, its rules) was a tenth of the writer's time at 64 clients.
pub async fn routing_view(
    db: &mut impl Executor,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<RoutingView>> {
    let sql = concat!(
        "SELECT s.id, s.name, s.description, s.created_at, s.on_operator_unavailable, s.sticky_hours, ",
        "s.accept_timeout_secs, s.strategy, ",
        // What only one strategy uses is read only for it.
        "CASE WHEN s.strategy = 'smooth_weighted' THEN s.strategy_round END AS strategy_round, ",
        "EXISTS (SELECT 1 FROM contacts c WHERE c.source_id = s.id AND c.",
        waiting_condition!(),
        ") AS has_waiting, ",
        "NULL AS operator_id, NULL AS weight, NULL AS is_active, NULL AS max_load, NULL AS active_load, ",
        "NULL AS availability, NULL AS away_until, NULL AS timezone, NULL AS schedule, ",
        "NULL AS last_assigned_at, NULL AS has_time_off ",
        "FROM sources s WHERE s.id = $1 AND s.deleted_at IS NULL ",
        "UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, ",
        linked_columns!("CASE WHEN s.strategy = 'least_loaded' THEN o.last_assigned_at END"),
        " FROM sources s JOIN source_operator_weights w ON w.source_id = s.id ",
        "JOIN operators o ON o.id = w.operator_id ",
        "WHERE s.id = $1 AND s.deleted_at IS NULL"
    );
    let rows: Vec<RoutingRow> = db.all(sql, params![id]).await?;
    let mut view = None;
    let mut linked = Vec::with_capacity(rows.len());
    for row in rows {
        match row {
            RoutingRow::Source {
                source,
                round,
                has_waiting,
            } => view = Some((source, round, has_waiting)),
            RoutingRow::Linked(operator) => linked.push(operator),
        }
    }
    let Some((source, round, has_waiting)) = view else {
        return Ok(None);
    };
    // A compound query's rows come in no promised order; the field is in operator order.
    linked.sort_unstable_by_key(|WithTimeOff(operator, _)| operator.operator_id);
    Ok(Some(RoutingView {
        field: field_with_time_off(db, id, linked, now).await?,
        source,
        round,
        has_waiting,
    }))
}

/// What a what-if simulation of a live source starts from: the source, its round as stored, and its linked
/// operators as of `now`.
pub struct SimulationView {
    pub source: Source,
    pub round: Round,
    /// In operator order.
    pub linked: Vec<LinkedOperator>,
    /// The name of each of `linked`, in the same order.
    pub operator_names: Vec<String>,
    pub now: DateTime<Utc>,
}

/// One row of [`simulation_view`]'s query: the source, and one linked operator with their name if it has any.
struct SimulationRow {
    source: Source,
    round: Round,
    linked: Option<(WithTimeOff, String)>,
}

impl Record for SimulationRow {
    fn decode(row: &Row<'_>) -> Result<Self> {
        let source = Source::decode(row)?;
        let round = super::sources::round_column(row)?;
        let linked = match row.get::<Option<i64>>("operator_id")? {
            Some(_) => Some((WithTimeOff::decode(row)?, row.get("operator_name")?)),
            None => None,
        };
        Ok(SimulationRow {
            source,
            round,
            linked,
        })
    }
}

/// [`SimulationView`] of the source, or `None` when there is no live source of that id.
pub async fn simulation_view(
    db: &mut impl Executor,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<SimulationView>> {
    let sql = concat!(
        "SELECT s.id, s.name, s.description, s.created_at, s.on_operator_unavailable, s.sticky_hours, ",
        "s.accept_timeout_secs, s.strategy, s.strategy_round, ",
        linked_columns!("o.last_assigned_at"),
        ", o.name AS operator_name",
        " FROM sources s LEFT JOIN source_operator_weights w ON w.source_id = s.id ",
        "LEFT JOIN operators o ON o.id = w.operator_id ",
        "WHERE s.id = $1 AND s.deleted_at IS NULL ORDER BY w.operator_id"
    );
    let rows: Vec<SimulationRow> = db.all(sql, params![id]).await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let (source, round) = (first.source.clone(), first.round.clone());
    let (linked, operator_names): (Vec<WithTimeOff>, Vec<String>) =
        rows.into_iter().filter_map(|row| row.linked).unzip();
    Ok(Some(SimulationView {
        linked: with_time_off(db, id, linked, now).await?,
        operator_names,
        source,
        round,
        now,
    }))
}

impl Store {
    /// [`simulation_view`] at the store clock's now, every statement in one read transaction: the operators,
    /// their time off and the round as one committed state left them.
    pub async fn simulation_view(&self, source_id: i64) -> Result<SimulationView> {
        let now = self.now();
        read_transaction!(self, |db| simulation_view(db, source_id, now).await)?
            .ok_or_else(|| AppError::not_found("Source"))
    }
}
