//! Bad input: every client mistake is a 4xx with a JSON body `{"detail": string}`, never a 5xx, and the server
//! keeps serving. Also: collection paths answer with and without their trailing slash, without a redirect.

use crate::common;

use common::{TestApp, assert_error, assert_unprocessable};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Sends a body as it is, with the given content type (none when `None`).
async fn send_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path)).body(body);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let bytes = response.bytes().await.expect("response body");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        panic!(
            "{path}: {status} body is not JSON: {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, body)
}

/// Sends a body as it is, as `application/json`.
async fn send_json_text(
    app: &TestApp,
    method: Method,
    path: &str,
    body: &str,
) -> (StatusCode, Value) {
    send_raw(app, method, path, Some("application/json"), body.to_owned()).await
}

/// The server still answers normally.
async fn assert_still_serving(app: &TestApp) {
    let (status, body) = app.get("/operators/").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.is_array());
}

backend_test!(malformed_json_is_refused, |app| {
    for body in [
        "{\"name\": ",
        "{name: 1}",
        "not json",
        "",
        "{\"name\": \"a\"} trailing",
    ] {
        let (status, answer) = send_json_text(&app, Method::POST, "/operators/", body).await;
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
            "{body:?}: {status} {answer}"
        );
        assert!(answer["detail"].is_string(), "{body:?}: {answer}");
    }
    for body in ["[]", "null", "42", "\"name\""] {
        let answer = send_json_text(&app, Method::POST, "/operators/", body).await;
        assert_unprocessable(&answer, &format!("top-level {body}"));
    }
    assert_eq!(
        app.get_ok("/operators/").await,
        json!([]),
        "nothing created"
    );
    assert_still_serving(&app).await;
});

backend_test!(wrong_types_are_refused, |app| {
    let source = app.source("Telegram Bot").await;
    let operator = app.operator("Анна", 5).await;
    let cases = [
        ("/operators/", json!({ "name": "a", "max_load": "5" })),
        ("/operators/", json!({ "name": "a", "is_active": "yes" })),
        ("/operators/", json!({ "name": 5 })),
        ("/operators/", json!({ "name": "a", "max_load": 1.5 })),
        ("/sources/", json!({ "name": ["a"] })),
        ("/contacts/", json!({ "source_id": source.to_string() })),
        (
            "/contacts/",
            json!({ "source_id": source, "lead_phone": 79991234567_i64 }),
        ),
    ];
    for (path, body) in cases {
        assert_unprocessable(
            &app.post(path, body.clone()).await,
            &format!("{path} {body}"),
        );
    }
    let answer = app
        .patch(
            &format!("/operators/{operator}"),
            json!({ "is_active": "yes" }),
        )
        .await;
    assert_unprocessable(&answer, "PATCH is_active: \"yes\"");
    assert_still_serving(&app).await;
});

backend_test!(missing_required_fields_are_refused, |app| {
    let source = app.source("Telegram Bot").await;
    let operator = app.operator("Анна", 5).await;
    let cases = [
        ("/operators/", json!({ "max_load": 5 })),
        ("/sources/", json!({ "description": "no name" })),
        ("/contacts/", json!({ "lead_external_id": "u" })),
    ];
    for (path, body) in cases {
        assert_unprocessable(
            &app.post(path, body.clone()).await,
            &format!("{path} {body}"),
        );
    }
    let answer = app
        .post(
            &format!("/sources/{source}/operators"),
            json!({ "weight": 2 }),
        )
        .await;
    assert_unprocessable(&answer, "link without operator_id");
    let answer = app
        .patch(
            &format!("/sources/{source}/operators/{operator}"),
            json!({}),
        )
        .await;
    assert_unprocessable(&answer, "weight PATCH without weight");
});

backend_test!(names_are_limited_to_255_characters, |app| {
    let ok = "я".repeat(255);
    let long = "я".repeat(256);

    let (status, operator) = app.post("/operators/", json!({ "name": ok })).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "255 Cyrillic characters: {operator}"
    );
    assert_eq!(operator["name"], ok);
    assert_unprocessable(
        &app.post("/operators/", json!({ "name": long })).await,
        "operator name of 256",
    );
    assert_unprocessable(
        &app.patch(
            &format!("/operators/{}", operator["id"]),
            json!({ "name": long }),
        )
        .await,
        "PATCH operator name of 256",
    );

    let (status, _) = app.post("/sources/", json!({ "name": ok })).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_unprocessable(
        &app.post("/sources/", json!({ "name": long })).await,
        "source name of 256",
    );

    for empty in ["", "   "] {
        assert_unprocessable(
            &app.post("/operators/", json!({ "name": empty })).await,
            &format!("operator name {empty:?}"),
        );
    }
});

backend_test!(messages_are_limited_to_10000_characters, |app| {
    let source = app.source("Telegram Bot").await;
    let ok = "ж".repeat(10_000);
    let contact = app
        .contact(json!({ "source_id": source, "message": ok }))
        .await;
    assert_eq!(contact["message"], ok);
    let answer = app
        .post(
            "/contacts/",
            json!({ "source_id": source, "message": "ж".repeat(10_001) }),
        )
        .await;
    assert_unprocessable(&answer, "message of 10,001");
    let contacts = app.get_ok("/contacts/").await;
    assert_eq!(contacts.as_array().unwrap().len(), 1, "only the valid one");
});

backend_test!(a_body_over_one_mebibyte_is_refused_with_413, |app| {
    let source = app.source("Telegram Bot").await;
    let huge = json!({ "source_id": source, "message": "x".repeat(1024 * 1024 + 1) }).to_string();
    let answer = send_json_text(&app, Method::POST, "/contacts/", &huge).await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "1 MiB + 1 contact");
    let huge = json!({ "name": "x".repeat(2 * 1024 * 1024) }).to_string();
    let answer = send_json_text(&app, Method::POST, "/operators/", &huge).await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "2 MiB operator");
    assert_still_serving(&app).await;
});

backend_test!(a_body_that_is_not_json_is_refused_with_415, |app| {
    let body = json!({ "name": "Анна" }).to_string();
    let answer = send_raw(
        &app,
        Method::POST,
        "/operators/",
        Some("text/plain"),
        body.clone(),
    )
    .await;
    assert_error(&answer, StatusCode::UNSUPPORTED_MEDIA_TYPE, "text/plain");
    let answer = send_raw(&app, Method::POST, "/operators/", None, body).await;
    assert_error(
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "no content type",
    );
    assert_eq!(
        app.get_ok("/operators/").await,
        json!([]),
        "nothing created"
    );
});

backend_test!(unknown_paths_and_methods_answer_json, |app| {
    for path in ["/nowhere", "/operators/1/nothing", "/stats/sources"] {
        assert_error(&app.get(path).await, StatusCode::NOT_FOUND, path);
    }
    let operator = app.operator("Анна", 5).await;
    let cases = [
        (Method::PUT, format!("/operators/{operator}")),
        (Method::DELETE, "/operators/".to_owned()),
        (Method::POST, format!("/operators/{operator}")),
        (Method::GET, format!("/contacts/{operator}/status")),
    ];
    for (method, path) in cases {
        let answer = app.call(method.clone(), &path, None).await;
        assert_error(
            &answer,
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{method} {path}"),
        );
    }
});

backend_test!(invalid_ids_in_the_path_are_refused, |app| {
    for path in [
        "/operators/abc",
        "/operators/1.5",
        "/operators/99999999999999999999",
        "/operators/abc/stats",
        "/sources/abc",
        "/contacts/abc",
        "/leads/abc",
        "/stats/sources/99999999999999999999",
    ] {
        assert_unprocessable(&app.get(path).await, path);
    }
    assert_unprocessable(
        &app.call(Method::PATCH, "/contacts/abc/status?status=closed", None)
            .await,
        "PATCH /contacts/abc/status",
    );
    assert_unprocessable(&app.delete("/operators/abc").await, "DELETE /operators/abc");
    assert_unprocessable(
        &app.patch("/sources/1/operators/abc", json!({ "weight": 2 }))
            .await,
        "PATCH /sources/1/operators/abc",
    );
});

backend_test!(invalid_query_parameters_are_refused, |app| {
    for path in [
        "/contacts/?source_id=abc",
        "/contacts/?unassigned=maybe",
        "/contacts/?lead_id=99999999999999999999",
        "/operators/?limit=abc",
        "/sources/?skip=-1",
        "/leads/?limit=1001",
    ] {
        assert_unprocessable(&app.get(path).await, path);
    }
});

backend_test!(out_of_range_numbers_are_refused, |app| {
    for max_load in [json!(-1), json!(1_000_001), json!(i64::MIN), json!(1e30)] {
        assert_unprocessable(
            &app.post("/operators/", json!({ "name": "a", "max_load": max_load }))
                .await,
            &format!("max_load {max_load}"),
        );
    }
    let operator = app.operator("Анна", 1_000_000).await;
    assert_unprocessable(
        &app.patch(&format!("/operators/{operator}"), json!({ "max_load": -1 }))
            .await,
        "PATCH max_load -1",
    );
    let source = app.source("Telegram Bot").await;
    let link = format!("/sources/{source}/operators");
    let answer = send_json_text(
        &app,
        Method::POST,
        &link,
        &format!(r#"{{"operator_id": {operator}, "weight": 1e400}}"#),
    )
    .await;
    assert_unprocessable(&answer, "weight 1e400");
    let answer = send_json_text(
        &app,
        Method::POST,
        &link,
        r#"{"operator_id": 99999999999999999999, "weight": 1}"#,
    )
    .await;
    assert_unprocessable(&answer, "operator_id past i64");
    let answer = send_json_text(
        &app,
        Method::POST,
        "/contacts/",
        r#"{"source_id": 99999999999999999999}"#,
    )
    .await;
    assert_unprocessable(&answer, "source_id past i64");
    let detail = app.get_ok(&format!("/sources/{source}")).await;
    assert_eq!(detail["operator_weights"], json!([]));
    assert_still_serving(&app).await;
});

backend_test!(
    collection_paths_answer_with_and_without_a_trailing_slash,
    |app| {
        let source = app.source("Telegram Bot").await;
        app.contact(json!({ "source_id": source, "lead_external_id": "u" }))
            .await;
        for collection in ["/operators", "/sources", "/contacts", "/leads"] {
            let (bare, bare_body) = app.get(collection).await;
            let (slashed, slashed_body) = app.get(&format!("{collection}/")).await;
            assert_eq!(bare, StatusCode::OK, "{collection}: {bare_body}");
            assert_eq!(slashed, StatusCode::OK, "{collection}/: {slashed_body}");
            assert_eq!(bare_body, slashed_body, "{collection}");
        }
        let (status, operator) = app.post("/operators", json!({ "name": "без слэша" })).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = app.post("/sources", json!({ "name": "без слэша" })).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = app.post("/contacts", json!({ "source_id": source })).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = app
            .post(
                &format!("/sources/{source}/operators/"),
                json!({ "operator_id": operator["id"] }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, body) = app.get(&format!("/contacts/?source_id={source}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body.as_array().unwrap().len(),
            2,
            "the query survives the slash"
        );
    }
);

backend_test!(nul_characters_are_refused_alike_on_both_backends, |app| {
    let source = app.source("bot").await;
    for (path, body) in [
        ("/operators/", json!({ "name": "a\u{0}b" })),
        ("/sources/", json!({ "name": "a\u{0}b" })),
        (
            "/contacts/",
            json!({ "source_id": source, "lead_external_id": "x\u{0}" }),
        ),
        (
            "/contacts/",
            json!({ "source_id": source, "message": "hello\u{0}" }),
        ),
        (
            "/contacts/",
            json!({ "source_id": source, "lead_name": "\u{0}" }),
        ),
    ] {
        let answer = app.post(path, body.clone()).await;
        assert_unprocessable(&answer, &format!("POST {path} {body}"));
    }
    for path in ["/leads/?external_id=%00", "/contacts/?status=a%00"] {
        assert_unprocessable(&app.get(path).await, path);
    }
    assert_still_serving(&app).await;
});

backend_test!(
    ids_written_with_a_zero_fraction_are_read_as_integers,
    |app| {
        let operator = app.operator("Ann", 3).await;
        let (status, body) = app.get(&format!("/operators/{operator}.0")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["id"], operator);
        let (status, _) = app.get(&format!("/operators/{operator}.5")).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "a real fraction is still refused"
        );
    }
);
