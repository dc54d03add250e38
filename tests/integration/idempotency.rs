//! Idempotent ingestion: a bot that retries a webhook with the same `Idempotency-Key` creates one contact.

use crate::common;

use common::TestApp;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Posts a contact with an idempotency key; returns the status, whether it was a replay, and the body.
async fn post_with_key(app: &TestApp, key: &str, body: &Value) -> (StatusCode, bool, Value) {
    let response = app
        .client
        .post(app.url("/contacts/"))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    (status, replayed, response.json().await.unwrap())
}

async fn contact_count(app: &TestApp) -> usize {
    app.count_of("/contacts/?limit=1000").await
}

async fn setup(app: &TestApp) -> (i64, i64) {
    let source = app.source("bot").await;
    let operator = app.operator("Ann", 5).await;
    app.link(source, operator, 1.0).await;
    (source, operator)
}

backend_test!(
    a_retry_with_the_same_key_replays_the_first_answer_and_creates_nothing,
    |app| {
        let (source, operator) = setup(&app).await;
        let body = json!({ "source_id": source, "lead_phone": "+79990001122", "message": "hi" });

        let (status, replayed, first) = post_with_key(&app, "webhook-1", &body).await;
        assert_eq!((status, replayed), (StatusCode::CREATED, false));
        let (status, replayed, again) = post_with_key(&app, "webhook-1", &body).await;
        assert_eq!((status, replayed), (StatusCode::CREATED, true));

        assert_eq!(again, first, "the replay is the first answer");
        assert_eq!(contact_count(&app).await, 1);
        let stats = app.operator_stats(operator).await;
        assert_eq!(
            stats["active_contacts_count"], 1,
            "the retry took no capacity"
        );
    }
);

backend_test!(
    the_same_request_spelled_differently_is_still_a_retry,
    |app| {
        let (source, _) = setup(&app).await;
        let first = json!({ "source_id": source, "lead_phone": "+7 999 000-11-22", "lead_email": "A@Example.com" });
        let same = json!({ "lead_email": "a@example.com ", "lead_phone": "89990001122", "source_id": source });

        let (status, replayed, created) = post_with_key(&app, "k", &first).await;
        assert_eq!(
            (status, replayed),
            (StatusCode::CREATED, false),
            "{created}"
        );
        let (status, replayed, replay) = post_with_key(&app, "k", &same).await;
        assert_eq!((status, replayed), (StatusCode::CREATED, true));
        assert_eq!(replay["id"], created["id"]);
    }
);

backend_test!(the_same_key_with_a_different_request_is_refused, |app| {
    let (source, _) = setup(&app).await;
    let (status, _, body) =
        post_with_key(&app, "k", &json!({ "source_id": source, "message": "one" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, _, body) =
        post_with_key(&app, "k", &json!({ "source_id": source, "message": "two" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("Idempotency-Key"),
        "{body}"
    );
    assert_eq!(contact_count(&app).await, 1);
});

backend_test!(different_keys_make_different_contacts, |app| {
    let (source, _) = setup(&app).await;
    let body = json!({ "source_id": source, "lead_external_id": "tg-1" });
    let (status, replayed, one) = post_with_key(&app, "a", &body).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false), "{one}");
    let (status, replayed, two) = post_with_key(&app, "b", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{two}");
    assert!(!replayed);
    assert_ne!(one["id"], two["id"]);
    assert_eq!(one["lead_id"], two["lead_id"], "still one lead");
});

backend_test!(racing_retries_create_exactly_one_contact, |app| {
    let (source, operator) = setup(&app).await;
    let body = json!({ "source_id": source, "lead_external_id": "racer" });

    let answers = join_all((0..32).map(|_| post_with_key(&app, "same-webhook", &body))).await;

    assert!(
        answers
            .iter()
            .all(|(status, _, _)| *status == StatusCode::CREATED),
        "{answers:?}"
    );
    let id = &answers[0].2["id"];
    assert!(answers.iter().all(|(_, _, contact)| &contact["id"] == id));
    assert_eq!(
        answers.iter().filter(|(_, replayed, _)| !replayed).count(),
        1,
        "one creation, 31 replays"
    );
    assert_eq!(contact_count(&app).await, 1);
    let stats = app.operator_stats(operator).await;
    assert_eq!(stats["active_contacts_count"], 1);
});

backend_test!(malformed_keys_are_refused, |app| {
    let (source, _) = setup(&app).await;
    let body = json!({ "source_id": source });
    for key in ["", "   ", &"k".repeat(256), "ключ"] {
        let response = app
            .client
            .post(app.url("/contacts/"))
            .header(
                "Idempotency-Key",
                reqwest::header::HeaderValue::from_bytes(key.as_bytes()).unwrap(),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "key {key:?}"
        );
    }
    assert_eq!(contact_count(&app).await, 0);
});
