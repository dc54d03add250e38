//! The what-if simulator: what a source's next contact would get, and what its next N contacts would do, by
//! its strategy or another, with its weights or others, writing nothing.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schemas::StrategyName;
use super::wire::{
    deserialize_present, deserialize_present_whole_number, deserialize_whole_number,
};
use super::{Json, Path, invalid};
use crate::AppState;
use crate::domain::simulation::{
    self as domain, Capacity, Scenario, SimulatedContacts, SourceNow, WeightOverride, simulate,
};
use crate::domain::{Strategy, ValueError, random_generator};
use crate::error::{AppError, ErrorBody};
use crate::store::candidates::SimulationView;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(simulate_contacts))
}

/// A what-if: N contacts arriving now, one after another.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SimulateContacts {
    /// How many contacts to simulate, a whole number from 1 to 100,000.
    #[serde(deserialize_with = "deserialize_whole_number")]
    #[schema(example = 1000, minimum = 1, maximum = 100_000)]
    pub contacts: i64,
    /// `weighted_random`, `smooth_weighted` or `least_loaded` (default: the source's own; not null).
    #[serde(default, deserialize_with = "deserialize_present")]
    #[schema(value_type = StrategyName)]
    pub strategy: Option<String>,
    /// Weights to play instead of the operators' own on the source, at most one per linked operator; 0
    /// plays the source as if the operator were unlinked. The others keep their weights (default: none
    /// given; not null).
    #[serde(default, deserialize_with = "deserialize_present")]
    #[schema(value_type = Vec<SimulatedWeight>)]
    pub weights: Option<Vec<SimulatedWeight>>,
    /// `current` (the default; not null): from the operators' current loads, up to their max_load, with
    /// nobody closing a contact meanwhile, so the contacts beyond the free capacity are `unassigned`.
    /// `ignore`: loads and max_load exclude nobody; only whether an operator accepts contacts does.
    #[serde(default, deserialize_with = "deserialize_present")]
    #[schema(value_type = CapacityName, default = "current")]
    pub capacity: Option<String>,
    /// Seeds weighted_random's draws, so that the same request gives the same answer: a server started with
    /// `--routing-seed` S assigns the first contacts of a weighted_random source, before it draws for anything
    /// else, as a simulation with seed S does. Unset (not null): seeded by the operating system.
    #[serde(default, deserialize_with = "deserialize_present_whole_number")]
    #[schema(value_type = i64, example = 42, minimum = 0)]
    pub seed: Option<i64>,
}

/// A weight to simulate with.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SimulatedWeight {
    /// An operator linked to the source.
    #[serde(deserialize_with = "deserialize_whole_number")]
    #[schema(example = 1)]
    pub operator_id: i64,
    /// 0 (as if unlinked), or above 0 and at most 1,000,000, fractions allowed.
    #[schema(example = 30.0, minimum = 0.0, maximum = 1_000_000.0)]
    pub weight: f64,
}

/// Whether a simulation keeps to the operators' capacity.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum CapacityName {
    Current,
    Ignore,
}

/// What the source's next contacts would do.
#[derive(Debug, Serialize, ToSchema)]
pub struct Simulation {
    /// The strategy played.
    #[schema(value_type = StrategyName, example = "weighted_random")]
    pub strategy: &'static str,
    #[schema(value_type = CapacityName, example = "current")]
    pub capacity: &'static str,
    /// How many contacts were simulated.
    #[schema(example = 1000)]
    pub contacts: u32,
    /// Who could get the next contact, with the probability each has: weight / Σ weights for
    /// weighted_random, 1 for the operator the deterministic strategies would choose and 0 for the others.
    /// Empty when nobody can take it.
    pub next: Vec<NextChance>,
    /// Every operator linked to the source, by id.
    pub operators: Vec<SimulatedOperator>,
    /// Contacts nobody could take.
    #[schema(example = 0)]
    pub unassigned: u32,
}

/// An operator who could get the next contact.
#[derive(Debug, Serialize, ToSchema)]
pub struct NextChance {
    #[schema(example = 1)]
    pub operator_id: i64,
    #[schema(example = "Оператор 1")]
    pub operator_name: String,
    #[schema(example = 0.25)]
    pub probability: f64,
}

/// A linked operator in the simulation.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimulatedOperator {
    #[schema(example = 1)]
    pub operator_id: i64,
    #[schema(example = "Оператор 1")]
    pub operator_name: String,
    /// The weight played: the one given, or their own; 0 when given 0.
    #[schema(example = 10.0)]
    pub weight: f64,
    /// weight / Σ weights of the operators who are candidates for the first simulated contact; 0 for the
    /// others.
    #[schema(example = 0.25)]
    pub target_share: f64,
    #[schema(example = 250)]
    pub simulated_count: u32,
    /// simulated_count / the contacts assigned; 0 when none was.
    #[schema(example = 0.25)]
    pub simulated_share: f64,
}

impl SimulateContacts {
    fn scenario(self) -> Result<(Scenario, Option<u64>), AppError> {
        let contacts =
            SimulatedContacts::parse(self.contacts).map_err(|e| invalid("contacts", e))?;
        let strategy = self
            .strategy
            .map(|s| Strategy::parse(&s).map_err(|e| invalid("strategy", e)))
            .transpose()?;
        let capacity = self
            .capacity
            .map(|c| Capacity::parse(&c).map_err(|e| invalid("capacity", e)))
            .transpose()?
            .unwrap_or_default();
        let weights = self
            .weights
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(index, given)| {
                WeightOverride::parse(given.operator_id, given.weight)
                    .map_err(|e| invalid(&format!("weights[{index}].weight"), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let seed = self
            .seed
            .map(|seed| {
                u64::try_from(seed)
                    .map_err(|_| invalid("seed", ValueError("must be 0 or more".to_owned())))
            })
            .transpose()?;
        let scenario = Scenario::new(contacts, strategy, capacity, weights)
            .map_err(|e| invalid("weights", e))?;
        Ok((scenario, seed))
    }
}

/// What if: the distribution of the source's next contact, and what its next `contacts` contacts would do,
/// arriving now one after another — by its strategy or another, with its weights or others, within its
/// operators' free capacity or ignoring it. Who accepts contacts stays as it is now (availability, shifts,
/// time off), and nobody closes a contact meanwhile. smooth_weighted continues the source's own round when
/// the source is simulated as it is (its strategy, no weights given), so the answer is what the real next
/// contacts will get; otherwise it starts a fresh round. Nothing is written, and the server's own random
/// draws are left alone: a `read` key may ask.
#[utoipa::path(
    post, path = "/sources/{id}/simulate", tag = "sources",
    params(("id" = i64, Path, description = "Source id")),
    request_body = SimulateContacts,
    responses(
        (status = 200, description = "What the contacts would do", body = Simulation),
        (status = 404, description = "No such source, or a weight for an operator not linked to it", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn simulate_contacts(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(body): Json<SimulateContacts>,
) -> Result<Json<Simulation>, AppError> {
    let (scenario, seed) = body.scenario()?;
    let view = state.store.simulation_view(id).await?;
    // Up to 100,000 choices: a few milliseconds of work that would otherwise hold up the other requests of
    // this worker thread.
    let simulated = tokio::task::spawn_blocking(move || {
        let source = SourceNow {
            linked: &view.linked,
            strategy: view.source.rules.strategy,
            round: &view.round,
            now: view.now,
        };
        // The one refusal left is a weight for an operator the source has no link to: like the link's own
        // routes, 404.
        let simulation = simulate(&scenario, source, &mut random_generator(seed))
            .map_err(|e| AppError::NotFound(format!("weights: {}", e.0)))?;
        Ok::<_, AppError>((simulation, view))
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?;
    let (simulation, view) = simulated?;
    Ok(Json(answer(simulation, &view)))
}

/// The simulation with each operator's name beside their id.
fn answer(simulation: domain::Simulation, view: &SimulationView) -> Simulation {
    let name_of = |operator_id: i64| {
        view.linked
            .iter()
            .zip(&view.operator_names)
            .find(|(operator, _)| operator.operator_id == operator_id)
            .map(|(_, name)| name.clone())
            .unwrap_or_default()
    };
    Simulation {
        strategy: simulation.strategy.as_str(),
        capacity: simulation.capacity.as_str(),
        contacts: simulation.assigned + simulation.unassigned,
        next: simulation
            .next
            .iter()
            .map(|chance| NextChance {
                operator_id: chance.operator_id,
                operator_name: name_of(chance.operator_id),
                probability: chance.probability,
            })
            .collect(),
        operators: simulation
            .operators
            .iter()
            .map(|operator| SimulatedOperator {
                operator_id: operator.operator_id,
                operator_name: name_of(operator.operator_id),
                weight: operator.weight,
                target_share: operator.target_share,
                simulated_count: operator.simulated_count,
                simulated_share: operator.simulated_share,
            })
            .collect(),
        unassigned: simulation.unassigned,
    }
}
