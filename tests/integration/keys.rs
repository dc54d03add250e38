//! API keys: created and revoked with the CLI while the server runs, effective at once, and scoped.

use crate::common;

use common::{
    TestApp, call_with_key as call, call_with_key_ok as call_ok, create_key, keys_command as keys,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The status of a request sent with the key.
async fn status_with(app: &TestApp, token: &str, method: Method, path: &str) -> StatusCode {
    call(app, Some(token), method, path, None).await.0
}

backend_test!(
    keys_take_effect_at_once_and_scopes_limit_what_they_do,
    |app| {
        // Open while no key exists.
        let (status, _) = app.get("/operators/").await;
        assert_eq!(status, StatusCode::OK);
        let admin = create_key(&app, "admin", "ops team");

        // Closed from the next request on: no key, or an unknown one, is 401 with a detail.
        let response = app.client.get(app.url("/operators/")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let (status, body) = call(&app, Some("lr_nope"), Method::GET, "/operators/", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body["detail"].is_string());

        // Admin does everything.
        let (status, source) = call(
            &app,
            Some(&admin),
            Method::POST,
            "/sources/",
            Some(json!({ "name": "bot" })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let source = source["id"].as_i64().unwrap();
        let admin_contact = call_ok(
            &app,
            Some(&admin),
            Method::POST,
            "/contacts/",
            Some(json!({ "source_id": source })),
        )
        .await;

        // Ingest: posts contacts (X-API-Key works too) and reads back its own, nothing else.
        let ingest = create_key(&app, "ingest", "telegram-bot");
        let response = app
            .client
            .post(app.url("/contacts/"))
            .header("X-API-Key", &ingest)
            .json(&json!({ "source_id": source }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let own: Value = response.json().await.unwrap();
        assert_eq!(
            status_with(
                &app,
                &ingest,
                Method::GET,
                &format!("/contacts/{}", own["id"])
            )
            .await,
            StatusCode::OK
        );
        // Someone else's contact does not exist for an ingest key, however its id is written.
        let other = admin_contact["id"].as_i64().unwrap();
        let percent_encoded: String = other
            .to_string()
            .bytes()
            .map(|digit| format!("%{digit:02X}"))
            .collect();
        for path in [
            format!("/contacts/{other}"),
            format!("/contacts/{percent_encoded}"),
            format!("/contacts/{other}.0"),
        ] {
            assert_eq!(
                status_with(&app, &ingest, Method::GET, &path).await,
                StatusCode::NOT_FOUND,
                "{path}"
            );
            assert_eq!(
                status_with(&app, &ingest, Method::HEAD, &path).await,
                StatusCode::NOT_FOUND,
                "HEAD {path}"
            );
        }
        for (method, path) in [
            (Method::GET, "/operators/"),
            (Method::GET, "/contacts/"),
            (Method::POST, "/operators/"),
        ] {
            let (status, _) = call(
                &app,
                Some(&ingest),
                method.clone(),
                path,
                Some(json!({ "name": "x" })),
            )
            .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "ingest {method} {path}");
        }
        assert_eq!(
            status_with(
                &app,
                &ingest,
                Method::PATCH,
                &format!("/contacts/{}/status?status=closed", own["id"])
            )
            .await,
            StatusCode::FORBIDDEN
        );

        // Read: every GET, no write.
        let read = create_key(&app, "read", "dashboard");
        for path in [
            "/operators/",
            "/contacts/",
            &format!("/contacts/{}", own["id"]),
            &format!("/stats/sources/{source}"),
            "/metrics",
        ] {
            assert_eq!(
                status_with(&app, &read, Method::GET, path).await,
                StatusCode::OK,
                "read GET {path}"
            );
        }
        let (status, _) = call(
            &app,
            Some(&read),
            Method::POST,
            "/contacts/",
            Some(json!({ "source_id": source })),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // Public, key or not.
        for path in ["/healthz", "/readyz", "/openapi.json", "/docs/", "/redoc"] {
            let (status, _) = call(&app, None, Method::GET, path, None).await;
            assert_eq!(status, StatusCode::OK, "public {path}");
        }
        let (status, _) = call(&app, None, Method::GET, "/metrics", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // Revoked by name: refused from the next request on.
        keys(&app, &["revoke", "telegram-bot"]);
        let (status, _) = call(
            &app,
            Some(&ingest),
            Method::POST,
            "/contacts/",
            Some(json!({ "source_id": source })),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // The list names the keys and never shows a token.
        let listed = keys(&app, &["list"]);
        for expected in [
            "ops team",
            "telegram-bot",
            "dashboard",
            "admin",
            "ingest",
            "read",
        ] {
            assert!(listed.contains(expected), "{listed}");
        }
        for token in [&admin, &ingest, &read] {
            assert!(!listed.contains(token.as_str()));
        }
    }
);

backend_test!(revoking_every_key_keeps_the_api_closed, |app| {
    let admin = create_key(&app, "admin", "only");
    assert_eq!(app.get("/operators/").await.0, StatusCode::UNAUTHORIZED);
    let listed = keys(&app, &["list"]);
    let id = listed
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    keys(&app, &["revoke", &id]);
    // Revoking a leaked key must not make the API anonymous: once a key existed, it stays closed.
    assert_eq!(app.get("/operators/").await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = app.call(Method::DELETE, "/operators/1", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        status_with(&app, &admin, Method::GET, "/operators/").await,
        StatusCode::UNAUTHORIZED
    );
});

backend_test!(idempotency_keys_belong_to_their_api_key, |app| {
    let admin = create_key(&app, "admin", "admin");
    let source = call_ok(
        &app,
        Some(&admin),
        Method::POST,
        "/sources/",
        Some(json!({ "name": "bot" })),
    )
    .await;
    let body = json!({ "source_id": source["id"], "lead_external_id": "same" });
    let mut ids = Vec::new();
    for token in [
        create_key(&app, "ingest", "bot a"),
        create_key(&app, "ingest", "bot b"),
    ] {
        let response = app
            .client
            .post(app.url("/contacts/"))
            .bearer_auth(&token)
            .header("Idempotency-Key", "delivery-1")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        ids.push(response.json::<Value>().await.unwrap()["id"].clone());
    }
    assert_ne!(ids[0], ids[1], "two clients' equal keys do not collide");
});

backend_test!(the_openapi_document_declares_the_keys, |app| {
    // Once a key exists (before, the API is open and its document says so: tests/edges.rs).
    create_key(&app, "read", "dashboard");
    let document = app.get_ok("/openapi.json").await;
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    let operation = &document["paths"]["/operators"]["post"];
    assert!(operation["responses"]["401"].is_object() && operation["responses"]["403"].is_object());
    assert_eq!(
        document["paths"]["/healthz"]["get"]["security"],
        json!([{}])
    );
});
