//! HTTP only: the routes, request and response types with their OpenAPI descriptions, and the wrappers that
//! turn every malformed request into the same JSON error.

mod access;
mod audit;
mod contacts;
mod deliveries;
mod leads;
mod operations;
mod operators;
mod schemas;
mod sources;
mod stats;
mod webhooks;
pub mod wire;

use std::sync::LazyLock;
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
use utoipa::openapi::OpenApi as OpenApiDocument;
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::domain::ValueError;
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
                       `{\"detail\": …}`. Collection paths answer with and without a trailing slash.",
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
    let openapi = with_security(openapi);
    let request_timeout = state.request_timeout;
    let routes = api
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .route("/redoc", get(redoc_page))
        .fallback(|| async { AppError::NotFound("Not Found".to_owned()) })
        .method_not_allowed_fallback(|| async {
            AppError::Rejected { status: StatusCode::METHOD_NOT_ALLOWED, message: "Method Not Allowed".to_owned() }
        })
        // Innermost first. These layers run after routing, so keys are checked, and the metrics see, the matched
        // route; the metrics wrap the timeout and the panic guard, so that 503s and 500s are counted too; the
        // request id is set before anything logs.
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

/// Declares the API keys: both ways of sending one, required by every operation but the public ones, each
/// of which may then answer 401 (no or unknown key) and 403 (a key without the scope). While no key exists the
/// API is open, which a static document cannot say otherwise than in words.
fn with_security(mut openapi: OpenApiDocument) -> OpenApiDocument {
    use utoipa::openapi::security::{
        ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
    };
    use utoipa::openapi::{RefOr, ResponseBuilder};

    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("An API key's token: `Authorization: Bearer lr_…`"))
                .build(),
        ),
    );
    components.add_security_scheme(
        "api_key",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-API-Key",
            "An API key's token, in a header of its own",
        ))),
    );
    openapi.security = Some(vec![
        SecurityRequirement::new("bearer", Vec::<String>::new()),
        SecurityRequirement::new("api_key", Vec::<String>::new()),
    ]);
    let error = |description: &str| -> RefOr<utoipa::openapi::Response> {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorBody",
                    ))))
                    .build(),
            )
            .build()
            .into()
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        let public = matches!(path.as_str(), "/healthz" | "/readyz");
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            if public {
                operation.security = Some(vec![SecurityRequirement::default()]);
                continue;
            }
            let responses = &mut operation.responses.responses;
            responses.entry("401".to_owned()).or_insert_with(|| {
                error("No API key, or an unknown or revoked one (once any key exists)")
            });
            responses
                .entry("403".to_owned())
                .or_insert_with(|| error("The API key's scope does not allow this request"));
        }
    }
    openapi
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(operators::router())
        .merge(sources::router())
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
        let axum::Json(value) =
            axum::Json::<serde_json::Value>::from_request(request, state).await?;
        let refused = |reason: &dyn std::fmt::Display| {
            AppError::Unprocessable(format!(
                "Failed to deserialize the JSON body into the target type: {reason}"
            ))
        };
        if !value.is_object() {
            return Err(refused(&"expected a JSON object"));
        }
        T::deserialize(value).map(Json).map_err(|e| refused(&e))
    }
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

/// A 422 naming the field whose value was refused.
/// The API's schemas of the records, one for each.
pub fn each<R, S: From<R>>(records: Vec<R>) -> Vec<S> {
    records.into_iter().map(S::from).collect()
}

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
