use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::export::{self, varies_by_accept};
use super::wire::serialize_optional_timestamp;
use super::{Json, Path, Query, window_parameters};
use crate::AppState;
use crate::domain::fairness::{self, Window};
use crate::error::{AppError, ErrorBody};
use crate::store::sources::SourceDetail;
use crate::store::{OperatorTally, SourceStatsRead};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_source_stats))
}

/// How a source's contacts are distributed among its operators.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceStats {
    pub source_id: i64,
    pub source_name: String,
    /// Every contact that came through the source, in any status.
    pub total_contacts: i64,
    /// Contacts that have an operator.
    pub assigned_contacts: i64,
    /// Contacts without an operator (nobody was free, or their operator was deleted).
    pub unassigned_contacts: i64,
    /// One row per operator linked to the source or holding contacts from it (by operator id), then a row
    /// with `operator_id: null` for the unassigned contacts.
    pub operator_distribution: Vec<OperatorShare>,
    /// How closely the automatic assignments of the window followed the weights.
    pub fairness: Fairness,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorShare {
    /// `null` for the unassigned contacts.
    pub operator_id: Option<i64>,
    pub operator_name: Option<String>,
    /// Contacts in any status.
    pub count: i64,
    /// Contacts in status `active`.
    pub active_count: i64,
    /// The operator's current weight on the source; `null` when not linked (any more).
    pub weight: Option<f64>,
    /// weight / sum of the source's weights: the share the weights aim at when every operator has capacity.
    pub target_share: Option<f64>,
    /// count / assigned_contacts: the share the operator actually got. `null` for the unassigned row.
    /// It falls short of the target where an operator was full or inactive, or the weights changed.
    pub actual_share: Option<f64>,
}

/// The source's automatic assignments in `[since, until)` against the shares its weights gave: each
/// assignment was a choice among its candidates, and each candidate was due weight / the candidates' weights
/// of it (whoever was full, away or unlinked then was no candidate, and is not owed it). Sticky assignments
/// and manual ones are not counted: the weights did not choose them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Fairness {
    /// The window's start as asked; `null`: unbounded.
    #[serde(serialize_with = "serialize_optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime, example = json!(null))]
    pub since: Option<DateTime<Utc>>,
    /// The window's end (excluded) as asked; `null`: unbounded.
    #[serde(serialize_with = "serialize_optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime, example = json!(null))]
    pub until: Option<DateTime<Utc>>,
    /// Assignments in the window chosen by the source's strategy (on creation, from the queue, after a
    /// decline or an accept timeout), by the time of the routing decision.
    #[schema(example = 100)]
    pub assignments: i64,
    /// Pearson's statistic, Σ (assignments − expected)² / expected over the operators with expected > 0, to
    /// four decimals; `null` with fewer than two such operators.
    #[schema(example = 1.44)]
    pub chi_square: Option<f64>,
    /// The number of those operators less one; 0 without a statistic.
    #[schema(example = 1)]
    pub degrees_of_freedom: i64,
    /// The chance of a statistic at least this large had every assignment been drawn by the weights (the
    /// chi-square distribution's upper tail), unrounded. Small values (below 0.01, say) mean the shares
    /// strayed from the weights by more than chance: operators full or away while the others were not, or
    /// weights changed within the window. `smooth_weighted` keeps every count within one of its share, so
    /// its value stays near 1; `least_loaded` evens out load rather than following the weights.
    #[schema(example = 0.23)]
    pub p_value: Option<f64>,
    /// Every operator who was a candidate of an assignment of the window, by operator id.
    pub operators: Vec<OperatorFairness>,
}

/// One operator's part in a window's assignments.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorFairness {
    #[schema(example = 2)]
    pub operator_id: i64,
    /// `null` once the operator is deleted.
    #[schema(example = "Оператор 2")]
    pub operator_name: Option<String>,
    /// The assignments they got.
    #[schema(example = 56)]
    pub assignments: i64,
    /// The assignments the weights gave them: Σ over the assignments they were a candidate of, of their
    /// weight / the candidates' weights; four decimals.
    #[schema(example = 50.0)]
    pub expected: f64,
    /// expected / the window's assignments, four decimals.
    #[schema(example = 0.5)]
    pub target_share: f64,
    /// assignments / the window's assignments, four decimals.
    #[schema(example = 0.56)]
    pub actual_share: f64,
    /// (actual − target) × 100: percentage points above (or below) the target, two decimals.
    #[schema(example = 6.0)]
    pub deviation_pp: f64,
}

/// The window of `GET /stats/sources/{id}`'s fairness; each bad value is a 422 naming its parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Only assignments made at or after this time (RFC 3339, e.g. `2026-11-25T00:00:00Z`; a `+` in an offset
    /// must be sent as `%2B`); absent: since the first.
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    /// Only assignments made before this time (RFC 3339), which must be after `since`; absent: up to now.
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<String>,
}

impl StatsQuery {
    fn parse(&self) -> Result<Window, AppError> {
        window_parameters(self.since.as_deref(), self.until.as_deref())
    }
}

/// Distribution of a source's contacts per operator: counts, weights, target and actual shares; and the
/// fairness of its automatic assignments in a window. The counts' cost depends on the number of operators,
/// not of contacts; the fairness reads every routing decision in the window.
///
/// With `Accept: text/csv` (preferred to `application/json`), the distribution as a CSV download,
/// `source-{id}-stats.csv`: a header row, then a row per operator (the unassigned contacts' row last, with no
/// operator) with `operator_id, operator_name, count, active_count, weight, target_share, actual_share` and
/// the operator's part of the window's fairness, `fairness_assignments, fairness_expected,
/// fairness_target_share, fairness_actual_share, fairness_deviation_pp`; an empty cell for `null`.
#[utoipa::path(
    get, path = "/stats/sources/{id}", tag = "stats",
    params(("id" = i64, Path, description = "Source id"), StatsQuery),
    responses(
        (status = 200, description = "The source's distribution (as CSV with `Accept: text/csv`)",
         content(
             (SourceStats = "application/json"),
             (String = "text/csv", example = json!(export::SOURCE_STATS_EXAMPLE)),
         )),
        (status = 404, description = "No such source", body = ErrorBody),
        (status = 422, description = "Invalid id, since or until (the detail names it)", body = ErrorBody),
    )
)]
async fn get_source_stats(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(query): Query<StatsQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let window = query.parse()?;
    if export::wants_csv(&headers) {
        return export::source_stats(&state, id, window).await;
    }
    let stats = read_source_stats(&state, id, window).await?;
    Ok(varies_by_accept(Json(stats)))
}

/// The source's stats, as `GET /stats/sources/{id}` answers them.
pub(crate) async fn read_source_stats(
    state: &AppState,
    id: i64,
    window: Window,
) -> Result<SourceStats, AppError> {
    let SourceStatsRead {
        detail,
        tallies,
        assignments,
        operator_names,
    } = state.store.source_stats(id, window).await?;
    let fairness = fairness_of(&assignments, &operator_names, window);
    Ok(source_stats(detail, tallies, fairness))
}

/// The window's assignments measured against the weights, rounded as the rest of the stats are (shares to
/// four decimals, percentage points to two) and with their operators' names.
fn fairness_of(
    assignments: &[fairness::Assignment],
    operator_names: &BTreeMap<i64, String>,
    window: Window,
) -> Fairness {
    let measured = fairness::measure(assignments);
    let total = measured.assignments as f64;
    let operators = measured
        .operators
        .iter()
        .map(|o| {
            let (target, actual) = (o.expected / total, o.assignments as f64 / total);
            OperatorFairness {
                operator_id: o.operator_id,
                operator_name: operator_names.get(&o.operator_id).cloned(),
                assignments: o.assignments,
                expected: round_to(o.expected, 4),
                target_share: share(o.expected, total),
                actual_share: share(o.assignments as f64, total),
                deviation_pp: round_to((actual - target) * 100.0, 2),
            }
        })
        .collect();
    Fairness {
        since: window.since(),
        until: window.until(),
        assignments: measured.assignments,
        chi_square: measured.chi_square.map(|x| round_to(x, 4)),
        degrees_of_freedom: measured.degrees_of_freedom,
        p_value: measured.p_value,
        operators,
    }
}

fn source_stats(
    detail: SourceDetail,
    tallies: Vec<OperatorTally>,
    fairness: Fairness,
) -> SourceStats {
    let weight_sum: f64 = detail
        .operator_weights
        .iter()
        .map(|w| w.weight.weight)
        .sum();
    let unassigned = tallies.iter().find(|t| t.operator_id == 0);
    let (unassigned_contacts, unassigned_active) =
        unassigned.map_or((0, 0), |t| (t.contacts, t.active_contacts));
    let total_contacts: i64 = tallies.iter().map(|t| t.contacts).sum();
    let assigned_contacts = total_contacts - unassigned_contacts;

    let mut rows: BTreeMap<i64, OperatorShare> = BTreeMap::new();
    for linked in &detail.operator_weights {
        let weight = linked.weight.weight;
        rows.insert(
            linked.weight.operator_id,
            OperatorShare {
                operator_id: Some(linked.weight.operator_id),
                operator_name: Some(linked.operator_name.clone()),
                count: 0,
                active_count: 0,
                weight: Some(weight),
                target_share: Some(share(weight, weight_sum)),
                actual_share: None,
            },
        );
    }
    for tally in tallies.iter().filter(|t| t.operator_id != 0) {
        let row = rows
            .entry(tally.operator_id)
            .or_insert_with(|| OperatorShare {
                operator_id: Some(tally.operator_id),
                operator_name: tally.operator_name.clone(),
                count: 0,
                active_count: 0,
                weight: None,
                target_share: None,
                actual_share: None,
            });
        row.count = tally.contacts;
        row.active_count = tally.active_contacts;
    }
    let mut operator_distribution: Vec<OperatorShare> = rows
        .into_values()
        .map(|row| OperatorShare {
            actual_share: Some(share(row.count as f64, assigned_contacts as f64)),
            ..row
        })
        .collect();
    operator_distribution.push(OperatorShare {
        operator_id: None,
        operator_name: None,
        count: unassigned_contacts,
        active_count: unassigned_active,
        weight: None,
        target_share: None,
        actual_share: None,
    });
    SourceStats {
        source_id: detail.source.id,
        source_name: detail.source.name,
        total_contacts,
        assigned_contacts,
        unassigned_contacts,
        operator_distribution,
        fairness,
    }
}

/// part / whole to four decimals; 0 when the whole is 0.
fn share(part: f64, whole: f64) -> f64 {
    if whole <= 0.0 {
        return 0.0;
    }
    round_to(part / whole, 4)
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}
