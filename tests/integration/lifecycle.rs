//! Start, stop and restart: what a 201 promised is still there afterwards.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::TestApp;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

backend_test!(
    every_acknowledged_contact_survives_a_graceful_stop_during_a_burst,
    |app| {
        let source = app.source("burst").await;
        let operator = app.operator("o", 1_000).await;
        app.link(source, operator, 1.0).await;

        // Requests race the shutdown: each either gets its 201 or never reaches the server, and no other answer.
        // The stop comes once a fifth of them are acknowledged, so that it lands in the middle of the burst.
        let acknowledged_so_far = Arc::new(AtomicUsize::new(0));
        let burst = (0..200).map(|i| {
            let request = app
                .client
                .post(app.url("/contacts/"))
                .json(&json!({ "source_id": source, "lead_external_id": format!("lead-{i}") }));
            let acknowledged_so_far = acknowledged_so_far.clone();
            tokio::spawn(async move {
                let response = request.send().await.ok()?;
                let answer = (
                    response.status(),
                    response.json::<serde_json::Value>().await.ok(),
                );
                acknowledged_so_far.fetch_add(1, Ordering::SeqCst);
                Some(answer)
            })
        });
        let burst: Vec<_> = burst.collect();
        while acknowledged_so_far.load(Ordering::SeqCst) < 40
            && !burst.iter().all(|task| task.is_finished())
        {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let database = app.stop().await;
        let answers: Vec<_> = join_all(burst)
            .await
            .into_iter()
            .map(|joined| joined.unwrap())
            .collect();

        let acknowledged: Vec<i64> = answers
            .iter()
            .flatten()
            .map(|(status, body)| {
                assert_eq!(*status, StatusCode::CREATED, "{body:?}");
                body.as_ref().unwrap()["id"].as_i64().unwrap()
            })
            .collect();
        assert!(
            acknowledged.len() >= 40,
            "the stop came mid-burst: {}",
            acknowledged.len()
        );

        let app = TestApp::spawn_on(database).await;
        for id in &acknowledged {
            let (status, contact) = app.get(&format!("/contacts/{id}")).await;
            assert_eq!(status, StatusCode::OK, "acknowledged contact {id} lost");
            assert_eq!(contact["source_id"], source);
        }
        let stats = app.operator_stats(operator).await;
        let all = app
            .get_ok(&format!("/contacts/?source_id={source}&limit=1000"))
            .await;
        assert_eq!(
            all.as_array().unwrap().len(),
            acknowledged.len(),
            "nothing unacknowledged was kept either"
        );
        assert_eq!(stats["active_contacts_count"], acknowledged.len());
    }
);

backend_test!(data_persists_across_a_restart_on_the_same_database, |app| {
    let source = app.source("Telegram").await;
    let operator = app.operator("Ann", 3).await;
    app.link(source, operator, 2.5).await;
    let contact = app
        .contact(json!({ "source_id": source, "lead_phone": "+79990001122" }))
        .await;
    let database = app.stop().await;

    let app = TestApp::spawn_on(database).await;
    let (status, again) = app.get(&format!("/contacts/{}", contact["id"])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, contact);
    let detail = app.get_ok(&format!("/sources/{source}")).await;
    assert_eq!(detail["operator_weights"][0]["weight"], 2.5);
    // The load counter survived too: two more contacts fill the operator, a third does not fit.
    app.contact(json!({ "source_id": source })).await;
    app.contact(json!({ "source_id": source })).await;
    let overflow = app.contact(json!({ "source_id": source })).await;
    assert_eq!(overflow["operator_id"], serde_json::Value::Null);
});
