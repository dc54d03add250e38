use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{Caller, refuse_other_operator};
use super::export::{self, Rows, varies_by_accept};
use super::schemas::{Contact, HistoryEntry, RoutingDecision};
use super::wire::{
    EmailString, PhoneString, ShortTextString, StatusString, deserialize_optional_whole_number,
    deserialize_whole_number,
};
use super::{Json, JsonObject, Pagination, Path, Query, each, invalid, to_page, window_parameters};
use crate::AppState;
use crate::domain::access::OWN_CONTACT_FIELDS;
use crate::domain::identity::RawLeadIdentity;
use crate::domain::{LeadIdentity, Reach, Scope, Status, Text};
use crate::error::{AppError, ErrorBody};
use crate::store::ManualAssignment;
use crate::store::{ContactChange, ContactFilter};
use crate::store::{CreatedContact, IdempotencyKey, NewContact};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(QuerySchemas::openapi())
        .routes(routes!(create_contact, list_contacts))
        .routes(routes!(get_contact, assign_contact))
        .routes(routes!(set_contact_status))
        .routes(routes!(contact_history))
        .routes(routes!(contact_decisions))
        .routes(routes!(accept_contact))
        .routes(routes!(decline_contact))
}

/// A contact changed by hand: given to an operator or taken from one, its status changed, or both.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AssignContact {
    /// The operator to give the contact to, or `null` to take it from its operator (an active contact then
    /// waits in its source's queue); absent, the operator stays. A body with neither `operator_id` nor
    /// `status` changes nothing and answers the contact as it is.
    #[serde(default, deserialize_with = "nullable_whole_number")]
    #[schema(value_type = Option<i64>, example = 2)]
    pub operator_id: Option<Option<i64>>,
    /// Assign even to an inactive operator, or to one at max_load (default false; not null).
    #[serde(default)]
    #[schema(example = false)]
    pub force: bool,
    /// The new status, as `PATCH /contacts/{id}/status` sets it; changed before the operator when both are
    /// given. The only field an `operator` key may send.
    #[schema(value_type = Option<StatusString>, example = "closed")]
    pub status: Option<String>,
}

/// `operator_id`: absent (`None`), null (`Some(None)`) or a whole number.
fn nullable_whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<i64>>, D::Error> {
    deserialize_optional_whole_number(deserializer).map(Some)
}

/// The schemas only query parameters refer to, which the routes do not collect.
#[derive(OpenApi)]
#[openapi(components(schemas(StatusString)))]
struct QuerySchemas;

/// A lead's message through a source. The lead is found by `lead_external_id`, then `lead_phone`, then
/// `lead_email` (the first that matches wins), or created; blank identifiers count as absent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateContact {
    #[serde(deserialize_with = "deserialize_whole_number")]
    #[schema(example = 1)]
    pub source_id: i64,
    /// The lead's id in the source's system.
    #[schema(value_type = Option<ShortTextString>, example = "user123")]
    pub lead_external_id: Option<String>,
    /// Stored in E.164.
    #[schema(value_type = Option<PhoneString>, example = "+79991234567")]
    pub lead_phone: Option<String>,
    /// Stored trimmed and lower-cased.
    #[schema(value_type = Option<EmailString>, example = "ivan@example.com")]
    pub lead_email: Option<String>,
    /// Fills the lead's name if it has none.
    #[schema(value_type = Option<ShortTextString>, example = "Иван Иванов")]
    pub lead_name: Option<String>,
    /// At most 10,000 characters; no NUL.
    #[schema(
        example = "Хочу узнать о продукте",
        max_length = 10_000,
        pattern = r"^[^\x00]*$"
    )]
    pub message: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactQuery {
    pub lead_id: Option<i64>,
    pub source_id: Option<i64>,
    pub operator_id: Option<i64>,
    #[param(value_type = Option<StatusString>)]
    pub status: Option<String>,
    /// `true`: only contacts without an operator; `false`: only contacts with one.
    pub unassigned: Option<bool>,
    /// Only contacts created at or after this time (RFC 3339, e.g. `2026-11-25T00:00:00Z`; a `+` in an offset
    /// must be sent as `%2B`).
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    /// Only contacts created before this time (RFC 3339); one before `since` selects none.
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<String>,
    /// Rows to pass over (default 0).
    #[param(minimum = 0)]
    pub skip: Option<i64>,
    /// Rows to return at most (default 100, at most 1000; a CSV download without it holds every row).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

impl ContactQuery {
    /// The filters asked for, before the caller's reach holds them to its contacts ([`within_reach`]).
    fn filter(self) -> Result<ContactFilter, AppError> {
        Ok(ContactFilter {
            lead_id: self.lead_id,
            source_id: self.source_id,
            operator_id: self.operator_id,
            status: self
                .status
                .map(|s| Status::parse(&s).map_err(|e| invalid("status", e)))
                .transpose()?,
            unassigned: self.unassigned,
            created: window_parameters(self.since.as_deref(), self.until.as_deref())?,
        })
    }
}

/// The filter held to the caller's reach: an `operator` key lists only the contacts assigned to its operator,
/// whose id `operator_id` is whether given or not (another one: 403).
pub fn within_reach(mut filter: ContactFilter, reach: Reach) -> Result<ContactFilter, AppError> {
    if let Reach::AssignedTo(own) = reach {
        if let Some(asked) = filter.operator_id {
            refuse_other_operator(reach, asked)?;
        }
        filter.operator_id = Some(own);
    }
    Ok(filter)
}

/// `?status=`, required by the document; a client may send `{"status": …}` as the body instead.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// The new status. Only `active` counts towards the operator's load.
    #[param(value_type = StatusString, required = true, example = "closed")]
    pub status: Option<String>,
}

/// The new status of a contact, as a body instead of the query parameter.
#[derive(Debug, Deserialize)]
pub struct SetStatus {
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
            idempotency: None,
            created_by_key_id: None,
        })
    }
}

/// Register a contact: identify (or create) the lead, pick an operator by weight among the source's operators
/// that are active and below max_load, and store the contact — unassigned (`operator_id: null`) when nobody is
/// free. A 201 means all of it is durably committed.
///
/// With an `Idempotency-Key` header, a retry of the same request within 24 hours creates nothing and answers
/// the contact the first request created (201, with `Idempotent-Replayed: true`); the same key with a
/// different request is refused with 422.
#[utoipa::path(
    post, path = "/contacts", tag = "contacts",
    params(
        ("Idempotency-Key" = Option<String>, Header,
         description = "Makes retries safe: 1 to 255 printable ASCII characters (spaces only inside), unique per request",
         pattern = r"^[!-~]([ -~]{0,253}[!-~])?$"),
    ),
    request_body = CreateContact,
    responses(
        (status = 201, description = "Created and routed (or replayed for a known Idempotency-Key)", body = Contact),
        (status = 404, description = "No such source", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field (the detail names it), or an Idempotency-Key reused with another request", body = ErrorBody),
        (status = 503, description = "Database unavailable or timed out; retry, with an Idempotency-Key to be safe", body = ErrorBody),
    )
)]
async fn create_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Json(body): Json<CreateContact>,
) -> Result<(StatusCode, HeaderMap, Json<Contact>), AppError> {
    let mut new = body.parse(&state)?;
    new.created_by_key_id = caller.key_id;
    if let Some(key) = idempotency_key(&headers)? {
        let fingerprint = new.fingerprint();
        new.idempotency = Some(IdempotencyKey {
            client: caller.idempotency_client(),
            key,
            fingerprint,
        });
    }
    let CreatedContact {
        contact, replayed, ..
    } = state.store.create_contact(new).await?;
    let mut response_headers = HeaderMap::new();
    if replayed {
        response_headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    } else {
        crate::telemetry::contact_created(contact.source_id, contact.operator_id.is_some());
        tracing::debug!(
            contact_id = contact.id,
            lead_id = contact.lead_id,
            source_id = contact.source_id,
            operator_id = contact.operator_id,
            "contact created"
        );
    }
    Ok((StatusCode::CREATED, response_headers, Json(contact.into())))
}

/// The `Idempotency-Key` header, if sent: 1 to 255 printable ASCII characters, spaces only inside — exactly
/// what the OpenAPI document's pattern says.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    let visible_edges = bytes.first().is_some_and(u8::is_ascii_graphic)
        && bytes.last().is_some_and(u8::is_ascii_graphic);
    if !visible_edges
        || bytes.len() > 255
        || !bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
    {
        return Err(AppError::Unprocessable(
            "Idempotency-Key: must be 1 to 255 printable ASCII characters, spaces only inside"
                .to_owned(),
        ));
    }
    Ok(value.to_str().ok().map(str::to_owned))
}

/// List contacts, newest first, filtered by any of the parameters. An `operator` key lists only the contacts
/// assigned to its operator: `operator_id` is its own whether given or not (another one: 403).
///
/// With `Accept: text/csv` (preferred to `application/json`), the same contacts as a CSV download,
/// `contacts.csv`, streamed: a header row, then a row per contact with `id, created_at, source_id,
/// source_name, lead_id, lead_name, lead_phone, lead_email, lead_external_id, operator_id, operator_name,
/// status, assigned_at, accepted_at, message` (RFC 3339 UTC times, an empty cell for `null`; a text cell that
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so that no spreadsheet reads
/// it as a formula). Without `limit` it holds every matching contact.
#[utoipa::path(
    get, path = "/contacts", tag = "contacts",
    params(ContactQuery),
    responses(
        (status = 200, description = "Contacts (as CSV with `Accept: text/csv`)",
         content(
             ([Contact] = "application/json"),
             (String = "text/csv", example = json!(export::CONTACTS_EXAMPLE)),
         )),
        (status = 422, description = "Invalid parameter (the detail names it)", body = ErrorBody),
    )
)]
async fn list_contacts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Query(query): Query<ContactQuery>,
) -> Result<Response, AppError> {
    let page = to_page(query.skip, query.limit)?;
    let limited = query.limit.is_some();
    let filter = query.filter()?;
    if export::wants_csv(&headers) {
        let rows = Rows {
            skip: page.skip,
            limit: limited.then_some(page.limit),
        };
        return export::contacts(state, caller.reach(), filter, rows).await;
    }
    let filter = within_reach(filter, caller.reach())?;
    let contacts: Vec<Contact> = each(state.store.list_contacts(&filter, page).await?);
    Ok(varies_by_accept(Json(contacts)))
}

/// Get a contact with its lead, source and operator. An `ingest` key sees only the contacts it created, an
/// `operator` key only those assigned to its operator now (others answer 404, as if they did not exist).
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
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Result<Json<Contact>, AppError> {
    if caller.scope == Some(Scope::Ingest)
        && state.store.contact_creator(id).await?.flatten() != caller.key_id
    {
        return Err(AppError::not_found("Contact"));
    }
    Ok(Json(
        state.store.get_contact(id, caller.reach()).await?.into(),
    ))
}

/// Change a contact's status, given as the query parameter `status` (as the reference implementation takes it).
/// Leaving `active` frees a unit of the operator's capacity, which goes at once to the oldest contact waiting in
/// the queues of the operator's sources; returning to `active` takes one back (even past max_load: reopening is
/// the operator's call, not automatic assignment). An unassigned contact reopened joins its source's queue.
///
/// Instead of the query parameter, the body may be `{"status": "closed"}` (`Content-Type: application/json`);
/// a request with both is refused with 422 unless they agree. (OpenAPI cannot say "this query parameter or
/// that body", so the document describes the query parameter, the form the reference's clients use.)
///
/// An `operator` key changes only the contacts assigned to its operator (others answer 404).
#[utoipa::path(
    patch, path = "/contacts/{id}/status", tag = "contacts",
    params(("id" = i64, Path, description = "Contact id"), StatusQuery),
    responses(
        (status = 200, description = "The changed contact", body = Contact),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "Missing, conflicting or invalid status", body = ErrorBody),
    )
)]
async fn set_contact_status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Query(query): Query<StatusQuery>,
    // Read by hand: as an argument, `Bytes` would be taken for the documented body.
    request: Request,
) -> Result<Json<Contact>, AppError> {
    let body = Bytes::from_request(request, &state).await?;
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let expected = |e: &dyn std::fmt::Display| {
            AppError::Unprocessable(format!("body: expected {{\"status\": …}}: {e}"))
        };
        // Serde would also read the struct from an array (`["closed"]`); only an object is `{"status": …}`.
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| expected(&e))?;
        if !value.is_object() {
            return Err(expected(&"not an object"));
        }
        let parsed = SetStatus::deserialize(value).map_err(|e| expected(&e))?;
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
    let change = ContactChange {
        status: Some(Status::parse(&raw).map_err(|e| invalid("status", e))?),
        assignment: None,
        actor: caller.actor(),
        reach: caller.reach(),
    };
    let contact = state.store.change_contact(id, change).await?;
    tracing::debug!(
        contact_id = id,
        status = contact.status.as_str(),
        "contact status changed"
    );
    Ok(Json(contact.into()))
}

/// Give a contact to an operator by hand (`{"operator_id": 2}`), or take it from its operator
/// (`{"operator_id": null}`). An active contact moves its unit of load from the old operator to the new one,
/// whose capacity is checked: an inactive operator, or a full one, is refused with 409 unless `"force": true`
/// (which may take them past max_load). Any operator may be given the contact, linked to its source or not. The
/// old operator's freed capacity goes at once to the oldest contact waiting in their sources' queues — which may
/// be this very contact, when it was taken from its operator and is the oldest waiting.
///
/// With `status`, the status changes too (first), as `PATCH /contacts/{id}/status` changes it. An `operator`
/// key may send only `status`, about the contacts assigned to its operator: another field is refused with
/// 403 naming it, another operator's contact (or an unassigned one) answers 404.
#[utoipa::path(
    patch, path = "/contacts/{id}", tag = "contacts",
    params(("id" = i64, Path, description = "Contact id")),
    request_body = AssignContact,
    responses(
        (status = 200, description = "The contact, as changed", body = Contact),
        (status = 404, description = "No such contact, or no such operator", body = ErrorBody),
        (status = 409, description = "The operator is inactive, or at max_load, and `force` was not set", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Missing or invalid field", body = ErrorBody),
    )
)]
async fn assign_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    body: JsonObject,
) -> Result<Json<Contact>, AppError> {
    caller.refuse_fields_outside(body.fields(), OWN_CONTACT_FIELDS)?;
    let body: AssignContact = body.parse()?;
    let status = body
        .status
        .map(|raw| Status::parse(&raw).map_err(|e| invalid("status", e)))
        .transpose()?;
    let assignment = body.operator_id.map(|operator_id| ManualAssignment {
        operator_id,
        force: body.force,
    });
    let change = ContactChange {
        status,
        assignment,
        actor: caller.actor(),
        reach: caller.reach(),
    };
    let contact = state.store.change_contact(id, change).await?;
    tracing::info!(
        contact_id = id,
        operator_id = contact.operator_id,
        status = contact.status.as_str(),
        force = body.force,
        "contact changed by hand"
    );
    Ok(Json(contact.into()))
}

/// The contact's operator accepts it: `accepted_at` is set, and the contact is no longer due to go to another
/// operator by its source's accept timeout. Accepting an accepted contact changes nothing. No body.
#[utoipa::path(
    post, path = "/contacts/{id}/accept", tag = "contacts",
    params(("id" = i64, Path, description = "Contact id")),
    responses(
        (status = 200, description = "The contact, accepted", body = Contact),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 409, description = "The contact is not active, or has no operator", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
    )
)]
async fn accept_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Result<Json<Contact>, AppError> {
    let contact = state
        .store
        .accept_contact(id, caller.key_id, caller.reach())
        .await?;
    tracing::debug!(contact_id = id, "contact accepted");
    Ok(Json(contact.into()))
}

/// The contact's operator gives it up, accepted or not: it goes at once to another operator who may take it
/// (never back to one who declined it or let it time out), or, with nobody left, waits in its source's queue
/// at its age, still kept from them. The operator's freed capacity goes to their queues. No body.
#[utoipa::path(
    post, path = "/contacts/{id}/decline", tag = "contacts",
    params(("id" = i64, Path, description = "Contact id")),
    responses(
        (status = 200, description = "The contact, with its new operator or waiting", body = Contact),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 409, description = "The contact is not active, or has no operator", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
    )
)]
async fn decline_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Result<Json<Contact>, AppError> {
    let contact = state
        .store
        .decline_contact(id, caller.key_id, caller.reach())
        .await?;
    tracing::info!(
        contact_id = id,
        operator_id = contact.operator_id,
        "contact declined"
    );
    Ok(Json(contact.into()))
}

/// A contact's history, oldest first: its creation, every assignment (on creation, sticky, from the queue, by
/// hand, after a decline or an accept timeout), every loss of its operator (by hand, operator deleted or
/// unavailable, declined or timed out with nobody left), its acceptance, every status change — each with the time, the
/// operators and statuses before and after, the reason, and the API key of a change made by hand. An
/// `operator` key reads only the history of the contacts assigned to its operator now (others answer 404).
#[utoipa::path(
    get, path = "/contacts/{id}/history", tag = "contacts",
    params(("id" = i64, Path, description = "Contact id"), Pagination),
    responses(
        (status = 200, description = "The contact's history, oldest first", body = [HistoryEntry]),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 422, description = "Invalid id, skip or limit", body = ErrorBody),
    )
)]
async fn contact_history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Query(pagination): Query<Pagination>,
) -> Result<Json<Vec<HistoryEntry>>, AppError> {
    let page = pagination.page()?;
    let history = state
        .store
        .contact_history(id, caller.reach(), page)
        .await?;
    Ok(Json(each(history)))
}

/// Why the contact went to whom, or why it waits: every automatic assignment attempt for it, oldest first — on
/// creation, sticky, from the queue, after an accept timeout or a decline, and when its operator became
/// unavailable and nobody could take it. Each names the source's strategy, the candidates with their weight,
/// load and probability, every linked operator left out and why, whom it chose (`null`: nobody), and what the
/// strategy used. The latest decision of a waiting contact says why it waits. An `operator` key reads only
/// the decisions of the contacts assigned to its operator now (others answer 404).
#[utoipa::path(
    get, path = "/contacts/{id}/decisions", tag = "contacts",
    params(("id" = i64, Path, description = "Contact id"), Pagination),
    responses(
        (status = 200, description = "The contact's decisions, oldest first", body = [RoutingDecision]),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 422, description = "Invalid id, skip or limit", body = ErrorBody),
    )
)]
async fn contact_decisions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Query(pagination): Query<Pagination>,
) -> Result<Json<Vec<RoutingDecision>>, AppError> {
    let page = pagination.page()?;
    let decisions = state
        .store
        .contact_decisions(id, caller.reach(), page)
        .await?;
    Ok(Json(each(decisions)))
}
