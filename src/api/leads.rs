use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schemas::{Contact, Lead};
use super::wire::{EmailString, PhoneString, ShortTextString};
use super::{Json, Path, Query, each, invalid, to_page};
use crate::AppState;
use crate::domain::LeadIdentity;
use crate::domain::identity::RawLeadIdentity;
use crate::error::{AppError, ErrorBody};
use crate::store::{LeadFilter, leads};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(QuerySchemas::openapi())
        .routes(routes!(list_leads))
        .routes(routes!(get_lead))
}

/// The schemas only query parameters refer to, which the routes do not collect.
#[derive(OpenApi)]
#[openapi(components(schemas(ShortTextString, PhoneString, EmailString)))]
struct QuerySchemas;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeadQuery {
    #[param(value_type = Option<ShortTextString>)]
    pub external_id: Option<String>,
    /// Normalised as on input: `8 999 123-45-67` finds `+79991234567`.
    #[param(value_type = Option<PhoneString>)]
    pub phone: Option<String>,
    /// Normalised as on input (trimmed, lower-cased).
    #[param(value_type = Option<EmailString>)]
    pub email: Option<String>,
    /// Rows to pass over (default 0).
    #[param(minimum = 0)]
    pub skip: Option<i64>,
    /// Rows to return at most (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// List leads, newest first, filtered by identifier.
#[utoipa::path(
    get, path = "/leads", tag = "leads",
    params(LeadQuery),
    responses(
        (status = 200, description = "Leads", body = [Lead]),
        (status = 422, description = "Invalid parameter (the detail names it)", body = ErrorBody),
    )
)]
async fn list_leads(
    State(state): State<AppState>,
    Query(query): Query<LeadQuery>,
) -> Result<Json<Vec<Lead>>, AppError> {
    let page = to_page(query.skip, query.limit)?;
    let raw = RawLeadIdentity {
        external_id: query.external_id.as_deref(),
        phone: query.phone.as_deref(),
        email: query.email.as_deref(),
        name: None,
    };
    let identity =
        LeadIdentity::parse(raw, state.phone_region, "").map_err(|e| invalid(e.field, e.error))?;
    let filter = LeadFilter {
        external_id: identity.external_id,
        phone: identity.phone.map(|p| p.as_str().to_owned()),
        email: identity.email.map(|e| e.as_str().to_owned()),
    };
    Ok(Json(each(state.store.list_leads(&filter, page).await?)))
}

/// Get a lead with their contacts through every source, newest first (the latest 1,000; page through older
/// ones with `GET /contacts/?lead_id=`).
#[utoipa::path(
    get, path = "/leads/{id}", tag = "leads",
    params(("id" = i64, Path, description = "Lead id")),
    responses(
        (status = 200, description = "The lead and their contacts", body = LeadDetail),
        (status = 404, description = "No such lead", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
    )
)]
async fn get_lead(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<LeadDetail>, AppError> {
    Ok(Json(state.store.get_lead(id).await?.into()))
}

/// A lead with all its contacts, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeadDetail {
    pub lead: Lead,
    pub contacts: Vec<Contact>,
}

impl From<leads::LeadDetail> for LeadDetail {
    fn from(detail: leads::LeadDetail) -> Self {
        Self {
            lead: detail.lead.into(),
            contacts: each(detail.contacts),
        }
    }
}
