//! An operator's time off: periods in which they take no contacts, whatever their schedule says.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Caller;
use super::wire::serialize_timestamp;
use super::{Json, Path, each, invalid};
use crate::AppState;
use crate::domain::{Period, Text};
use crate::error::{AppError, ErrorBody};
use crate::store::{self, NewTimeOff};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_time_off, list_time_off))
        .routes(routes!(delete_time_off))
}

/// A period of time off to add.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateTimeOff {
    /// RFC 3339: when it starts.
    #[schema(value_type = String, format = DateTime, example = "2026-12-24T00:00:00+01:00")]
    pub starts_at: DateTime<Utc>,
    /// RFC 3339: when it ends (not included); after `starts_at`.
    #[schema(value_type = String, format = DateTime, example = "2026-12-27T00:00:00+01:00")]
    pub ends_at: DateTime<Utc>,
    /// At most 10,000 characters; no NUL.
    #[schema(example = "Holidays", max_length = 10_000, pattern = r"^[^\x00]*$")]
    pub reason: Option<String>,
}

/// A period in which the operator takes no contacts.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimeOff {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = 1)]
    pub operator_id: i64,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-12-23T23:00:00.000000Z")]
    pub starts_at: DateTime<Utc>,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-12-26T23:00:00.000000Z")]
    pub ends_at: DateTime<Utc>,
    #[schema(example = "Holidays")]
    pub reason: Option<String>,
}

impl From<store::TimeOff> for TimeOff {
    fn from(time_off: store::TimeOff) -> Self {
        Self {
            id: time_off.id,
            operator_id: time_off.operator_id,
            starts_at: time_off.starts_at,
            ends_at: time_off.ends_at,
            reason: time_off.reason,
        }
    }
}

impl CreateTimeOff {
    fn parse(self) -> Result<NewTimeOff, AppError> {
        Ok(NewTimeOff {
            period: Period::new(self.starts_at, self.ends_at)
                .map_err(|e| AppError::Unprocessable(format!("ends_at: {e}")))?,
            reason: self
                .reason
                .map(|r| Text::parse(&r).map_err(|e| invalid("reason", e)))
                .transpose()?,
        })
    }
}

/// Add a period of time off to an operator.
#[utoipa::path(
    post, path = "/operators/{id}/time-off", tag = "operators",
    params(("id" = i64, Path, description = "Operator id")),
    request_body = CreateTimeOff,
    responses(
        (status = 201, description = "Created", body = TimeOff),
        (status = 404, description = "No such operator", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field, or ends_at not after starts_at", body = ErrorBody),
    )
)]
async fn create_time_off(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Json(body): Json<CreateTimeOff>,
) -> Result<(StatusCode, Json<TimeOff>), AppError> {
    let time_off = state
        .store
        .create_time_off(id, body.parse()?, caller.actor())
        .await?;
    tracing::info!(
        operator_id = id,
        time_off_id = time_off.id,
        "time off added"
    );
    Ok((StatusCode::CREATED, Json(time_off.into())))
}

/// An operator's time off, earliest first.
#[utoipa::path(
    get, path = "/operators/{id}/time-off", tag = "operators",
    params(("id" = i64, Path, description = "Operator id")),
    responses(
        (status = 200, description = "The operator's time off", body = [TimeOff]),
        (status = 404, description = "No such operator", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
    )
)]
async fn list_time_off(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<TimeOff>>, AppError> {
    Ok(Json(each(state.store.list_time_off(id).await?)))
}

/// Remove a period of time off. Should the operator take contacts again at once, their sources' queues drain.
#[utoipa::path(
    delete, path = "/operators/{id}/time-off/{time_off_id}", tag = "operators",
    params(
        ("id" = i64, Path, description = "Operator id"),
        ("time_off_id" = i64, Path, description = "Time off id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such operator or time off", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
    )
)]
async fn delete_time_off(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, time_off_id)): Path<(i64, i64)>,
) -> Result<StatusCode, AppError> {
    state
        .store
        .delete_time_off(id, time_off_id, caller.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
