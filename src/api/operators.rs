use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Caller;
use super::schemas::{AvailabilityName, Operator, Shift};
use super::wire::{
    NameString, TimeZoneString, deserialize_optional_whole_number, deserialize_present,
    deserialize_present_whole_number,
};
use super::{Json, JsonObject, Pagination, Path, Query, each, invalid, nullable};
use crate::AppState;
use crate::domain::access::OWN_OPERATOR_FIELDS;
use crate::domain::{self, Availability, MaxLoad, Name, Schedule, TimeZoneName};
use crate::error::{AppError, ErrorBody};
use crate::store::{NewOperator, OperatorChanges};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_operator, list_operators))
        .routes(routes!(get_operator, update_operator, delete_operator))
        .routes(routes!(get_operator_stats))
        .merge(super::time_off::router())
}

/// A new operator.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateOperator {
    #[schema(value_type = NameString, example = "Оператор 1")]
    pub name: String,
    /// Whether the operator takes new contacts (default true; not null).
    #[serde(default, deserialize_with = "deserialize_present")]
    #[schema(value_type = bool, default = true)]
    pub is_active: Option<bool>,
    /// Most `active` contacts given to the operator automatically: 0 to 1,000,000 (default 10; not null).
    #[serde(default, deserialize_with = "deserialize_present_whole_number")]
    #[schema(value_type = i64, default = 10, example = 10, minimum = 0, maximum = 1_000_000)]
    pub max_load: Option<i64>,
    /// The operator's own switch (default `available`; not null).
    #[serde(default, deserialize_with = "deserialize_present")]
    #[schema(value_type = AvailabilityName, default = "available")]
    pub availability: Option<String>,
    /// RFC 3339: when an away operator is available again by themselves. Only kept with `away`; one in
    /// the past means available now.
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-11-25T14:00:00Z")]
    pub away_until: Option<DateTime<Utc>>,
    /// IANA time-zone name (default `UTC`; not null).
    #[serde(default, deserialize_with = "deserialize_present")]
    #[schema(value_type = TimeZoneString, default = "UTC")]
    pub timezone: Option<String>,
    /// Weekly working hours; `null` or absent: always on shift.
    pub schedule: Option<Vec<Shift>>,
}

/// Changes to an operator: only the fields given change. A field given as `null` keeps its value too, as
/// the reference implementation reads it.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateOperator {
    #[schema(value_type = Option<NameString>)]
    pub name: Option<String>,
    pub is_active: Option<bool>,
    #[serde(default, deserialize_with = "deserialize_optional_whole_number")]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub max_load: Option<i64>,
    /// The operator's own switch (`null` keeps it). Switching to `available` or `offline` clears
    /// `away_until` unless it is given too.
    #[schema(value_type = Option<AvailabilityName>)]
    pub availability: Option<String>,
    /// RFC 3339, or `null` to clear it: when an away operator is available again by themselves. One in the
    /// past means available now.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-11-25T14:00:00Z")]
    pub away_until: Option<Option<DateTime<Utc>>>,
    /// IANA time-zone name (`null` keeps it).
    #[schema(value_type = Option<TimeZoneString>)]
    pub timezone: Option<String>,
    /// Weekly working hours; `null`: always on shift.
    #[serde(default, deserialize_with = "nullable")]
    pub schedule: Option<Option<Vec<Shift>>>,
}

/// An operator's load and what they have handled.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorStats {
    pub operator_id: i64,
    pub operator_name: String,
    pub is_active: bool,
    /// Contacts in status `active` assigned to the operator.
    pub active_contacts_count: i64,
    pub max_load: i64,
    /// active_contacts_count / max_load × 100, two decimals; 0 when max_load is 0.
    #[schema(example = 40.0)]
    pub utilization_percent: f64,
    /// All contacts assigned to the operator, in any status.
    pub total_contacts: i64,
    /// Contacts per status.
    pub contacts_by_status: BTreeMap<String, i64>,
    /// Contacts per source.
    pub contacts_by_source: Vec<OperatorSourceStats>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorSourceStats {
    pub source_id: i64,
    pub source_name: String,
    pub total_contacts: i64,
    pub active_contacts: i64,
}

fn refused(field: &str, error: String) -> AppError {
    AppError::Unprocessable(format!("{field}: {error}"))
}

fn parse_availability(raw: &str) -> Result<Availability, AppError> {
    Availability::parse(raw).map_err(|e| refused("availability", e))
}

fn parse_timezone(raw: &str) -> Result<TimeZoneName, AppError> {
    TimeZoneName::parse(raw).map_err(|e| refused("timezone", e))
}

fn parse_schedule(shifts: &[Shift]) -> Result<Schedule, AppError> {
    shifts
        .iter()
        .enumerate()
        .map(|(index, shift)| {
            domain::Shift::parse(&shift.spelling())
                .map_err(|(field, e)| refused(&format!("schedule[{index}].{field}"), e))
        })
        .collect::<Result<_, _>>()
        .map(Schedule)
}

impl CreateOperator {
    fn parse(self) -> Result<NewOperator, AppError> {
        let availability = match &self.availability {
            Some(raw) => parse_availability(raw)?,
            None => Availability::default(),
        };
        Ok(NewOperator {
            name: Name::parse(&self.name).map_err(|e| invalid("name", e))?,
            is_active: self.is_active.unwrap_or(true),
            max_load: match self.max_load {
                Some(value) => MaxLoad::parse(value).map_err(|e| invalid("max_load", e))?,
                None => MaxLoad::DEFAULT,
            },
            availability,
            away_until: self
                .away_until
                .filter(|_| availability == Availability::Away),
            timezone: match &self.timezone {
                Some(raw) => parse_timezone(raw)?,
                None => TimeZoneName::UTC,
            },
            schedule: self.schedule.as_deref().map(parse_schedule).transpose()?,
        })
    }
}

impl UpdateOperator {
    fn parse(self) -> Result<OperatorChanges, AppError> {
        let availability = self
            .availability
            .as_deref()
            .map(parse_availability)
            .transpose()?;
        Ok(OperatorChanges {
            name: self
                .name
                .map(|name| Name::parse(&name).map_err(|e| invalid("name", e)))
                .transpose()?,
            is_active: self.is_active,
            max_load: self
                .max_load
                .map(|value| MaxLoad::parse(value).map_err(|e| invalid("max_load", e)))
                .transpose()?,
            availability,
            away_until: match (availability, self.away_until) {
                (_, Some(given)) => Some(given),
                (Some(Availability::Available | Availability::Offline), None) => Some(None),
                _ => None,
            },
            timezone: self.timezone.as_deref().map(parse_timezone).transpose()?,
            schedule: self
                .schedule
                .map(|given| given.as_deref().map(parse_schedule).transpose())
                .transpose()?,
        })
    }
}

/// Create an operator.
#[utoipa::path(
    post, path = "/operators", tag = "operators",
    request_body = CreateOperator,
    responses(
        (status = 201, description = "Created", body = Operator),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn create_operator(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<CreateOperator>,
) -> Result<(StatusCode, Json<Operator>), AppError> {
    let operator = state
        .store
        .create_operator(body.parse()?, caller.actor())
        .await?;
    tracing::info!(operator_id = operator.operator.id, "operator created");
    Ok((StatusCode::CREATED, Json(operator.into())))
}

/// List operators, oldest first.
#[utoipa::path(
    get, path = "/operators", tag = "operators",
    params(Pagination),
    responses(
        (status = 200, description = "Operators", body = [Operator]),
        (status = 422, description = "Invalid skip or limit", body = ErrorBody),
    )
)]
async fn list_operators(
    State(state): State<AppState>,
    Query(pagination): Query<Pagination>,
) -> Result<Json<Vec<Operator>>, AppError> {
    Ok(Json(each(
        state.store.list_operators(pagination.page()?).await?,
    )))
}

/// Get an operator. An `operator` key gets only its own operator (any other: 403).
#[utoipa::path(
    get, path = "/operators/{id}", tag = "operators",
    params(("id" = i64, Path, description = "Operator id")),
    responses(
        (status = 200, description = "The operator", body = Operator),
        (status = 404, description = "No such operator", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
    )
)]
async fn get_operator(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Result<Json<Operator>, AppError> {
    caller.refuse_other_operator(id)?;
    Ok(Json(state.store.get_operator(id).await?.into()))
}

/// Change an operator's name, activity, max_load, availability or working hours. Lowering max_load below the
/// current load takes nothing away from the operator; they just get no new contacts until they are below it.
/// A change that lets them take contacts drains their sources' queues at once.
///
/// An `operator` key may change only its own operator, and only `availability` and `away_until`: any other
/// field in the body (even `null`) is refused with 403 naming it.
#[utoipa::path(
    patch, path = "/operators/{id}", tag = "operators",
    params(("id" = i64, Path, description = "Operator id")),
    request_body = UpdateOperator,
    responses(
        (status = 200, description = "The changed operator", body = Operator),
        (status = 404, description = "No such operator", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn update_operator(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    body: JsonObject,
) -> Result<Json<Operator>, AppError> {
    caller.refuse_other_operator(id)?;
    caller.refuse_fields_outside(body.fields(), OWN_OPERATOR_FIELDS)?;
    let changes = body.parse::<UpdateOperator>()?.parse()?;
    let operator = state
        .store
        .update_operator(id, changes, caller.actor())
        .await?;
    Ok(Json(operator.into()))
}

/// Delete an operator. Their weights go with them; their contacts stay, with `operator_id: null` and the status
/// they had. Their active contacts go back to their sources' queues (by age, so usually to the front) and are
/// assigned at once to the operators left, as far as capacity allows.
#[utoipa::path(
    delete, path = "/operators/{id}", tag = "operators",
    params(("id" = i64, Path, description = "Operator id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such operator", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
    )
)]
async fn delete_operator(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    state.store.delete_operator(id, caller.actor()).await?;
    tracing::info!(operator_id = id, "operator deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// An operator's current load, utilisation, and contacts by status and by source.
#[utoipa::path(
    get, path = "/operators/{id}/stats", tag = "stats",
    params(("id" = i64, Path, description = "Operator id")),
    responses(
        (status = 200, description = "The operator's stats", body = OperatorStats),
        (status = 404, description = "No such operator", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
    )
)]
async fn get_operator_stats(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<OperatorStats>, AppError> {
    let (operator, tallies) = state.store.operator_tallies(id).await?;
    let mut contacts_by_status = BTreeMap::new();
    let mut contacts_by_source: Vec<OperatorSourceStats> = Vec::new();
    for tally in tallies {
        *contacts_by_status.entry(tally.status.clone()).or_insert(0) += tally.contacts;
        let active = if tally.status == crate::domain::Status::ACTIVE {
            tally.contacts
        } else {
            0
        };
        match contacts_by_source.last_mut() {
            Some(last) if last.source_id == tally.source_id => {
                last.total_contacts += tally.contacts;
                last.active_contacts += active;
            }
            _ => contacts_by_source.push(OperatorSourceStats {
                source_id: tally.source_id,
                source_name: tally.source_name,
                total_contacts: tally.contacts,
                active_contacts: active,
            }),
        }
    }
    Ok(Json(OperatorStats {
        operator_id: operator.id,
        utilization_percent: utilization_percent(operator.active_load, operator.max_load),
        operator_name: operator.name,
        is_active: operator.is_active,
        active_contacts_count: operator.active_load,
        max_load: operator.max_load,
        total_contacts: contacts_by_status.values().sum(),
        contacts_by_status,
        contacts_by_source,
    }))
}

fn utilization_percent(active: i64, max_load: i64) -> f64 {
    if max_load == 0 {
        return 0.0;
    }
    (active as f64 / max_load as f64 * 10_000.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn utilization_has_two_decimals_and_is_zero_without_capacity() {
        assert_eq!(super::utilization_percent(1, 3), 33.33);
        assert_eq!(super::utilization_percent(2, 3), 66.67);
        assert_eq!(super::utilization_percent(5, 0), 0.0);
    }
}
