//! HTTP only: the routes, request and response types with their OpenAPI descriptions, and the wrappers that
//! turn every malformed request into the same JSON error.

mod contacts;
mod leads;
mod operators;
mod sources;
mod stats;

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tower::Layer as _;
use tower::util::MapRequestLayer;
use tower_http::catch_panic::CatchPanicLayer;
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
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// The whole HTTP application over the given state: the API, its OpenAPI document and both docs pages.
pub fn build_app(state: AppState) -> Router {
    let (api, openapi) = api_router().split_for_parts();
    let routes = api
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .route("/redoc", get(redoc_page))
        .fallback(|| async { AppError::NotFound("Not Found".to_owned()) })
        .method_not_allowed_fallback(|| async {
            AppError::Rejected {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: "Method Not Allowed".to_owned(),
            }
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(|_| {
            AppError::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
        }))
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    // Paths are rewritten before routing, which a layer on the router itself would be too late for.
    let normalized = MapRequestLayer::new(trim_trailing_slash).layer(routes);
    Router::new().fallback_service(normalized)
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi() -> OpenApiDocument {
    api_router().split_for_parts().1
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(operators::router())
        .merge(sources::router())
        .merge(contacts::router())
        .merge(leads::router())
        .merge(stats::router())
}

/// `/operators/` is served as `/operators`, without a redirect, so that the reference's clients (which use the
/// trailing slash) and everyone else are both answered. The Swagger UI's own paths are left alone.
fn trim_trailing_slash(mut request: Request) -> Request {
    let path = request.uri().path();
    if path.len() > 1 && path.ends_with('/') && !path.starts_with("/docs") {
        let trimmed = match path.trim_end_matches('/') {
            "" => "/",
            trimmed => trimmed,
        };
        let rewritten = match request.uri().query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = rewritten.parse::<Uri>() {
            *request.uri_mut() = uri;
        }
    }
    request
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

/// `axum::Json`, with its rejections answered as [`AppError`].
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct Json<T>(pub T);

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
