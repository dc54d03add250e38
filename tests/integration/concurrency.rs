//! The invariants under concurrent requests: max_load is never exceeded, one lead per identity, and status
//! changes move each unit of load exactly once.

use crate::common;

use common::TestApp;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Fires all the bodies at POST /contacts/ at once and returns every answer.
async fn post_all(app: &TestApp, bodies: Vec<Value>) -> Vec<(StatusCode, Value)> {
    join_all(bodies.into_iter().map(|body| app.post("/contacts/", body))).await
}

backend_test!(
    sixty_four_concurrent_contacts_never_push_an_operator_over_max_load,
    |app| {
        let source = app.source("burst").await;
        let operator = app.operator("only one", 5).await;
        app.link(source, operator, 1.0).await;

        let answers = post_all(
            &app,
            (0..64).map(|_| json!({ "source_id": source })).collect(),
        )
        .await;

        assert!(
            answers
                .iter()
                .all(|(status, _)| *status == StatusCode::CREATED),
            "{answers:?}"
        );
        let assigned = answers
            .iter()
            .filter(|(_, c)| c["operator_id"] == operator)
            .count();
        assert_eq!(assigned, 5);
        assert_eq!(app.load_of(operator).await, 5);
        let unassigned = app
            .get_ok(&format!(
                "/contacts/?source_id={source}&unassigned=true&limit=1000"
            ))
            .await;
        assert_eq!(unassigned.as_array().unwrap().len(), 59);
    }
);

backend_test!(
    concurrent_contacts_fill_several_operators_exactly_to_capacity,
    |app| {
        let source = app.source("burst").await;
        let mut operators = Vec::new();
        for (name, max_load, weight) in [("a", 3, 1.0), ("b", 7, 5.0), ("c", 11, 0.5)] {
            let id = app.operator(name, max_load).await;
            app.link(source, id, weight).await;
            operators.push((id, max_load));
        }

        let answers = post_all(
            &app,
            (0..100).map(|_| json!({ "source_id": source })).collect(),
        )
        .await;

        assert!(
            answers
                .iter()
                .all(|(status, _)| *status == StatusCode::CREATED)
        );
        for (operator, max_load) in operators {
            let held = answers
                .iter()
                .filter(|(_, c)| c["operator_id"] == operator)
                .count() as i64;
            assert_eq!(held, max_load, "operator {operator}");
            assert_eq!(app.load_of(operator).await, max_load);
        }
        let stats = app.get_ok(&format!("/stats/sources/{source}")).await;
        assert_eq!(stats["total_contacts"], 100);
        assert_eq!(stats["assigned_contacts"], 21);
        assert_eq!(stats["unassigned_contacts"], 79);
    }
);

backend_test!(
    thirty_two_concurrent_contacts_of_one_new_lead_make_one_lead,
    |app| {
        let source = app.source("burst").await;
        let body = json!({
            "source_id": source,
            "lead_external_id": "tg-42",
            "lead_phone": "+7 999 765-43-21",
            "lead_email": "Same@Example.com",
        });

        let answers = post_all(&app, vec![body; 32]).await;

        assert!(
            answers
                .iter()
                .all(|(status, _)| *status == StatusCode::CREATED),
            "{answers:?}"
        );
        let lead_id = &answers[0].1["lead_id"];
        assert!(answers.iter().all(|(_, c)| &c["lead_id"] == lead_id));
        let leads = app.get_ok("/leads/").await;
        assert_eq!(leads.as_array().unwrap().len(), 1, "{leads}");
        let detail = app.get_ok(&format!("/leads/{lead_id}")).await;
        assert_eq!(detail["contacts"].as_array().unwrap().len(), 32);
    }
);

backend_test!(
    concurrent_contacts_of_one_new_phone_in_different_notations_make_one_lead,
    |app| {
        let source = app.source("burst").await;
        let notations = [
            "8 999 111-22-33",
            "+7 (999) 111-22-33",
            "+79991112233",
            "89991112233",
        ];
        let bodies = (0..32)
            .map(|i| json!({ "source_id": source, "lead_phone": notations[i % notations.len()] }))
            .collect();

        let answers = post_all(&app, bodies).await;

        assert!(
            answers
                .iter()
                .all(|(status, _)| *status == StatusCode::CREATED)
        );
        let leads = app.get_ok("/leads/?phone=%2B79991112233").await;
        assert_eq!(leads.as_array().unwrap().len(), 1);
        let all = app.get_ok("/leads/").await;
        assert_eq!(all.as_array().unwrap().len(), 1);
    }
);

backend_test!(concurrent_closes_of_one_contact_free_its_slot_once, |app| {
    let source = app.source("s").await;
    let operator = app.operator("o", 10).await;
    app.link(source, operator, 1.0).await;
    let first = app.contact(json!({ "source_id": source })).await;
    app.contact(json!({ "source_id": source })).await;
    let id = first["id"].as_i64().unwrap();

    let path = format!("/contacts/{id}/status");
    let answers = join_all((0..20).map(|i| {
        let status = if i % 2 == 0 { "closed" } else { "done" };
        app.call(
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "status": status })),
        )
    }))
    .await;

    assert!(answers.iter().all(|(status, _)| *status == StatusCode::OK));
    assert_eq!(app.load_of(operator).await, 1);
    let stats = app.operator_stats(operator).await;
    assert_eq!(stats["total_contacts"], 2, "{stats}");
});

backend_test!(
    concurrent_reopens_and_closes_keep_the_load_equal_to_the_active_contacts,
    |app| {
        let source = app.source("s").await;
        let operator = app.operator("o", 50).await;
        app.link(source, operator, 1.0).await;
        let mut ids = Vec::new();
        for _ in 0..10 {
            ids.push(
                app.contact(json!({ "source_id": source })).await["id"]
                    .as_i64()
                    .unwrap(),
            );
        }

        let changes = ids.iter().flat_map(|id| {
            ["closed", "active", "closed", "active", "spam"]
                .map(|status| app.set_status(*id, status))
        });
        join_all(changes).await;

        app.load_of(operator).await;
        let stats = app.operator_stats(operator).await;
        assert_eq!(stats["total_contacts"], 10);
    }
);
