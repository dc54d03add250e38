use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{self, ArrayBuilder, ObjectBuilder, SchemaFormat};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Caller;
use super::deliveries::{Delivery, DeliveryDetail};
use super::wire::serialize_timestamp;
use super::{Json, Pagination, Path, Query, each};
use crate::AppState;
use crate::domain::{MAX_URL_CHARS, WebhookUrl};
use crate::error::{AppError, ErrorBody};
use crate::store::webhooks::EVENT_TYPES;
use crate::store::{NewWebhook, webhooks};

/// A webhook secret's length, in characters.
pub const SECRET_CHARS: std::ops::RangeInclusive<usize> = 16..=256;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, delete_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(retry_delivery))
}

/// A receiver of events.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateWebhook {
    /// Where events are posted: an absolute `http://` or `https://` URL without credentials, at most 2,048
    /// characters. Redirects are not followed: events go to this URL and nowhere else.
    #[schema(value_type = HttpUrlString, example = "https://crm.example.com/leadrouter")]
    pub url: String,
    /// The event types to receive: `contact.created`, `contact.assigned`, `contact.unassigned`,
    /// `contact.status_changed`.
    #[schema(value_type = EventTypes, example = json!(["contact.assigned", "contact.status_changed"]))]
    pub events: Vec<String>,
    /// The key of the deliveries' HMAC-SHA256 signatures (its UTF-8 bytes): 16 to 256 characters, no NUL. When
    /// absent or null, one is generated and returned, once, in the response.
    #[schema(
        example = "a-long-random-shared-secret",
        min_length = 16,
        max_length = 256,
        pattern = r"^[^\x00]*$"
    )]
    pub secret: Option<String>,
}

/// An absolute `http://` or `https://` URL with a host, as the WHATWG URL standard parses it (which no regular
/// expression can say exactly), hence a format of our own: `http-url`.
pub struct HttpUrlString;

/// A part of what the format accepts that a regular expression can say, so that a client generating URLs from
/// the pattern alone writes valid ones: `http` or `https`; a host name whose labels are letters and digits
/// joined by single hyphens and whose last label starts with a letter (never read as an IPv4 address, never
/// an IDNA `xn--` label), or a dotted IPv4 address; a port below 10,000; then printable ASCII.
const HTTP_URL_PATTERN: &str = r"^https?://(?:(?:[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\.)*[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))(?::[0-9]{1,4})?(?:[/?#][!-~]*)?$";

impl PartialSchema for HttpUrlString {
    fn schema() -> RefOr<schema::Schema> {
        ObjectBuilder::new()
            .schema_type(schema::Type::String)
            .format(Some(SchemaFormat::Custom("http-url".to_owned())))
            .pattern(Some(HTTP_URL_PATTERN))
            .max_length(Some(MAX_URL_CHARS))
            .description(Some(
                "An absolute http:// or https:// URL with a host and no credentials, at most 2,048 characters",
            ))
            .into()
    }
}

impl ToSchema for HttpUrlString {}

/// One or more of the event types.
pub struct EventTypes;

impl PartialSchema for EventTypes {
    fn schema() -> RefOr<schema::Schema> {
        let event_type = ObjectBuilder::new()
            .schema_type(schema::Type::String)
            .enum_values(Some(EVENT_TYPES));
        ArrayBuilder::new()
            .items(event_type)
            .min_items(Some(1))
            .into()
    }
}

impl ToSchema for EventTypes {}

/// A receiver of events.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Webhook {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "https://crm.example.com/leadrouter")]
    pub url: String,
    #[schema(example = json!(["contact.assigned"]))]
    pub events: Vec<String>,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T16:38:00.123456Z")]
    pub created_at: DateTime<Utc>,
}

impl From<webhooks::Webhook> for Webhook {
    fn from(webhook: webhooks::Webhook) -> Self {
        Self {
            id: webhook.id,
            url: webhook.url.as_str().to_owned(),
            events: webhook.events,
            created_at: webhook.created_at,
        }
    }
}

/// A webhook just created, with its secret: the only response that shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    #[schema(example = "a-long-random-shared-secret")]
    pub secret: String,
}

impl CreateWebhook {
    fn parse(self) -> Result<NewWebhook, AppError> {
        let invalid = |message: &str| Err(AppError::Unprocessable(message.to_owned()));
        let url = WebhookUrl::parse(&self.url).map_err(|error| super::invalid("url", error))?;
        if self.events.is_empty() {
            return invalid("events: at least one event type");
        }
        if let Some(unknown) = self
            .events
            .iter()
            .find(|e| !EVENT_TYPES.contains(&e.as_str()))
        {
            return Err(AppError::Unprocessable(format!(
                "events: {unknown:?} is not an event type ({})",
                EVENT_TYPES.join(", ")
            )));
        }
        let events = EVENT_TYPES
            .into_iter()
            .filter(|known| self.events.iter().any(|e| e == known))
            .collect();
        let secret = match self.secret {
            Some(secret) => {
                let length = secret.chars().count();
                if !SECRET_CHARS.contains(&length) || secret.contains('\0') {
                    return invalid(
                        "secret: 16 to 256 characters, no NUL (or leave it out to have one generated)",
                    );
                }
                secret
            }
            None => generated_secret(),
        };
        Ok(NewWebhook {
            url,
            events,
            secret,
        })
    }
}

/// `whsec_` and 64 hexadecimal digits (256 random bits).
fn generated_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", hex::encode(bytes))
}

/// Create a webhook: from now on, every event of the chosen types is posted to its URL, signed with its secret
/// (`X-Leadrouter-Signature: sha256=<hex HMAC-SHA256 of the body>`). Delivery is at least once: a receiver may
/// see an event twice and should keep the event ids it has handled. Failed deliveries are retried with
/// exponential backoff. Admin keys only.
#[utoipa::path(
    post, path = "/webhooks", tag = "webhooks",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Created; the only response that shows the secret", body = CreatedWebhook),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid url, events or secret", body = ErrorBody),
    )
)]
async fn create_webhook(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<CreateWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), AppError> {
    let new = body.parse()?;
    let secret = new.secret.clone();
    let webhook = state.store.create_webhook(new, caller.actor()).await?;
    tracing::info!(webhook_id = webhook.id, url = %webhook.url, "webhook created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: webhook.into(),
            secret,
        }),
    ))
}

/// List the webhooks, oldest first (without their secrets).
#[utoipa::path(
    get, path = "/webhooks", tag = "webhooks",
    responses((status = 200, description = "Webhooks", body = [Webhook]))
)]
async fn list_webhooks(State(state): State<AppState>) -> Result<Json<Vec<Webhook>>, AppError> {
    Ok(Json(each(state.store.list_webhooks().await?)))
}

/// Get a webhook (without its secret).
#[utoipa::path(
    get, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The webhook", body = Webhook),
        (status = 404, description = "No such webhook", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
    )
)]
async fn get_webhook(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Webhook>, AppError> {
    Ok(Json(state.store.get_webhook(id).await?.into()))
}

/// Delete a webhook, with its deliveries: nothing more is sent to it, pending deliveries included.
#[utoipa::path(
    delete, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such webhook", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
    )
)]
async fn delete_webhook(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    state.store.delete_webhook(id, caller.actor()).await?;
    tracing::info!(webhook_id = id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The webhook's deliveries, newest first: one per event it received, with its state, the number of attempts,
/// the last answer, and when a pending one is next tried.
#[utoipa::path(
    get, path = "/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id"), Pagination),
    responses(
        (status = 200, description = "Deliveries, newest first", body = [Delivery]),
        (status = 404, description = "No such webhook", body = ErrorBody),
        (status = 422, description = "Invalid id, skip or limit", body = ErrorBody),
    )
)]
async fn list_deliveries(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(pagination): Query<Pagination>,
) -> Result<Json<Vec<Delivery>>, AppError> {
    let deliveries = state.store.deliveries(id, pagination.page()?).await?;
    Ok(Json(each(deliveries)))
}

/// A delivery with the event it carries (exactly as sent) and every attempt at it: when, the receiver's status
/// code or the error, and how long it took.
#[utoipa::path(
    get, path = "/webhooks/{id}/deliveries/{delivery_id}", tag = "webhooks",
    params(
        ("id" = i64, Path, description = "Webhook id"),
        ("delivery_id" = i64, Path, description = "Delivery id"),
    ),
    responses(
        (status = 200, description = "The delivery, its payload and its attempts", body = DeliveryDetail),
        (status = 404, description = "No such delivery of this webhook", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
    )
)]
async fn get_delivery(
    State(state): State<AppState>,
    Path((id, delivery_id)): Path<(i64, i64)>,
) -> Result<Json<DeliveryDetail>, AppError> {
    Ok(Json(state.store.delivery(id, delivery_id).await?.into()))
}

/// Send a delivery again, now: for one that failed for good, once its receiver is fixed (or, for a delivered
/// one, to have it once more).
#[utoipa::path(
    post, path = "/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks",
    params(
        ("id" = i64, Path, description = "Webhook id"),
        ("delivery_id" = i64, Path, description = "Delivery id"),
    ),
    responses(
        (status = 202, description = "Pending again, due now", body = Delivery),
        (status = 404, description = "No such delivery of this webhook", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
    )
)]
async fn retry_delivery(
    State(state): State<AppState>,
    Path((id, delivery_id)): Path<(i64, i64)>,
) -> Result<(StatusCode, Json<Delivery>), AppError> {
    let delivery = state.store.retry_delivery(id, delivery_id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery.into())))
}
