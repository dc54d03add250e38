//! The API's own documentation: `/openapi.json` lists every operation with its success and error answers, and
//! the Swagger UI (`/docs/`) and ReDoc (`/redoc`) pages work offline (every script and style served by leadrouter).

mod common;

use common::TestApp;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

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
