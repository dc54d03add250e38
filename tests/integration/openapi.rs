//! The API's own documentation: `/openapi.json` lists every operation with its success and error answers, and
//! the Swagger UI (`/docs/`) and ReDoc (`/redoc`) pages work offline (every script and style served by leadrouter).
//!
//! The whole served document is also compared with the committed snapshot `tests/snapshots/openapi.json`, so
//! that no change to any operation, parameter or schema goes unnoticed. After an intended change to the API,
//! regenerate the snapshot and review its diff:
//!
//! ```bash
//! UPDATE_SNAPSHOTS=1 cargo test --test integration openapi
//! git diff tests/snapshots/openapi.json
//! ```

use crate::common;

use std::path::Path;

use common::TestApp;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Map, Value};

/// The committed copy of the served `/openapi.json`.
const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/openapi.json");

/// Rewrites the snapshot instead of comparing with it when set (to anything but `0` or empty).
const UPDATE_VAR: &str = "UPDATE_SNAPSHOTS";

/// At most this many differences are listed in a failure.
const MAX_DIFFERENCES: usize = 60;

/// Every operation of the API and the status it answers on success.
const OPERATIONS: &[(&str, &str, &str)] = &[
    ("/operators", "get", "200"),
    ("/operators", "post", "201"),
    ("/operators/{id}", "get", "200"),
    ("/operators/{id}", "patch", "200"),
    ("/operators/{id}", "delete", "204"),
    ("/operators/{id}/stats", "get", "200"),
    ("/sources", "get", "200"),
    ("/sources", "post", "201"),
    ("/sources/{id}", "get", "200"),
    ("/sources/{id}", "patch", "200"),
    ("/sources/{id}", "delete", "204"),
    ("/sources/{id}/operators", "post", "201"),
    ("/sources/{id}/operators/{operator_id}", "patch", "200"),
    ("/sources/{id}/operators/{operator_id}", "delete", "204"),
    ("/contacts", "get", "200"),
    ("/contacts", "post", "201"),
    ("/contacts/{id}", "get", "200"),
    ("/contacts/{id}/status", "patch", "200"),
    ("/leads", "get", "200"),
    ("/leads/{id}", "get", "200"),
    ("/stats/sources/{id}", "get", "200"),
    ("/audit", "get", "200"),
];

/// GETs a page and returns its status, content type and text.
async fn fetch(app: &TestApp, path: &str) -> (StatusCode, String, String) {
    let response = app
        .client
        .get(app.url(path))
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (
        status,
        content_type,
        response.text().await.expect("a text body"),
    )
}

/// The values of every `src="…"` and `href="…"` attribute in an HTML page.
fn referenced_urls(html: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(start) = rest.find(attribute) {
            rest = &rest[start + attribute.len()..];
            let end = rest.find('"').expect("a closing quote");
            urls.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    urls
}

async fn openapi_document(app: &TestApp) -> Value {
    let (status, document) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    document
}

backend_test!(the_openapi_document_lists_every_operation, |app| {
    let document = openapi_document(&app).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().expect("paths");
    for (path, method, _) in OPERATIONS {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} is missing; paths: {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
});

backend_test!(every_operation_declares_its_success_and_its_errors, |app| {
    let document = openapi_document(&app).await;
    for (path, method, success) in OPERATIONS {
        let responses = document["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} has no responses"));
        assert!(
            responses.contains_key(*success),
            "{method} {path} does not declare {success}: {:?}",
            responses.keys().collect::<Vec<_>>()
        );
        assert!(
            responses.keys().any(|code| code.starts_with('4')),
            "{method} {path} declares no 4XX answer"
        );
    }
});

backend_test!(request_bodies_are_described, |app| {
    let document = openapi_document(&app).await;
    for (path, method) in [
        ("/operators", "post"),
        ("/operators/{id}", "patch"),
        ("/sources", "post"),
        ("/sources/{id}", "patch"),
        ("/sources/{id}/operators", "post"),
        ("/sources/{id}/operators/{operator_id}", "patch"),
        ("/contacts", "post"),
    ] {
        let body = &document["paths"][path][method]["requestBody"]["content"]["application/json"];
        assert!(body["schema"].is_object(), "{method} {path}: {body}");
    }
    let schemas = document["components"]["schemas"]
        .as_object()
        .expect("schemas");
    for schema in ["ErrorBody", "Operator", "Source", "Contact", "Lead"] {
        assert!(schemas.contains_key(schema), "no {schema} schema");
    }
});

backend_test!(swagger_ui_is_served_with_local_assets, |app| {
    let (status, content_type, page) = fetch(&app, "/docs/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let urls = referenced_urls(&page);
    assert!(
        urls.iter().any(|u| u.ends_with(".js")),
        "no script in {page}"
    );
    let base = reqwest::Url::parse(&app.url("/docs/")).unwrap();
    let mut assets = String::new();
    for url in urls {
        assert!(
            !url.starts_with("http://") && !url.starts_with("https://") && !url.starts_with("//"),
            "{url} is not served by leadrouter"
        );
        let absolute = base.join(&url).unwrap();
        let (status, _, body) = fetch(&app, absolute.path()).await;
        assert_eq!(status, StatusCode::OK, "{url}");
        assert!(!body.is_empty(), "{url} is empty");
        assets.push_str(&body);
    }
    assert!(
        assets.contains("/openapi.json"),
        "the page does not load /openapi.json"
    );
});

backend_test!(redoc_is_served_with_its_script_inline, |app| {
    let (status, content_type, page) = fetch(&app, "/redoc").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(page.contains("Redoc.init"));
    assert!(page.contains("/openapi.json"));
    assert!(
        !page.contains("<script src=\"http"),
        "a script from elsewhere"
    );
    for url in referenced_urls(&page) {
        assert!(
            !url.starts_with("http://") && !url.starts_with("https://"),
            "{url} is not served by leadrouter"
        );
    }
});

/// The document with the keys of every object sorted, so that the snapshot does not depend on the order in
/// which the server writes them. Nothing else in the document varies between runs: it holds no port, host,
/// time or random value (checked by serving it on both backends against the same snapshot).
fn normalised(value: &Value) -> Value {
    match value {
        Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            let mut sorted = Map::new();
            for key in keys {
                sorted.insert(key.clone(), normalised(&object[key]));
            }
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.iter().map(normalised).collect()),
        other => other.clone(),
    }
}

/// One JSON Pointer token (RFC 6901).
fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A value for a difference line: compact, and cut when long.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 160 {
        format!("{}…", text.chars().take(160).collect::<String>())
    } else {
        text
    }
}

/// The differences between the snapshot and the served document, one line each, by JSON Pointer: `- ptr: v` is
/// only in the snapshot (or its old value), `+ ptr: v` only in the served document (or its new value).
fn differences(pointer: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(old), Value::Object(new)) => {
            let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let path = format!("{pointer}/{}", pointer_token(key));
                match (old.get(key), new.get(key)) {
                    (Some(old), Some(new)) => differences(&path, old, new, out),
                    (Some(old), None) => out.push(format!("- {path}: {}", short(old))),
                    (None, Some(new)) => out.push(format!("+ {path}: {}", short(new))),
                    (None, None) => unreachable!(),
                }
            }
        }
        (Value::Array(old), Value::Array(new)) if old.len() == new.len() => {
            for (index, (old, new)) in old.iter().zip(new).enumerate() {
                differences(&format!("{pointer}/{index}"), old, new, out);
            }
        }
        (old, new) if old != new => {
            let path = if pointer.is_empty() { "/" } else { pointer };
            out.push(format!("- {path}: {}", short(old)));
            out.push(format!("+ {path}: {}", short(new)));
        }
        _ => {}
    }
}

fn updating_snapshots() -> bool {
    std::env::var(UPDATE_VAR).is_ok_and(|value| !matches!(value.trim(), "" | "0"))
}

/// Writes the snapshot whole (to a temporary file renamed over it: both backends' tests may write at once).
fn write_snapshot(text: &str) {
    let path = Path::new(SNAPSHOT);
    std::fs::create_dir_all(path.parent().unwrap()).expect("creating tests/snapshots");
    let temporary = path.with_extension(format!("json.{}.tmp", rand::random::<u32>()));
    std::fs::write(&temporary, text).expect("writing the snapshot");
    std::fs::rename(&temporary, path).expect("replacing the snapshot");
}

backend_test!(the_openapi_document_matches_the_snapshot, |app| {
    let served = normalised(&openapi_document(&app).await);
    let text = format!("{}\n", serde_json::to_string_pretty(&served).unwrap());
    if updating_snapshots() {
        write_snapshot(&text);
        eprintln!("{UPDATE_VAR} is set: wrote {SNAPSHOT}");
        return;
    }
    let committed = std::fs::read_to_string(SNAPSHOT).unwrap_or_else(|error| {
        panic!("reading {SNAPSHOT} ({error}); create it with `{UPDATE_VAR}=1 cargo test --test integration openapi`")
    });
    let snapshot: Value = serde_json::from_str(&committed)
        .unwrap_or_else(|error| panic!("{SNAPSHOT} is not JSON: {error}"));
    let mut found = Vec::new();
    differences("", &normalised(&snapshot), &served, &mut found);
    let total = found.len();
    found.truncate(MAX_DIFFERENCES);
    let more = if total > MAX_DIFFERENCES {
        format!("\n… and {} more", total - MAX_DIFFERENCES)
    } else {
        String::new()
    };
    assert!(
        found.is_empty(),
        "the served /openapi.json differs from {SNAPSHOT} in {total} place(s) \
         (- the snapshot, + the served document):\n{}{more}\n\n\
         If the change is intended, regenerate the snapshot with `{UPDATE_VAR}=1 cargo test --test integration openapi` \
         and review `git diff tests/snapshots/openapi.json`.",
        found.join("\n")
    );
    assert_eq!(
        committed, text,
        "{SNAPSHOT} holds the same document but is not written as `{UPDATE_VAR}=1` writes it; regenerate it"
    );
});
