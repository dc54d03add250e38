//! HTTP only: the routes, request and response types with their OpenAPI descriptions, and the wrappers that
//! turn every malformed request into the same JSON error.

pub(crate) mod access;
mod audit;
mod contacts;
mod deliveries;
mod document;
pub mod export;
mod leads;
pub mod limits;
mod operations;
mod operators;
mod schemas;
mod simulation;
mod sources;
pub(crate) mod stats;
mod time_off;
mod webhooks;
pub mod wire;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::{StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tower::Layer as _;
use tower::util::MapRequestLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::domain::ValueError;
use crate::domain::fairness::Window;
use crate::error::{AppError, ErrorBody};
use crate::store::Page;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The default and the largest `limit` of a list.
pub const DEFAULT_PAGE_LIMIT: i64 = 100;
pub const MAX_PAGE_LIMIT: i64 = 1000;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "leadrouter",
        description = "Routes incoming lead contacts to operators: by weight among the operators configured for \
                       the source, counting only active operators below their max_load. Every error answers \
                       `{\"detail\": …}`. Collection paths answer with and without a trailing slash.\n\n\
                       Once an API key exists, every request but health, readiness and the docs needs one, and \
                       its scope says what it may do: `admin` everything; `ingest` `POST /contacts/` and \
                       reading back the contacts it created; `read` every GET but webhooks and the audit \
                       trail, and the what-if `POST /sources/{id}/simulate`; `operator`, bound to one operator: read that operator and change its \
                       `availability` and `away_until`, list and read the contacts assigned to it and change \
                       their status (`PATCH /contacts/{id}` with `status` only, `PATCH \
                       /contacts/{id}/status`, accept, decline). Anything else is 403; another operator's \
                       contact is 404 to an operator key.",
    ),
    tags(
        (name = "operators", description = "The people who handle contacts, and their load"),
        (name = "sources", description = "The bots leads write through, and the operators' weights on each"),
        (name = "contacts", description = "Incoming contacts: registered, routed, closed"),
        (name = "leads", description = "The people behind the contacts"),
        (name = "stats", description = "How contacts are distributed"),
        (name = "webhooks", description = "Signed notifications of what happens to contacts (admin keys only)"),
        (name = "audit", description = "Who changed what and when, with the values before and after (admin keys only)"),
        (name = "operations", description = "Health, readiness and metrics, for the people who run leadrouter"),
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// The whole HTTP application over the given state: the API, its OpenAPI document and both docs pages.
pub fn build_app(state: AppState) -> Router {
    let (api, openapi) = api_router().split_for_parts();
    let documents = Arc::new(document::Documents::new(openapi));
    let request_timeout = state.request_timeout;
    let routes = api
        .route(
            "/openapi.json",
            get(move |State(state): State<AppState>| document::serve(state, documents.clone())),
        )
        .merge(SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::new(["/openapi.json"])))
        .route("/redoc", get(redoc_page))
        .merge(crate::ui::router())
        .fallback(|| async { AppError::NotFound("Not Found".to_owned()) })
        .method_not_allowed_fallback(|| async {
            AppError::Rejected { status: StatusCode::METHOD_NOT_ALLOWED, message: "Method Not Allowed".to_owned() }
        })
        // Innermost first. These layers run after routing, so keys are checked, and the metrics see, the matched
        // route; the metrics wrap the timeout and the panic guard, so that 503s and 500s are counted too; the
        // request id is set before anything logs.
        .layer(middleware::from_fn(limits::limit_body))
        .layer(middleware::from_fn_with_state(state.clone(), access::authorize))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(request_timeout, enforce_timeout))
        .layer(CatchPanicLayer::custom(|_| {
            AppError::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
        }))
        .layer(middleware::from_fn(crate::telemetry::record_request))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let request_id = request
                .headers()
                .get("x-request-id")
                .and_then(|id| id.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state);
    // Paths are rewritten before routing, which a layer on the router itself would be too late for.
    let normalized = MapRequestLayer::new(trim_trailing_slash).layer(routes);
    Router::new().fallback_service(normalized)
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(operators::router())
        .merge(sources::router())
        .merge(simulation::router())
        .merge(contacts::router())
        .merge(leads::router())
        .merge(stats::router())
        .merge(webhooks::router())
        .merge(audit::router())
        .merge(operations::router())
}

/// Answers 503 to a request still unanswered after the configured timeout. A write handed to the database
/// before then may still commit: the client learns the outcome only by reading it back.
async fn enforce_timeout(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => AppError::Rejected {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("the request took longer than {} s", timeout.as_secs_f64()),
        }
        .into_response(),
    }
}

/// `/operators/` is served as `/operators`, without a redirect, so that the reference's clients (which use the
/// trailing slash) and everyone else are both answered; and an id written `28.0` is read as `28`, as JSON
/// Schema counts a whole number with a zero fraction as an integer. The Swagger UI's own paths are left alone.
fn trim_trailing_slash(mut request: Request) -> Request {
    let path = request.uri().path();
    if path.starts_with("/docs") {
        return request;
    }
    let whole_number_ids = path.split('/').any(is_whole_number_with_fraction);
    if (path.len() > 1 && path.ends_with('/')) || whole_number_ids {
        let trimmed = match path.trim_end_matches('/') {
            "" => "/",
            trimmed => trimmed,
        };
        let trimmed = if whole_number_ids {
            let segments: Vec<&str> = trimmed
                .split('/')
                .map(|segment| match is_whole_number_with_fraction(segment) {
                    true => segment.split('.').next().unwrap_or(segment),
                    false => segment,
                })
                .collect();
            segments.join("/")
        } else {
            trimmed.to_owned()
        };
        let rewritten = match request.uri().query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed,
        };
        if let Ok(uri) = rewritten.parse::<Uri>() {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// `28.0`, `-3.00`: digits, a point, and zeros only.
fn is_whole_number_with_fraction(segment: &str) -> bool {
    let Some((whole, fraction)) = segment.split_once('.') else {
        return false;
    };
    let digits = whole.strip_prefix('-').unwrap_or(whole);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !fraction.is_empty()
        && fraction.bytes().all(|b| b == b'0')
}

/// ReDoc with its script inlined from the `aide` crate, so that the page needs nothing from the internet.
async fn redoc_page() -> Html<&'static str> {
    static PAGE: LazyLock<String> = LazyLock::new(|| {
        aide::redoc::Redoc::new("/openapi.json")
            .with_title("leadrouter API")
            .html()
    });
    Html(PAGE.as_str())
}

/// `axum::Json`, with its rejections answered as [`AppError`], that takes only a JSON object: serde would also
/// read a struct from an array of its fields (`["Оператор 1", true, 10]`), which no schema of ours allows.
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        JsonObject::from_request(request, state)
            .await?
            .parse()
            .map(Json)
    }
}

/// A JSON object body, refused as [`Json`] refuses a body, but read into its type only when asked: so that a
/// handler may first look at which fields it gives (null ones too), as the rules of an operator key do.
pub struct JsonObject(pub serde_json::Map<String, serde_json::Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let axum::Json(value) =
            axum::Json::<serde_json::Value>::from_request(request, state).await?;
        match value {
            serde_json::Value::Object(object) => Ok(JsonObject(object)),
            _ => Err(refused_body(&"expected a JSON object")),
        }
    }
}

impl JsonObject {
    /// The names of the fields given.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The body as a `T`, or a 422 naming the field that is not what `T` takes.
    pub fn parse<T: serde::de::DeserializeOwned>(self) -> Result<T, AppError> {
        let value = serde_json::Value::Object(self.0);
        if let Ok(body) = T::deserialize(&value) {
            return Ok(body);
        }
        // Only for a refused body: read again, to name the field.
        serde_path_to_error::deserialize::<_, T>(&value).map_err(|error| {
            match error.path().to_string().as_str() {
                "." => refused_body(error.inner()),
                field => refused_body(&format_args!("{field}: {}", error.inner())),
            }
        })
    }
}

fn refused_body(reason: &dyn std::fmt::Display) -> AppError {
    AppError::Unprocessable(format!(
        "Failed to deserialize the JSON body into the target type: {reason}"
    ))
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path`, with its rejections answered as [`AppError`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct Path<T>(pub T);

/// `axum::extract::Query`, with its rejections answered as [`AppError`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct Query<T>(pub T);

/// `skip` and `limit` of a list.
#[derive(Debug, Default, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Pagination {
    /// Rows to pass over (default 0).
    #[param(minimum = 0)]
    pub skip: Option<i64>,
    /// Rows to return at most (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

impl Pagination {
    pub fn page(&self) -> Result<Page, AppError> {
        to_page(self.skip, self.limit)
    }
}

pub fn to_page(skip: Option<i64>, limit: Option<i64>) -> Result<Page, AppError> {
    let skip = skip.unwrap_or(0);
    let limit = limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if skip < 0 {
        return Err(invalid("skip", ValueError("must be 0 or more".to_owned())));
    }
    if !(1..=MAX_PAGE_LIMIT).contains(&limit) {
        return Err(invalid(
            "limit",
            ValueError(format!("must be between 1 and {MAX_PAGE_LIMIT}")),
        ));
    }
    Ok(Page { skip, limit })
}

/// An optional query parameter holding an RFC 3339 time (a `+` in its offset sent as `%2B`); a bad one is a
/// 422 naming the parameter.
pub fn time_parameter(
    field: &str,
    raw: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, AppError> {
    raw.map(|raw| {
        chrono::DateTime::parse_from_rfc3339(raw.trim())
            .map(|time| time.to_utc())
            .map_err(|_| {
                invalid(
                    field,
                    ValueError(format!(
                        "{raw:?} is not an RFC 3339 time (such as 2026-11-25T16:38:00Z)"
                    )),
                )
            })
    })
    .transpose()
}

/// The window `[since, until)` of two optional RFC 3339 query parameters named so; a bad one is a 422 naming
/// it. One that ends before it starts is empty, not an error.
pub fn window_parameters(since: Option<&str>, until: Option<&str>) -> Result<Window, AppError> {
    let since = time_parameter("since", since)?;
    let until = time_parameter("until", until)?;
    Window::new(since, until).map_err(|e| invalid("until", e))
}

/// The API's schemas of the records, one for each.
pub fn each<R, S: From<R>>(records: Vec<R>) -> Vec<S> {
    records.into_iter().map(S::from).collect()
}

/// A 422 naming the field whose value was refused.
pub fn invalid(field: &str, error: ValueError) -> AppError {
    AppError::Unprocessable(format!("{field}: {error}"))
}

/// Deserialises a field that may be absent (`None`), null (`Some(None)`) or set (`Some(Some(v))`).
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}
