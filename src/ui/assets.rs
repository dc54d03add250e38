//! The dashboard's own files, compiled into the binary: its stylesheet, its one script, its icon. Their URLs
//! carry a digest of their content, so a browser may keep them for good and still never runs an old script
//! against a new page.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::AppError;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "ui.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/ui.css"),
    },
    Asset {
        name: "ui.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/ui.js"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("assets/icon.svg"),
    },
];

/// A digest of all of them: one version for the set.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut digest = Sha256::new();
    for asset in ASSETS {
        digest.update(asset.body.as_bytes());
    }
    hex::encode(&digest.finalize()[..6])
});

pub fn asset_url(name: &str) -> String {
    format!("/ui/assets/{name}?v={}", *VERSION)
}

pub async fn serve(Path(file): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == file) else {
        return AppError::NotFound("Not Found".to_owned()).into_response();
    };
    (
        [
            (CONTENT_TYPE, asset.content_type),
            (CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        asset.body,
    )
        .into_response()
}

/// The icon, where browsers look for it unasked.
pub async fn icon() -> Response {
    serve(Path("icon.svg".to_owned())).await
}
