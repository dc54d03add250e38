//! The dashboard: server-rendered pages under `/ui/` for the desk's managers and operators, a small ES module
//! of our own for live updates and for the controls (which act through the JSON API with the visitor's
//! session), and nothing fetched from anywhere else. Every page sends a strict Content-Security-Policy.

mod assets;
mod chart;
pub mod events;
mod i18n;
mod layout;
mod pages;
pub mod session;

use axum::Router;
use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::AppState;

pub use i18n::Lang;
pub use session::Viewer;

/// Scripts, styles, images and connections from this server only; no inline script or style, no frames, no
/// plugins, forms posted only here.
const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(pages::now::show))
        .route("/ui/me", get(pages::me::show))
        .route("/ui/contacts", get(pages::contacts::list))
        .route("/ui/contacts/{id}", get(pages::contacts::show))
        .route("/ui/export/contacts.csv", get(pages::contacts::export))
        .route(
            "/ui/export/sources/{file}",
            get(pages::contacts::export_source),
        )
        .route("/ui/operators", get(pages::setup::operators))
        .route("/ui/sources", get(pages::setup::sources))
        .route("/ui/sources/{id}", get(pages::setup::source))
        .route("/ui/webhooks", get(pages::setup::webhooks))
        .route("/ui/keys", get(pages::setup::keys))
        .route(
            "/ui/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/ui/sign-out", post(session::sign_out))
        .route("/ui/lang/{code}", get(i18n::switch))
        .route("/ui/events", get(events::stream))
        .route("/ui/assets/{file}", get(assets::serve))
        // Browsers ask for it of every page, the docs pages too.
        .route("/favicon.ico", get(assets::icon))
        .layer(middleware::from_fn(secure_headers))
}

/// Headers every dashboard response carries: the CSP, no sniffing, no referrer, no framing, and no caching
/// of pages that show the desk's data.
async fn secure_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/ui/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    if !is_asset && !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Where a page sends a visitor who may not see it.
pub(crate) fn refuse(viewer: &Viewer) -> Response {
    layout::refused(viewer).into_response()
}
