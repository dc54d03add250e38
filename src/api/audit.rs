//! The audit trail: who changed what, when, with the values before and after. Admin keys only.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{self, ObjectBuilder};
use utoipa::{IntoParams, OpenApi, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::serialize_timestamp;
use super::{Json, Query, each, time_parameter, to_page};
use crate::AppState;
use crate::error::{AppError, ErrorBody};
use crate::store::AuditFilter;
use crate::store::audit::{self, ACTIONS, TARGET_TYPES};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(QuerySchemas::openapi()).routes(routes!(list_audit))
}

/// The schemas only query parameters refer to, which the routes do not collect.
#[derive(OpenApi)]
#[openapi(components(schemas(AuditAction, AuditTargetType)))]
struct QuerySchemas;

/// What was done: `operator.created`, `operator.updated`, `operator.deleted`, `source.created`,
/// `source.updated`, `source.deleted`, `weight.set`, `weight.updated`, `weight.removed`, `webhook.created`,
/// `webhook.deleted`, `key.created`, `key.revoked`, `contact.assigned_manually`.
pub struct AuditAction;

impl PartialSchema for AuditAction {
    fn schema() -> RefOr<schema::Schema> {
        ObjectBuilder::new()
            .schema_type(schema::Type::String)
            .enum_values(Some(ACTIONS))
            .into()
    }
}

impl ToSchema for AuditAction {}

/// What a change was made to. A `weight` is an operator's link to a source (its id is the weight's `id`).
pub struct AuditTargetType;

impl PartialSchema for AuditTargetType {
    fn schema() -> RefOr<schema::Schema> {
        ObjectBuilder::new()
            .schema_type(schema::Type::String)
            .enum_values(Some(TARGET_TYPES))
            .into()
    }
}

impl ToSchema for AuditTargetType {}

/// Which entries to list; absent filters do not filter. Every value is checked, and a bad one is a 422 naming
/// its parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only changes to targets of this type.
    #[param(value_type = Option<AuditTargetType>)]
    pub target_type: Option<String>,
    /// Only changes to the target with this id (with `target_type`: to that one target).
    #[param(value_type = Option<i64>)]
    pub target_id: Option<String>,
    /// Only changes made with this API key.
    #[param(value_type = Option<i64>)]
    pub key_id: Option<String>,
    /// Only changes made at or after this time (RFC 3339, e.g. `2026-11-25T00:00:00Z`; a `+` in an offset
    /// must be sent as `%2B`).
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    /// Only changes made before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<String>,
    /// Only changes of this kind.
    #[param(value_type = Option<AuditAction>)]
    pub action: Option<String>,
    /// Rows to pass over (default 0).
    #[param(value_type = Option<i64>, minimum = 0)]
    pub skip: Option<String>,
    /// Rows to return at most (default 100, at most 1000).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

/// One change an admin made, through the API or with `leadrouter keys`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    #[schema(example = 12)]
    pub id: i64,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T16:38:00.123456Z")]
    pub at: DateTime<Utc>,
    /// The API key that made the change; `null` while the API was open (no key existed), and for the CLI.
    #[schema(example = 3)]
    pub key_id: Option<i64>,
    /// Who made the change: `key <id>`, `open` (no key existed yet) or `cli` (`leadrouter keys`).
    #[schema(example = "key 3")]
    pub actor: String,
    #[schema(value_type = AuditAction, example = "operator.updated")]
    pub action: String,
    #[schema(value_type = AuditTargetType, example = "operator")]
    pub target_type: String,
    #[schema(example = 7)]
    pub target_id: i64,
    /// The target's values before the change; `null` for a creation. Secrets (a webhook's, a key's token)
    /// are never kept.
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// The target's values after the change; `null` for a deletion. A manual assignment's also says whether
    /// it was forced.
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}

impl From<audit::AuditEntry> for AuditEntry {
    fn from(entry: audit::AuditEntry) -> Self {
        Self {
            id: entry.id,
            at: entry.at,
            key_id: entry.key_id,
            actor: entry.actor,
            action: entry.action,
            target_type: entry.target_type,
            target_id: entry.target_id,
            before: entry.before,
            after: entry.after,
        }
    }
}

fn refused(field: &str, why: impl std::fmt::Display) -> AppError {
    AppError::Unprocessable(format!("{field}: {why}"))
}

/// An optional integer parameter.
fn integer(field: &str, raw: Option<&str>) -> Result<Option<i64>, AppError> {
    raw.map(|raw| {
        raw.trim()
            .parse::<i64>()
            .map_err(|_| refused(field, format!("{raw:?} is not an integer")))
    })
    .transpose()
}

/// An optional parameter that must be one of `known`.
fn one_of(
    field: &str,
    raw: Option<String>,
    known: &[&str],
    what: &str,
) -> Result<Option<String>, AppError> {
    match raw {
        Some(raw) if !known.contains(&raw.as_str()) => Err(refused(
            field,
            format!("{raw:?} is not {what} ({})", known.join(", ")),
        )),
        other => Ok(other),
    }
}

impl AuditQuery {
    fn parse(self) -> Result<(AuditFilter, crate::store::Page), AppError> {
        let page = to_page(
            integer("skip", self.skip.as_deref())?,
            integer("limit", self.limit.as_deref())?,
        )?;
        let filter = AuditFilter {
            target_type: one_of(
                "target_type",
                self.target_type,
                &TARGET_TYPES,
                "a target type",
            )?,
            target_id: integer("target_id", self.target_id.as_deref())?,
            key_id: integer("key_id", self.key_id.as_deref())?,
            action: one_of("action", self.action, &ACTIONS, "an action")?,
            since: time_parameter("since", self.since.as_deref())?,
            until: time_parameter("until", self.until.as_deref())?,
        };
        Ok((filter, page))
    }
}

/// The audit trail, newest first.
///
/// Every change made to operators, sources, weights, webhooks and API keys, and every manual assignment of a
/// contact — through the API or with `leadrouter keys` — with its time, who made it, and the target's values
/// before and after (never a secret). Contacts posted by bots and status changes are not in it (a contact's
/// history has them). Entries are kept for `LEADROUTER_AUDIT_RETENTION_DAYS`. Admin keys only.
#[utoipa::path(
    get, path = "/audit", tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "Entries, newest first", body = [AuditEntry]),
        (status = 422, description = "Invalid parameter (the detail names it)", body = ErrorBody),
    )
)]
async fn list_audit(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, AppError> {
    let (filter, page) = query.parse()?;
    Ok(Json(each(state.store.audit_log(filter, page).await?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_parameters_name_their_field() {
        let query = |target_type: Option<&str>, since: Option<&str>, limit: Option<&str>| {
            AuditQuery {
                target_type: target_type.map(str::to_owned),
                target_id: None,
                key_id: None,
                since: since.map(str::to_owned),
                until: None,
                action: None,
                skip: None,
                limit: limit.map(str::to_owned),
            }
            .parse()
            .err()
            .map(|error| error.to_string())
        };
        assert!(query(Some("lead"), None, None).is_some_and(|e| e.starts_with("target_type: ")));
        assert!(query(None, Some("yesterday"), None).is_some_and(|e| e.starts_with("since: ")));
        assert!(query(None, None, Some("many")).is_some_and(|e| e.starts_with("limit: ")));
        assert!(query(None, None, Some("0")).is_some_and(|e| e.starts_with("limit: ")));
        assert!(query(Some("operator"), Some("2026-11-25T16:38:00Z"), None).is_none());
    }
}
