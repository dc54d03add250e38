use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Caller;
use super::schemas::{Contact, Source, StrategyName, UnavailablePolicyName};
use super::wire::{
    NameString, deserialize_present, deserialize_present_whole_number, deserialize_whole_number,
};
use super::{Json, Pagination, Path, Query, each, invalid, nullable};
use crate::AppState;
use crate::domain::{AcceptTimeout, Name, StickyHours, Strategy, Text, UnavailablePolicy, Weight};
use crate::error::{AppError, ErrorBody};
use crate::store::sources::WorkRules;
use crate::store::{NewSource, SourceChanges, sources};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_source, list_sources))
        .routes(routes!(get_source, update_source, delete_source))
        .routes(routes!(link_operator))
        .routes(routes!(update_weight, unlink_operator))
        .routes(routes!(source_queue))
}

/// The source's queue: its contacts waiting for an operator (no operator, status `active`), oldest first, each
/// with its `queue_position`. They are assigned, in this order, as soon as one of the source's operators has
/// capacity.
#[utoipa::path(
    get, path = "/sources/{id}/queue", tag = "sources",
    params(("id" = i64, Path, description = "Source id"), Pagination),
    responses(
        (status = 200, description = "The waiting contacts, oldest first", body = [Contact]),
        (status = 404, description = "No such source", body = ErrorBody),
        (status = 422, description = "Invalid id, skip or limit", body = ErrorBody),
    )
)]
async fn source_queue(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(pagination): Query<Pagination>,
) -> Result<Json<Vec<Contact>>, AppError> {
    Ok(Json(each(state.store.queue(id, pagination.page()?).await?)))
}

/// A new source.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateSource {
    /// Unique among the sources.
    #[schema(value_type = NameString, example = "Telegram Bot")]
    pub name: String,
    /// At most 10,000 characters; no NUL.
    #[schema(
        example = "Бот в Telegram",
        max_length = 10_000,
        pattern = r"^[^\x00]*$"
    )]
    pub description: Option<String>,
    /// What becomes of an operator's active contacts here when the operator stops taking contacts: `keep`
    /// (the default; not null) or `requeue` (back to this queue, at their age).
    #[serde(default, deserialize_with = "deserialize_present")]
    #[schema(value_type = UnavailablePolicyName, default = "keep")]
    pub on_operator_unavailable: Option<String>,
    /// A returning lead goes to the operator of their contact assigned within this many hours, if that
    /// operator can take it now: 0 (off, the default; not null) to 8,784.
    #[serde(default, deserialize_with = "deserialize_present_whole_number")]
    #[schema(value_type = i64, default = 0, example = 24, minimum = 0, maximum = 8_784)]
    pub sticky_hours: Option<i64>,
    /// Seconds an operator has to accept a contact before it goes to another: 0 (off, the default; not
    /// null) to 86,400.
    #[serde(default, deserialize_with = "deserialize_present_whole_number")]
    #[schema(value_type = i64, default = 0, example = 120, minimum = 0, maximum = 86_400)]
    pub accept_timeout_secs: Option<i64>,
    /// How the source chooses among its candidates: `weighted_random` (the default; not null),
    /// `smooth_weighted` or `least_loaded`.
    #[serde(default, deserialize_with = "deserialize_present")]
    #[schema(value_type = StrategyName, default = "weighted_random")]
    pub strategy: Option<String>,
}

/// Changes to a source; absent fields keep their value, `"description": null` clears the description.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateSource {
    #[schema(value_type = Option<NameString>)]
    pub name: Option<String>,
    /// At most 10,000 characters; no NUL.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 10_000, pattern = r"^[^\x00]*$")]
    pub description: Option<Option<String>>,
    /// `keep` or `requeue` (not null). Applies from the next time an operator stops taking contacts.
    #[serde(default, deserialize_with = "deserialize_present")]
    #[schema(value_type = UnavailablePolicyName)]
    pub on_operator_unavailable: Option<String>,
    /// 0 (off) to 8,784 (not null).
    #[serde(default, deserialize_with = "deserialize_present_whole_number")]
    #[schema(value_type = i64, minimum = 0, maximum = 8_784)]
    pub sticky_hours: Option<i64>,
    /// 0 (off) to 86,400 (not null). Applies to contacts assigned from then on.
    #[serde(default, deserialize_with = "deserialize_present_whole_number")]
    #[schema(value_type = i64, minimum = 0, maximum = 86_400)]
    pub accept_timeout_secs: Option<i64>,
    /// `weighted_random`, `smooth_weighted` or `least_loaded` (not null). Applies from the next choice; a
    /// new strategy starts smooth_weighted's round afresh.
    #[serde(default, deserialize_with = "deserialize_present")]
    #[schema(value_type = StrategyName)]
    pub strategy: Option<String>,
}

fn parse_policy(raw: Option<&str>) -> Result<Option<UnavailablePolicy>, AppError> {
    raw.map(|p| UnavailablePolicy::parse(p).map_err(|e| invalid("on_operator_unavailable", e)))
        .transpose()
}

fn parse_strategy(raw: Option<&str>) -> Result<Option<Strategy>, AppError> {
    raw.map(|s| Strategy::parse(s).map_err(|e| invalid("strategy", e)))
        .transpose()
}

fn parse_sticky_hours(raw: Option<i64>) -> Result<Option<StickyHours>, AppError> {
    raw.map(|h| StickyHours::parse(h).map_err(|e| invalid("sticky_hours", e)))
        .transpose()
}

fn parse_accept_timeout(raw: Option<i64>) -> Result<Option<AcceptTimeout>, AppError> {
    raw.map(|t| AcceptTimeout::parse(t).map_err(|e| invalid("accept_timeout_secs", e)))
        .transpose()
}

/// An operator to add to a source.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LinkOperator {
    #[serde(deserialize_with = "deserialize_whole_number")]
    #[schema(example = 1)]
    pub operator_id: i64,
    /// Above 0, at most 1,000,000, fractions allowed (default 1; not null).
    #[serde(default, deserialize_with = "deserialize_present")]
    #[schema(value_type = f64, default = 1.0, example = 10.0, exclusive_minimum = 0.0, maximum = 1_000_000.0)]
    pub weight: Option<f64>,
}

/// A new weight.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateWeight {
    /// Above 0, at most 1,000,000, fractions allowed.
    #[schema(example = 30.0, exclusive_minimum = 0.0, maximum = 1_000_000.0)]
    pub weight: f64,
}

fn parse_description(raw: Option<&str>) -> Result<Option<Text>, AppError> {
    raw.map(|d| Text::parse(d).map_err(|e| invalid("description", e)))
        .transpose()
}

fn parse_weight(raw: f64) -> Result<Weight, AppError> {
    Weight::parse(raw).map_err(|e| invalid("weight", e))
}

/// Create a source.
#[utoipa::path(
    post, path = "/sources", tag = "sources",
    request_body = CreateSource,
    responses(
        (status = 201, description = "Created", body = Source),
        (status = 409, description = "A source with this name exists", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn create_source(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<CreateSource>,
) -> Result<(StatusCode, Json<Source>), AppError> {
    let new = NewSource {
        name: Name::parse(&body.name).map_err(|e| invalid("name", e))?,
        description: parse_description(body.description.as_deref())?,
        rules: WorkRules {
            on_operator_unavailable: parse_policy(body.on_operator_unavailable.as_deref())?
                .unwrap_or_default(),
            sticky_hours: parse_sticky_hours(body.sticky_hours)?.unwrap_or_default(),
            accept_timeout: parse_accept_timeout(body.accept_timeout_secs)?.unwrap_or_default(),
            strategy: parse_strategy(body.strategy.as_deref())?.unwrap_or_default(),
        },
    };
    let source = state.store.create_source(new, caller.actor()).await?;
    tracing::info!(source_id = source.id, "source created");
    Ok((StatusCode::CREATED, Json(source.into())))
}

/// List sources, oldest first.
#[utoipa::path(
    get, path = "/sources", tag = "sources",
    params(Pagination),
    responses(
        (status = 200, description = "Sources", body = [Source]),
        (status = 422, description = "Invalid skip or limit", body = ErrorBody),
    )
)]
async fn list_sources(
    State(state): State<AppState>,
    Query(pagination): Query<Pagination>,
) -> Result<Json<Vec<Source>>, AppError> {
    Ok(Json(each(
        state.store.list_sources(pagination.page()?).await?,
    )))
}

/// Get a source with its operators and their weights.
#[utoipa::path(
    get, path = "/sources/{id}", tag = "sources",
    params(("id" = i64, Path, description = "Source id")),
    responses(
        (status = 200, description = "The source and its weights", body = SourceDetail),
        (status = 404, description = "No such source", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
    )
)]
async fn get_source(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<SourceDetail>, AppError> {
    Ok(Json(state.store.get_source(id).await?.into()))
}

/// Rename a source, or change its description or its work rules.
#[utoipa::path(
    patch, path = "/sources/{id}", tag = "sources",
    params(("id" = i64, Path, description = "Source id")),
    request_body = UpdateSource,
    responses(
        (status = 200, description = "The changed source", body = Source),
        (status = 404, description = "No such source", body = ErrorBody),
        (status = 409, description = "Another source has this name", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn update_source(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Json(body): Json<UpdateSource>,
) -> Result<Json<Source>, AppError> {
    let changes = SourceChanges {
        name: body
            .name
            .map(|name| Name::parse(&name).map_err(|e| invalid("name", e)))
            .transpose()?,
        description: body
            .description
            .map(|d| parse_description(d.as_deref()))
            .transpose()?,
        on_operator_unavailable: parse_policy(body.on_operator_unavailable.as_deref())?,
        sticky_hours: parse_sticky_hours(body.sticky_hours)?,
        accept_timeout: parse_accept_timeout(body.accept_timeout_secs)?,
        strategy: parse_strategy(body.strategy.as_deref())?,
    };
    let source = state
        .store
        .update_source(id, changes, caller.actor())
        .await?;
    Ok(Json(source.into()))
}

/// Delete (retire) a source. It disappears from the API, takes no new contacts, and its weights are removed;
/// its contacts are kept as they are — their operators, statuses and history — and still listed by
/// `GET /contacts/?source_id=`. Its name becomes free for a new source.
#[utoipa::path(
    delete, path = "/sources/{id}", tag = "sources",
    params(("id" = i64, Path, description = "Source id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such source", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
    )
)]
async fn delete_source(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    state.store.delete_source(id, caller.actor()).await?;
    tracing::info!(source_id = id, "source deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Add an operator to a source with a weight.
#[utoipa::path(
    post, path = "/sources/{id}/operators", tag = "sources",
    params(("id" = i64, Path, description = "Source id")),
    request_body = LinkOperator,
    responses(
        (status = 201, description = "Linked", body = OperatorWeight),
        (status = 404, description = "No such source or operator", body = ErrorBody),
        (status = 409, description = "The operator is already linked to the source", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid weight", body = ErrorBody),
    )
)]
async fn link_operator(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(source_id): Path<i64>,
    Json(body): Json<LinkOperator>,
) -> Result<(StatusCode, Json<OperatorWeight>), AppError> {
    let weight = match body.weight {
        Some(raw) => parse_weight(raw)?,
        None => Weight::DEFAULT,
    };
    let link = state
        .store
        .link_operator(source_id, body.operator_id, weight, caller.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(link.into())))
}

/// Change an operator's weight on a source.
#[utoipa::path(
    patch, path = "/sources/{id}/operators/{operator_id}", tag = "sources",
    params(
        ("id" = i64, Path, description = "Source id"),
        ("operator_id" = i64, Path, description = "Operator id"),
    ),
    request_body = UpdateWeight,
    responses(
        (status = 200, description = "The new weight", body = OperatorWeight),
        (status = 404, description = "The operator is not linked to the source", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid weight", body = ErrorBody),
    )
)]
async fn update_weight(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((source_id, operator_id)): Path<(i64, i64)>,
    Json(body): Json<UpdateWeight>,
) -> Result<Json<OperatorWeight>, AppError> {
    let weight = parse_weight(body.weight)?;
    Ok(Json(
        state
            .store
            .update_weight(source_id, operator_id, weight, caller.actor())
            .await?
            .into(),
    ))
}

/// Remove an operator from a source. Their contacts from it stay assigned to them.
#[utoipa::path(
    delete, path = "/sources/{id}/operators/{operator_id}", tag = "sources",
    params(
        ("id" = i64, Path, description = "Source id"),
        ("operator_id" = i64, Path, description = "Operator id"),
    ),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 404, description = "The operator is not linked to the source", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
    )
)]
async fn unlink_operator(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((source_id, operator_id)): Path<(i64, i64)>,
) -> Result<StatusCode, AppError> {
    state
        .store
        .unlink_operator(source_id, operator_id, caller.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An operator's weight (competence) on a source.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OperatorWeight {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = 1)]
    pub source_id: i64,
    #[schema(example = 1)]
    pub operator_id: i64,
    /// Share of the source's contacts is weight / sum of the weights of the operators free at the time.
    #[schema(example = 10.0)]
    pub weight: f64,
}

/// A weight with the operator's name beside it, as `GET /sources/{id}` lists them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NamedOperatorWeight {
    #[serde(flatten)]
    pub weight: OperatorWeight,
    #[schema(example = "Оператор 1")]
    pub operator_name: String,
}

/// A source with its distribution settings.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SourceDetail {
    #[serde(flatten)]
    pub source: Source,
    pub operator_weights: Vec<NamedOperatorWeight>,
}

impl From<sources::OperatorWeight> for OperatorWeight {
    fn from(weight: sources::OperatorWeight) -> Self {
        Self {
            id: weight.id,
            source_id: weight.source_id,
            operator_id: weight.operator_id,
            weight: weight.weight,
        }
    }
}

impl From<sources::NamedOperatorWeight> for NamedOperatorWeight {
    fn from(named: sources::NamedOperatorWeight) -> Self {
        Self {
            weight: named.weight.into(),
            operator_name: named.operator_name,
        }
    }
}

impl From<sources::SourceDetail> for SourceDetail {
    fn from(detail: sources::SourceDetail) -> Self {
        Self {
            source: detail.source.into(),
            operator_weights: each(detail.operator_weights),
        }
    }
}
