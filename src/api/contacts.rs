use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Json, Path, Query, invalid, to_page};
use crate::AppState;
use crate::domain::identity::RawLeadIdentity;
use crate::domain::{LeadIdentity, Status, Text};
use crate::error::{AppError, ErrorBody};
use crate::model::Contact;
use crate::store::ContactFilter;
use crate::store::ops::NewContact;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_contact, list_contacts))
        .routes(routes!(get_contact))
        .routes(routes!(set_contact_status))
}

/// A lead's message through a source. The lead is found by `lead_external_id`, then `lead_phone`, then
/// `lead_email` (the first that matches wins), or created; blank identifiers count as absent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateContact {
    #[schema(example = 1)]
    pub source_id: i64,
    /// The lead's id in the source's system; at most 255 characters.
    #[schema(example = "user123")]
    pub lead_external_id: Option<String>,
    /// Any common notation; stored in E.164. Numbers without a country code are read in the configured
    /// default region (RU unless set otherwise).
    #[schema(example = "+79991234567")]
    pub lead_phone: Option<String>,
    /// Stored trimmed and lower-cased.
    #[schema(example = "ivan@example.com")]
    pub lead_email: Option<String>,
    /// At most 255 characters; fills the lead's name if it has none.
    #[schema(example = "Иван Иванов")]
    pub lead_name: Option<String>,
    /// At most 10,000 characters.
    #[schema(example = "Хочу узнать о продукте")]
    pub message: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactQuery {
    pub lead_id: Option<i64>,
    pub source_id: Option<i64>,
    pub operator_id: Option<i64>,
    pub status: Option<String>,
    /// `true`: only contacts without an operator; `false`: only contacts with one.
    pub unassigned: Option<bool>,
    /// Rows to pass over (default 0).
    #[param(minimum = 0)]
    pub skip: Option<i64>,
    /// Rows to return at most (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// The new status (as the reference implementation takes it); or send `{"status": …}` as the body.
    pub status: Option<String>,
}

/// The new status of a contact.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetStatus {
    /// Non-blank, at most 32 characters. Only `active` counts towards the operator's load.
    #[schema(example = "closed")]
    pub status: String,
}

impl CreateContact {
    fn parse(self, state: &AppState) -> Result<NewContact, AppError> {
        let raw = RawLeadIdentity {
            external_id: self.lead_external_id.as_deref(),
            phone: self.lead_phone.as_deref(),
            email: self.lead_email.as_deref(),
            name: self.lead_name.as_deref(),
        };
        let lead = LeadIdentity::parse(raw, state.phone_region, "lead_")
            .map_err(|e| invalid(e.field, e.error))?;
        let message = self
            .message
            .map(|m| Text::parse(&m).map_err(|e| invalid("message", e)))
            .transpose()?;
        Ok(NewContact {
            source_id: self.source_id,
            lead,
            message,
        })
    }
}

/// Register a contact: identify (or create) the lead, pick an operator by weight among the source's operators
/// that are active and below max_load, and store the contact — unassigned (`operator_id: null`) when nobody is
/// free. A 201 means all of it is durably committed.
#[utoipa::path(
    post, path = "/contacts", tag = "contacts",
    request_body = CreateContact,
    responses(
        (status = 201, description = "Created and routed", body = Contact),
        (status = 404, description = "No such source", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field (the detail names it)", body = ErrorBody),
        (status = 503, description = "Database unavailable; nothing was stored", body = ErrorBody),
    )
)]
async fn create_contact(
    State(state): State<AppState>,
    Json(body): Json<CreateContact>,
) -> Result<(StatusCode, Json<Contact>), AppError> {
    let new = body.parse(&state)?;
    let contact = state.store.create_contact(new).await?;
    tracing::debug!(
        contact_id = contact.id,
        lead_id = contact.lead_id,
        source_id = contact.source_id,
        operator_id = contact.operator_id,
        "contact created"
    );
    Ok((StatusCode::CREATED, Json(contact)))
}

/// List contacts, newest first, filtered by any of the parameters.
#[utoipa::path(
    get, path = "/contacts", tag = "contacts",
    params(ContactQuery),
    responses(
        (status = 200, description = "Contacts", body = [Contact]),
        (status = 422, description = "Invalid parameter", body = ErrorBody),
    )
)]
async fn list_contacts(
    State(state): State<AppState>,
    Query(query): Query<ContactQuery>,
) -> Result<Json<Vec<Contact>>, AppError> {
    let page = to_page(query.skip, query.limit)?;
    let filter = ContactFilter {
        lead_id: query.lead_id,
        source_id: query.source_id,
        operator_id: query.operator_id,
        status: query
            .status
            .map(|s| Status::parse(&s).map_err(|e| invalid("status", e)))
            .transpose()?,
        unassigned: query.unassigned,
    };
    Ok(Json(state.store.list_contacts(&filter, page).await?))
}

/// Get a contact with its lead, source and operator.
#[utoipa::path(
    get, path = "/contacts/{id}", tag = "contacts",
    params(("id" = i64, Path, description = "Contact id")),
    responses(
        (status = 200, description = "The contact", body = Contact),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
    )
)]
async fn get_contact(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Contact>, AppError> {
    Ok(Json(state.store.get_contact(id).await?))
}

/// Change a contact's status, given as the query parameter `status` or as the body `{"status": …}`. Leaving
/// `active` frees a unit of the operator's capacity; returning to `active` takes one back (even past max_load:
/// reopening is the operator's call, not automatic assignment).
#[utoipa::path(
    patch, path = "/contacts/{id}/status", tag = "contacts",
    params(("id" = i64, Path, description = "Contact id"), StatusQuery),
    request_body(content = Option<SetStatus>, description = "Instead of the query parameter"),
    responses(
        (status = 200, description = "The changed contact", body = Contact),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "Missing, conflicting or invalid status", body = ErrorBody),
    )
)]
async fn set_contact_status(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(query): Query<StatusQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Contact>, AppError> {
    let body = body?;
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let parsed: SetStatus = serde_json::from_slice(&body).map_err(|e| {
            AppError::Unprocessable(format!("body: expected {{\"status\": …}}: {e}"))
        })?;
        Some(parsed.status)
    };
    let raw = match (query.status, from_body) {
        (Some(a), Some(b)) if a != b => {
            return Err(AppError::Unprocessable(
                "status: the query parameter and the body disagree".to_owned(),
            ));
        }
        (Some(status), _) | (None, Some(status)) => status,
        (None, None) => {
            return Err(AppError::Unprocessable(
                "status: required, as ?status= or as the body {\"status\": …}".to_owned(),
            ));
        }
    };
    let status = Status::parse(&raw).map_err(|e| invalid("status", e))?;
    let contact = state.store.set_contact_status(id, status).await?;
    tracing::debug!(contact_id = id, status = %contact.status, "contact status changed");
    Ok(Json(contact))
}
