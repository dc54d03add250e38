//! What the people who run leadrouter rely on: health, readiness, metrics, request ids and the request timeout.

mod common;

use common::{Backend, TestApp, TestDatabase};
use leadrouter::{Config, Server};
use reqwest::StatusCode;
use serde_json::json;

/// The value of one Prometheus sample, 0 when absent.
/// The metrics recorder is one per test process, shared by the SQLite and PostgreSQL halves of each test
/// (whose fresh databases number their sources alike): the tests that create contacts take turns, so that
/// one's before-and-after comparison does not count another's contacts.
static CONTACT_METRICS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn metric(app: &TestApp, sample: &str) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| {
            line.strip_prefix(sample)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

backend_test!(health_and_readiness_answer, |app| {
    let (status, body) = app.get("/healthz").await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "status": "ok" })));
    let (status, body) = app.get("/readyz").await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({ "status": "ready" }))
    );
});

backend_test!(every_response_carries_a_request_id, |app| {
    let mut seen = std::collections::HashSet::new();
    for path in ["/operators/", "/operators/999", "/nowhere"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let id = response
            .headers()
            .get("x-request-id")
            .expect("x-request-id")
            .to_str()
            .unwrap()
            .to_owned();
        assert!(seen.insert(id), "request ids are unique");
    }
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "from-the-proxy")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["x-request-id"],
        "from-the-proxy",
        "a caller's id is kept"
    );
});

backend_test!(
    metrics_count_requests_contacts_and_report_operator_load,
    |app| {
        let _turn = CONTACT_METRICS.lock().await;
        let source = app.source("bot").await;
        let operator = app.operator("Ann", 2).await;
        app.link(source, operator, 1.0).await;
        // The recorder is shared by every server of this test process: compare before and after.
        let created = format!("leadrouter_contacts_created_total{{source_id=\"{source}\"}}");
        let unassigned = format!("leadrouter_contacts_unassigned_total{{source_id=\"{source}\"}}");
        let (created_before, unassigned_before) = (
            metric(&app, &created).await,
            metric(&app, &unassigned).await,
        );

        for _ in 0..3 {
            app.contact(json!({ "source_id": source })).await;
        }

        assert_eq!(metric(&app, &created).await - created_before, 3.0);
        assert_eq!(
            metric(&app, &unassigned).await - unassigned_before,
            1.0,
            "max_load 2: the third waits"
        );
        let load = format!("leadrouter_operator_active_contacts{{operator_id=\"{operator}\"}}");
        assert_eq!(metric(&app, &load).await, 2.0);
        let max_load = format!("leadrouter_operator_max_load{{operator_id=\"{operator}\"}}");
        assert_eq!(metric(&app, &max_load).await, 2.0);
        let requests = "http_requests_total{method=\"POST\",route=\"/contacts\",status=\"201\"}";
        assert!(metric(&app, requests).await >= 3.0);
        let histogram = "http_request_duration_seconds_count{method=\"POST\",route=\"/contacts\"}";
        assert!(metric(&app, histogram).await >= 3.0);
    }
);

#[tokio::test]
async fn a_request_over_the_timeout_is_answered_503() {
    let _turn = CONTACT_METRICS.lock().await;
    let database = TestDatabase::new(Backend::Sqlite).await.unwrap();
    let mut config = Config::with_database_url(&database.url);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.request_timeout_secs = 1;
    let server = Server::start(&config).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let client = reqwest::Client::new();
    let source: serde_json::Value = client
        .post(format!("{base}/sources/"))
        .json(&json!({ "name": "bot" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // Another process holds the write lock (as a stalled disk would hold the writer): the write must wait.
    let lock = rusqlite::Connection::open(database.url.trim_start_matches("sqlite://")).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let response = client
        .post(format!("{base}/contacts/"))
        .json(&json!({ "source_id": source["id"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("longer than"),
        "{body}"
    );
    drop(lock);
    server.stop().await.unwrap();
}

backend_test!(metrics_count_contacts_assigned_from_the_queue, |app| {
    let _turn = CONTACT_METRICS.lock().await;
    let (source, _) = app.source_with_operator("Ann", 1).await;
    let busy = app.contact(json!({ "source_id": source })).await;
    app.contact(json!({ "source_id": source })).await;
    let assigned = "leadrouter_queue_assigned_total";
    let before = metric(&app, assigned).await;

    app.set_status(busy["id"].as_i64().unwrap(), "closed").await;

    // Other tests of this process may drain queues too: at least this one assignment is counted.
    assert!(metric(&app, assigned).await - before >= 1.0);
});
