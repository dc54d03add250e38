use std::collections::BTreeMap;

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Json, Path};
use crate::AppState;
use crate::error::{AppError, ErrorBody};
use crate::store::OperatorTally;
use crate::store::sources::SourceDetail;

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

/// Distribution of a source's contacts per operator: counts, weights, target and actual shares. Its cost
/// depends on the number of operators, not of contacts.
#[utoipa::path(
    get, path = "/stats/sources/{id}", tag = "stats",
    params(("id" = i64, Path, description = "Source id")),
    responses(
        (status = 200, description = "The source's distribution", body = SourceStats),
        (status = 404, description = "No such source", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
    )
)]
async fn get_source_stats(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<SourceStats>, AppError> {
    let (detail, tallies) = state.store.source_tallies(id).await?;
    Ok(Json(source_stats(detail, tallies)))
}

fn source_stats(detail: SourceDetail, tallies: Vec<OperatorTally>) -> SourceStats {
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
    }
}

/// part / whole to four decimals; 0 when the whole is 0.
fn share(part: f64, whole: f64) -> f64 {
    if whole <= 0.0 {
        return 0.0;
    }
    (part / whole * 10_000.0).round() / 10_000.0
}
