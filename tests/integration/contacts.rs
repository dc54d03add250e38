//! `/contacts`: registering a contact (its shape, who gets it), changing its status, listing with filters and
//! paging, and fetching one.

use crate::common;

use common::{TestApp, assert_unprocessable, field_names, id_of, ids};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The ids `GET /contacts/?{query}` answers, in order.
async fn listed(app: &TestApp, query: &str) -> Vec<i64> {
    let (status, list) = app.get(&format!("/contacts/?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {list}");
    ids(&list)
}

fn status_path(contact_id: i64) -> String {
    format!("/contacts/{contact_id}/status")
}

backend_test!(a_new_contact_is_returned_whole_with_201, |app| {
    let (source, operator) = app.source_with_operator("Анна", 5).await;
    let (status, contact) = app
        .post(
            "/contacts/",
            json!({
                "source_id": source,
                "lead_external_id": "user123",
                "lead_name": "Иван",
                "message": "Здравствуйте"
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{contact}");
    assert_eq!(
        field_names(&contact),
        [
            "accepted_at",
            "assigned_at",
            "created_at",
            "eta_seconds",
            "id",
            "lead",
            "lead_id",
            "message",
            "operator",
            "operator_id",
            "queue_position",
            "source",
            "source_id",
            "status"
        ]
    );
    assert!(contact["id"].is_i64());
    assert_eq!(contact["status"], "active");
    assert_eq!(contact["message"], "Здравствуйте");
    assert!(contact["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(contact["assigned_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(contact["accepted_at"], Value::Null);

    assert_eq!(
        field_names(&contact["lead"]),
        ["created_at", "email", "external_id", "id", "name", "phone"]
    );
    assert_eq!(contact["lead"]["id"], contact["lead_id"]);
    assert_eq!(contact["lead"]["external_id"], "user123");
    assert_eq!(contact["lead"]["name"], "Иван");

    assert_eq!(
        field_names(&contact["source"]),
        ["created_at", "description", "id", "name"],
        "a contact shows its source's own fields, not its work rules"
    );
    assert_eq!(contact["source"]["id"], source);
    assert_eq!(contact["source_id"], source);

    assert_eq!(
        field_names(&contact["operator"]),
        ["created_at", "id", "is_active", "max_load", "name"]
    );
    assert_eq!(contact["operator_id"], operator);
    assert_eq!(contact["operator"]["id"], operator);
    assert_eq!(contact["operator"]["name"], "Анна");
});

backend_test!(a_contact_through_an_unknown_source_is_not_found, |app| {
    let source = app.source("Telegram Bot").await;
    let (status, body) = app
        .post("/contacts/", json!({ "source_id": source + 1000 }))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["detail"].is_string());
    let leads = app.get_ok("/leads/").await;
    assert_eq!(leads, json!([]), "no lead was created for it");
});

backend_test!(without_linked_operators_the_contact_is_unassigned, |app| {
    let source = app.source("Telegram Bot").await;
    app.operator("Не привязан", 5).await;
    let contact = app.contact_through(source).await;
    assert_eq!(contact["operator_id"], Value::Null);
    assert_eq!(contact["operator"], Value::Null);
    assert_eq!(contact["status"], "active");
});

backend_test!(an_inactive_operator_is_never_picked, |app| {
    let source = app.source("Telegram Bot").await;
    let inactive = app
        .post_ok(
            "/operators/",
            json!({ "name": "В отпуске", "is_active": false, "max_load": 100 }),
        )
        .await;
    let inactive = id_of(&inactive);
    let active = app.operator("На смене", 100).await;
    app.link(source, inactive, 1000.0).await;
    app.link(source, active, 1.0).await;
    for _ in 0..20 {
        let contact = app.contact_through(source).await;
        assert_eq!(contact["operator_id"], active);
    }
});

backend_test!(an_operator_deactivated_later_is_not_picked, |app| {
    let (source, operator) = app.source_with_operator("Анна", 5).await;
    app.change_operator(operator, json!({ "is_active": false }))
        .await;
    let contact = app.contact_through(source).await;
    assert_eq!(contact["operator_id"], Value::Null);
});

backend_test!(an_operator_with_max_load_zero_is_never_picked, |app| {
    let source = app.source("Telegram Bot").await;
    let zero = app.operator("Ноль", 0).await;
    app.link(source, zero, 1000.0).await;
    for _ in 0..5 {
        let contact = app.contact_through(source).await;
        assert_eq!(contact["operator_id"], Value::Null);
    }
    let other = app.operator("Другой", 100).await;
    app.link(source, other, 1.0).await;
    for _ in 0..10 {
        let contact = app.contact_through(source).await;
        assert_eq!(contact["operator_id"], other);
    }
});

backend_test!(
    a_full_operator_is_not_picked_until_a_contact_is_closed,
    |app| {
        let (source, operator) = app.source_with_operator("Анна", 1).await;
        let first = app.contact_through(source).await;
        assert_eq!(first["operator_id"], operator);

        let second = app.contact_through(source).await;
        assert_eq!(second["operator_id"], Value::Null, "the operator is full");
        assert_eq!(second["status"], "active");

        let closed = app.set_status(id_of(&first), "closed").await;
        assert_eq!(closed["status"], "closed");
        assert_eq!(
            closed["operator_id"], operator,
            "closing keeps the operator"
        );

        let second = app.get_ok(&format!("/contacts/{}", id_of(&second))).await;
        assert_eq!(
            second["operator_id"], operator,
            "the freed slot went to the contact waiting"
        );
        let third = app.contact_through(source).await;
        assert_eq!(third["operator_id"], Value::Null, "and was taken again");
    }
);

backend_test!(the_status_can_be_given_as_a_json_body, |app| {
    let (source, operator) = app.source_with_operator("Анна", 1).await;
    let contact = app.contact_through(source).await;
    let (status, changed) = app
        .patch(&status_path(id_of(&contact)), json!({ "status": "closed" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["status"], "closed");
    assert_eq!(changed["id"], contact["id"]);
    let fetched = app.get_ok(&format!("/contacts/{}", contact["id"])).await;
    assert_eq!(fetched["status"], "closed");
    let next = app.contact_through(source).await;
    assert_eq!(next["operator_id"], operator, "the slot was freed");
});

backend_test!(the_same_status_in_query_and_body_is_accepted, |app| {
    let (source, _) = app.source_with_operator("Анна", 1).await;
    let contact = app.contact_through(source).await;
    let (status, changed) = app
        .call(
            Method::PATCH,
            &format!("{}?status=closed", status_path(id_of(&contact))),
            Some(json!({ "status": "closed" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["status"], "closed");
});

backend_test!(invalid_status_changes_are_refused, |app| {
    let (source, _) = app.source_with_operator("Анна", 5).await;
    let contact = app.contact_through(source).await;
    let path = status_path(id_of(&contact));
    let long = "x".repeat(33);
    let cases = [
        ("no status", path.clone(), None),
        ("empty query status", format!("{path}?status="), None),
        (
            "empty body status",
            path.clone(),
            Some(json!({ "status": "" })),
        ),
        ("33 characters", format!("{path}?status={long}"), None),
        (
            "query and body disagree",
            format!("{path}?status=closed"),
            Some(json!({ "status": "won" })),
        ),
    ];
    for (what, path, body) in cases {
        let answer = app.call(Method::PATCH, &path, body).await;
        assert_unprocessable(&answer, what);
    }
    let fetched = app.get_ok(&format!("/contacts/{}", contact["id"])).await;
    assert_eq!(fetched["status"], "active", "nothing changed");

    let ok = app.set_status(id_of(&contact), &"x".repeat(32)).await;
    assert_eq!(ok["status"], "x".repeat(32), "32 characters are fine");
});

backend_test!(
    changing_the_status_of_an_unknown_contact_is_not_found,
    |app| {
        let (source, _) = app.source_with_operator("Анна", 5).await;
        let contact = app.contact_through(source).await;
        let (status, body) = app
            .call(
                Method::PATCH,
                &format!("{}?status=closed", status_path(id_of(&contact) + 1000)),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(body["detail"].is_string());
        let (status, body) = app
            .get(&format!("/contacts/{}", id_of(&contact) + 1000))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(body["detail"].is_string());
    }
);

backend_test!(
    contacts_are_filtered_by_lead_source_operator_status_and_assignment,
    |app| {
        let telegram = app.source("Telegram Bot").await;
        let whatsapp = app.source("WhatsApp").await;
        let operator = app.operator("Анна", 2).await;
        app.link(telegram, operator, 1.0).await;

        // Telegram: two for Анна (the second by lead "a"), then one unassigned; WhatsApp: one unassigned.
        let t1 = app.contact(json!({ "source_id": telegram })).await;
        let t2 = app
            .contact(json!({ "source_id": telegram, "lead_external_id": "a" }))
            .await;
        let t3 = app
            .contact(json!({ "source_id": telegram, "lead_external_id": "a" }))
            .await;
        let w1 = app
            .contact(json!({ "source_id": whatsapp, "lead_external_id": "a" }))
            .await;
        assert_eq!(t1["operator_id"], operator);
        assert_eq!(t2["operator_id"], operator);
        assert_eq!(t3["operator_id"], Value::Null);
        // Inactive, Анна does not take t3 (which waits) when t1 closes.
        app.change_operator(operator, json!({ "is_active": false }))
            .await;
        app.set_status(id_of(&t1), "closed").await;
        let [t1, t2, t3, w1] = [&t1, &t2, &t3, &w1].map(id_of);

        let lead_a = app.get_ok(&format!("/contacts/{t2}")).await["lead_id"].clone();

        assert_eq!(listed(&app, "").await, vec![w1, t3, t2, t1]);
        assert_eq!(
            listed(&app, &format!("lead_id={lead_a}")).await,
            vec![w1, t3, t2]
        );
        assert_eq!(
            listed(&app, &format!("source_id={telegram}")).await,
            vec![t3, t2, t1]
        );
        assert_eq!(
            listed(&app, &format!("operator_id={operator}")).await,
            vec![t2, t1]
        );
        assert_eq!(listed(&app, "status=closed").await, vec![t1]);
        assert_eq!(listed(&app, "status=active").await, vec![w1, t3, t2]);
        assert_eq!(listed(&app, "unassigned=true").await, vec![w1, t3]);
        assert_eq!(listed(&app, "unassigned=false").await, vec![t2, t1]);
        assert_eq!(
            listed(
                &app,
                &format!("lead_id={lead_a}&source_id={telegram}&unassigned=true")
            )
            .await,
            vec![t3]
        );
        assert_eq!(listed(&app, "status=nobody").await, Vec::<i64>::new());
    }
);

backend_test!(
    contacts_are_listed_newest_first_with_skip_and_limit,
    |app| {
        let source = app.source("Telegram Bot").await;
        let mut created = Vec::new();
        for _ in 0..5 {
            created.push(id_of(&app.contact_through(source).await));
        }
        created.reverse();

        let all = app.get_ok("/contacts/").await;
        assert_eq!(ids(&all), created, "descending ids");
        let page = app.get_ok("/contacts/?skip=1&limit=2").await;
        assert_eq!(ids(&page), created[1..3].to_vec());
        let last = app.get_ok("/contacts/?skip=4&limit=10").await;
        assert_eq!(ids(&last), created[4..].to_vec());
        let (status, max) = app.get("/contacts/?limit=1000").await;
        assert_eq!(status, StatusCode::OK, "{max}");
        assert_eq!(ids(&max), created);
    }
);

backend_test!(out_of_range_paging_is_refused, |app| {
    for query in ["limit=0", "limit=1001", "skip=-1", "limit=abc"] {
        let answer = app.get(&format!("/contacts/?{query}")).await;
        assert_unprocessable(&answer, query);
    }
});

backend_test!(a_contact_is_fetched_in_the_same_shape_as_created, |app| {
    let (source, _) = app.source_with_operator("Анна", 5).await;
    let created = app
        .contact(json!({
            "source_id": source,
            "lead_phone": "+79991234567",
            "lead_email": "ivan@example.com",
            "message": "Хочу узнать о продукте"
        }))
        .await;
    let (status, fetched) = app.get(&format!("/contacts/{}", created["id"])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);

    let unassigned_source = app.source("Без операторов").await;
    let created = app.contact_through(unassigned_source).await;
    let fetched = app.get_ok(&format!("/contacts/{}", created["id"])).await;
    assert_eq!(fetched, created);
    assert_eq!(fetched["operator"], Value::Null);
});
