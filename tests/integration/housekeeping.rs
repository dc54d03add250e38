//! Housekeeping: what expires is forgotten — webhook deliveries done with for a week (with their attempts and
//! events), and idempotency keys past their 24 hours. The purge runs as the server starts, then hourly.

use crate::common;

use std::time::Duration;

use common::TestApp;
use common::receiver::Receiver;
use reqwest::StatusCode;
use serde_json::json;

backend_test!(
    expired_deliveries_and_idempotency_keys_are_forgotten,
    |app| {
        let receiver = Receiver::start(0).await;
        let (status, webhook) = app
            .post(
                "/webhooks",
                json!({ "url": receiver.url(), "events": ["contact.created"] }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{webhook}");
        let deliveries = format!("/webhooks/{}/deliveries", webhook["id"]);
        let source = app.source("Telegram Bot").await;
        for key in ["first", "second"] {
            let response = app
                .client
                .post(app.url("/contacts/"))
                .header("Idempotency-Key", key)
                .json(&json!({ "source_id": source }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
        }
        let delivered = app
            .poll_get(&deliveries, Duration::from_secs(20), |list| {
                list.as_array()
                    .is_some_and(|l| l.len() == 2 && l.iter().all(|d| d["state"] == "delivered"))
            })
            .await;
        assert_eq!(delivered.as_array().map(Vec::len), Some(2), "{delivered}");

        // The first contact's delivery, event and key are made old; the second's stay recent.
        let old = "'2020-01-01T00:00:00+00:00'";
        for statement in [
            format!(
                "UPDATE webhook_deliveries SET created_at = {old} WHERE id = (SELECT MIN(id) FROM webhook_deliveries)"
            ),
            format!(
                "UPDATE webhook_events SET created_at = {old} WHERE id = (SELECT MIN(id) FROM webhook_events)"
            ),
            format!("UPDATE idempotency_keys SET created_at = {old} WHERE key = 'first'"),
        ] {
            app.sql_number(&statement).await;
        }
        let database = app.stop().await;
        let app = TestApp::spawn_on(database).await;

        let left = app
            .poll_get(&deliveries, Duration::from_secs(20), |list| {
                list.as_array().is_some_and(|l| l.len() == 1)
            })
            .await;
        assert_eq!(left.as_array().map(Vec::len), Some(1), "{left}");
        assert_eq!(
            left[0]["id"], delivered[0]["id"],
            "the recent delivery stays"
        );
        let events = app.sql_number("SELECT COUNT(*) FROM webhook_events").await;
        assert_eq!(events, Some(1), "the old event went with its delivery");
        let attempts = app
            .sql_number("SELECT COUNT(*) FROM webhook_attempts")
            .await;
        assert_eq!(attempts, Some(1), "and its attempts");
        let keys = app
            .sql_number("SELECT COUNT(*) FROM idempotency_keys")
            .await;
        assert_eq!(
            keys,
            Some(1),
            "the expired key is forgotten, the recent one kept"
        );
    }
);
