//! `/operators`: create with defaults, list with paging, get, partial PATCH, DELETE (weights go, contacts stay
//! unassigned) and `/operators/{id}/stats`.

use crate::common;

use common::{id_of, ids};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

backend_test!(creating_an_operator_applies_the_defaults, |app| {
    let (status, operator) = app.post("/operators/", json!({ "name": "Анна" })).await;
    assert_eq!(status, StatusCode::CREATED, "{operator}");
    assert_eq!(operator["name"], "Анна");
    assert_eq!(operator["is_active"], true);
    assert_eq!(operator["max_load"], 10);
    assert!(operator["id"].is_i64());
    assert!(operator["created_at"].as_str().unwrap().ends_with('Z'));

    let (status, explicit) = app
        .post(
            "/operators/",
            json!({ "name": "Борис", "is_active": false, "max_load": 3 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(explicit["is_active"], false);
    assert_eq!(explicit["max_load"], 3);
});

backend_test!(
    operators_are_listed_oldest_first_with_skip_and_limit,
    |app| {
        let mut created = Vec::new();
        for name in ["a", "b", "c", "d"] {
            created.push(app.operator(name, 5).await);
        }

        let (status, all) = app.get("/operators/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ids(&all), created);

        let (status, page) = app.get("/operators/?skip=1&limit=2").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ids(&page), created[1..3].to_vec());

        let past_the_end = app.get_ok("/operators/?skip=10").await;
        assert_eq!(past_the_end, json!([]));
    }
);

backend_test!(an_operator_can_be_fetched_by_id, |app| {
    let created = app
        .post_ok("/operators/", json!({ "name": "Анна", "max_load": 7 }))
        .await;
    let id = created["id"].as_i64().unwrap();
    let (status, fetched) = app.get(&format!("/operators/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);
});

backend_test!(patch_changes_only_the_fields_given, |app| {
    let id = app.operator("Анна", 5).await;
    let path = format!("/operators/{id}");

    let (status, renamed) = app.patch(&path, json!({ "name": "Анна К." })).await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Анна К.");
    assert_eq!(renamed["is_active"], true);
    assert_eq!(renamed["max_load"], 5);

    let deactivated = app.patch_ok(&path, json!({ "is_active": false })).await;
    assert_eq!(deactivated["name"], "Анна К.");
    assert_eq!(deactivated["is_active"], false);
    assert_eq!(deactivated["max_load"], 5);

    let reloaded = app.patch_ok(&path, json!({ "max_load": 0 })).await;
    assert_eq!(reloaded["name"], "Анна К.");
    assert_eq!(reloaded["is_active"], false);
    assert_eq!(reloaded["max_load"], 0);

    let (status, unchanged) = app
        .patch(
            &path,
            json!({ "name": null, "is_active": null, "max_load": null }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{unchanged}");
    assert_eq!(unchanged, reloaded, "null keeps every value");

    let (status, empty) = app.patch(&path, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty, reloaded);

    let fetched = app.get_ok(&path).await;
    assert_eq!(fetched, reloaded, "the changes are stored");
});

backend_test!(deleting_an_operator_answers_204_and_then_404, |app| {
    let id = app.operator("Анна", 5).await;
    let (status, body) = app.delete(&format!("/operators/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null, "204 has no body");
    let (status, body) = app.get(&format!("/operators/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["detail"].is_string());
    let list = app.get_ok("/operators/").await;
    assert_eq!(list, json!([]));
});

backend_test!(deleting_an_operator_removes_its_weights, |app| {
    let source = app.source("Telegram Bot").await;
    let leaving = app.operator("Уходит", 5).await;
    let staying = app.operator("Остаётся", 5).await;
    app.link(source, leaving, 1.0).await;
    app.link(source, staying, 2.0).await;

    app.delete_ok(&format!("/operators/{leaving}")).await;

    let detail = app.get_ok(&format!("/sources/{source}")).await;
    let linked: Vec<i64> = detail["operator_weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["operator_id"].as_i64().unwrap())
        .collect();
    assert_eq!(linked, vec![staying]);
});

backend_test!(
    deleting_an_operator_unassigns_its_contacts_and_keeps_their_status,
    |app| {
        let (source, operator) = app.source_with_operator("Оператор", 5).await;
        let active = id_of(&app.contact_through(source).await);
        let closed = id_of(&app.contact_through(source).await);
        app.set_status(closed, "closed").await;

        let (status, _) = app.delete(&format!("/operators/{operator}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);

        let (status, still_active) = app.get(&format!("/contacts/{active}")).await;
        assert_eq!(status, StatusCode::OK, "the contact is not lost");
        assert_eq!(still_active["operator_id"], Value::Null);
        assert_eq!(still_active["operator"], Value::Null);
        assert_eq!(still_active["status"], "active");
        let still_closed = app.get_ok(&format!("/contacts/{closed}")).await;
        assert_eq!(still_closed["operator_id"], Value::Null);
        assert_eq!(still_closed["status"], "closed");

        let unassigned = app.get_ok("/contacts/?unassigned=true").await;
        assert_eq!(
            ids(&unassigned),
            vec![closed, active],
            "both are unassigned"
        );
        let unassigned_active = app.get_ok("/contacts/?unassigned=true&status=active").await;
        assert_eq!(ids(&unassigned_active), vec![active]);
        let by_operator = app
            .get_ok(&format!("/contacts/?operator_id={operator}"))
            .await;
        assert_eq!(by_operator, json!([]));

        let (status, stats) = app.get(&format!("/stats/sources/{source}")).await;
        assert_eq!(status, StatusCode::OK, "{stats}");
        assert_eq!(stats["total_contacts"], 2, "{stats}");
        assert_eq!(stats["unassigned_contacts"], 2, "{stats}");
        let rows = stats["operator_distribution"].as_array().unwrap();
        let unassigned_row = rows.iter().find(|r| r["operator_id"].is_null()).unwrap();
        assert_eq!(unassigned_row["count"], 2, "{stats}");
        assert_eq!(unassigned_row["active_count"], 1, "{stats}");
    }
);

backend_test!(
    a_deleted_operators_active_contact_can_still_be_closed,
    |app| {
        let (source, operator) = app.source_with_operator("Оператор", 5).await;
        let contact = id_of(&app.contact_through(source).await);
        app.delete_ok(&format!("/operators/{operator}")).await;
        let closed = app.set_status(contact, "closed").await;
        assert_eq!(closed["status"], "closed");
        assert_eq!(closed["operator_id"], Value::Null);
        let unassigned_active = app.get_ok("/contacts/?unassigned=true&status=active").await;
        assert_eq!(unassigned_active, json!([]));
    }
);

backend_test!(
    lowering_max_load_below_the_load_stops_new_assignments,
    |app| {
        let (source, operator) = app.source_with_operator("Оператор", 3).await;
        app.contact_through(source).await;
        app.contact_through(source).await;
        app.change_operator(operator, json!({ "max_load": 1 }))
            .await;
        let after = app.operator_stats(operator).await;
        assert_eq!(after["active_contacts_count"], 2, "nothing is taken away");
        assert_eq!(after["utilization_percent"], 200.0);
        let next = app.contact(json!({ "source_id": source })).await;
        assert_eq!(next["operator_id"], Value::Null);
    }
);

backend_test!(setting_the_same_status_twice_frees_the_slot_once, |app| {
    let (source, operator) = app.source_with_operator("Оператор", 1).await;
    let first = id_of(&app.contact_through(source).await);
    app.set_status(first, "closed").await;
    app.set_status(first, "closed").await;
    assert_eq!(
        app.operator_stats(operator).await["active_contacts_count"],
        0
    );
    let second = app.contact(json!({ "source_id": source })).await;
    assert_eq!(second["operator_id"], operator);
    let third = app.contact(json!({ "source_id": source })).await;
    assert_eq!(third["operator_id"], Value::Null, "only one slot was freed");
    assert_eq!(
        app.operator_stats(operator).await["active_contacts_count"],
        1
    );
});

backend_test!(reopening_a_contact_counts_it_again, |app| {
    let (source, operator) = app.source_with_operator("Оператор", 1).await;
    let first = id_of(&app.contact_through(source).await);
    app.set_status(first, "closed").await;
    let second = app.contact(json!({ "source_id": source })).await;
    assert_eq!(second["operator_id"], operator);

    let reopened = app.set_status(first, "active").await;
    assert_eq!(reopened["operator_id"], operator);
    let stats_now = app.operator_stats(operator).await;
    assert_eq!(stats_now["active_contacts_count"], 2);
    assert_eq!(stats_now["contacts_by_status"], json!({ "active": 2 }));

    app.set_status(first, "closed").await;
    assert_eq!(
        app.operator_stats(operator).await["active_contacts_count"],
        1
    );
    let third = app.contact(json!({ "source_id": source })).await;
    assert_eq!(third["operator_id"], Value::Null, "still full at 1 of 1");
});

backend_test!(stats_keep_counting_contacts_of_a_deleted_source, |app| {
    let (source, operator) = app.source_with_operator("Оператор", 5).await;
    app.contact_through(source).await;
    app.delete_ok(&format!("/sources/{source}")).await;
    let after = app.operator_stats(operator).await;
    assert_eq!(after["active_contacts_count"], 1, "{after}");
    assert_eq!(after["total_contacts"], 1, "{after}");
    assert_eq!(
        after["contacts_by_source"][0]["source_id"], source,
        "{after}"
    );
    assert_eq!(
        after["contacts_by_source"][0]["total_contacts"], 1,
        "{after}"
    );
});

backend_test!(stats_show_load_utilization_and_breakdowns, |app| {
    let (telegram, operator) = app.source_with_operator("Оператор", 3).await;
    let whatsapp = app.source("WhatsApp").await;
    app.link(whatsapp, operator, 1.0).await;

    let fresh = app.operator_stats(operator).await;
    assert_eq!(fresh["operator_id"], operator);
    assert_eq!(fresh["operator_name"], "Оператор");
    assert_eq!(fresh["active_contacts_count"], 0);
    assert_eq!(fresh["max_load"], 3);
    assert_eq!(fresh["utilization_percent"], 0.0);
    assert_eq!(fresh["total_contacts"], 0);
    assert_eq!(fresh["contacts_by_status"], json!({}));
    assert_eq!(fresh["contacts_by_source"], json!([]));

    app.contact_through(telegram).await;
    let one = app.operator_stats(operator).await;
    assert_eq!(one["active_contacts_count"], 1);
    assert_eq!(one["utilization_percent"], 33.33, "1 of 3, two decimals");

    let second = id_of(&app.contact_through(telegram).await);
    app.contact_through(whatsapp).await;
    app.set_status(second, "closed").await;

    let stats = app.operator_stats(operator).await;
    assert_eq!(stats["active_contacts_count"], 2);
    assert_eq!(stats["utilization_percent"], 66.67);
    assert_eq!(stats["total_contacts"], 3);
    assert_eq!(
        stats["contacts_by_status"],
        json!({ "active": 2, "closed": 1 })
    );
    let by_source = stats["contacts_by_source"].as_array().unwrap();
    assert_eq!(by_source.len(), 2, "{by_source:?}");
    let row = |source: i64| {
        by_source
            .iter()
            .find(|row| row["source_id"] == source)
            .unwrap_or_else(|| panic!("no row for source {source}: {by_source:?}"))
    };
    assert_eq!(row(telegram)["source_name"], "Telegram Bot");
    assert_eq!(row(telegram)["total_contacts"], 2);
    assert_eq!(row(telegram)["active_contacts"], 1);
    assert_eq!(row(whatsapp)["source_name"], "WhatsApp");
    assert_eq!(row(whatsapp)["total_contacts"], 1);
    assert_eq!(row(whatsapp)["active_contacts"], 1);
});

backend_test!(closing_a_contact_lowers_the_active_count, |app| {
    let (source, operator) = app.source_with_operator("Оператор", 4).await;
    let first = id_of(&app.contact_through(source).await);
    app.contact_through(source).await;
    assert_eq!(
        app.operator_stats(operator).await["active_contacts_count"],
        2
    );
    assert_eq!(
        app.operator_stats(operator).await["utilization_percent"],
        50.0
    );

    app.set_status(first, "closed").await;
    let after = app.operator_stats(operator).await;
    assert_eq!(after["active_contacts_count"], 1);
    assert_eq!(after["utilization_percent"], 25.0);
    assert_eq!(
        after["total_contacts"], 2,
        "a closed contact is still counted"
    );
});

backend_test!(utilization_is_zero_when_max_load_is_zero, |app| {
    let operator = app.operator("Никого не берёт", 0).await;
    let stats = app.operator_stats(operator).await;
    assert_eq!(stats["max_load"], 0);
    assert_eq!(stats["active_contacts_count"], 0);
    assert_eq!(stats["utilization_percent"], 0.0);
});

backend_test!(
    every_operator_route_answers_404_for_an_unknown_operator,
    |app| {
        let known = app.operator("Анна", 5).await;
        let unknown = known + 1000;
        let requests = [
            (Method::GET, format!("/operators/{unknown}"), None),
            (
                Method::PATCH,
                format!("/operators/{unknown}"),
                Some(json!({ "name": "x" })),
            ),
            (Method::DELETE, format!("/operators/{unknown}"), None),
            (Method::GET, format!("/operators/{unknown}/stats"), None),
        ];
        for (method, path, body) in requests {
            let (status, answer) = app.call(method.clone(), &path, body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
            assert!(answer["detail"].is_string(), "{method} {path}: {answer}");
        }
    }
);
