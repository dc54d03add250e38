//! `/sources` and the operators' weights on them: create (unique names), list, get with `operator_weights`,
//! PATCH, DELETE (the source retires, its contacts stay), and `/sources/{id}/operators[/{operator_id}]`.

use crate::common;

use common::{assert_error, ids};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn link_path(source_id: i64) -> String {
    format!("/sources/{source_id}/operators")
}

fn weight_path(source_id: i64, operator_id: i64) -> String {
    format!("/sources/{source_id}/operators/{operator_id}")
}

backend_test!(creating_a_source_returns_it_with_201, |app| {
    let (status, source) = app
        .post(
            "/sources/",
            json!({ "name": "Telegram Bot", "description": "Бот в Telegram" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    assert!(source["id"].is_i64());
    assert_eq!(source["name"], "Telegram Bot");
    assert_eq!(source["description"], "Бот в Telegram");
    assert!(source["created_at"].as_str().unwrap().ends_with('Z'));

    let (status, bare) = app.post("/sources/", json!({ "name": "WhatsApp" })).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(bare["description"], Value::Null);
});

backend_test!(a_duplicate_source_name_is_a_conflict, |app| {
    app.source("Telegram Bot").await;
    let answer = app
        .post("/sources/", json!({ "name": "Telegram Bot" }))
        .await;
    assert_error(&answer, StatusCode::CONFLICT, "duplicate name");
    let answer = app
        .post("/sources/", json!({ "name": "  Telegram Bot " }))
        .await;
    assert_error(&answer, StatusCode::CONFLICT, "the same name, padded");
    let list = app.get_ok("/sources/").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "nothing was created");
});

backend_test!(sources_are_listed_oldest_first, |app| {
    let a = app.source("a").await;
    let b = app.source("b").await;
    let c = app.source("c").await;
    let (status, list) = app.get("/sources/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&list), vec![a, b, c]);
    let page = app.get_ok("/sources/?skip=1&limit=1").await;
    assert_eq!(ids(&page), vec![b]);
});

backend_test!(a_source_is_returned_with_its_operator_weights, |app| {
    let source = app.source("Telegram Bot").await;
    let anna = app.operator("Анна", 5).await;
    let boris = app.operator("Борис", 5).await;
    app.link(source, anna, 10.0).await;
    app.link(source, boris, 30.0).await;

    let (status, detail) = app.get(&format!("/sources/{source}")).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["id"], source);
    assert_eq!(detail["name"], "Telegram Bot");
    assert!(detail["created_at"].is_string());
    let mut weights = detail["operator_weights"].as_array().unwrap().clone();
    weights.sort_by_key(|w| w["operator_id"].as_i64());
    assert_eq!(weights.len(), 2);
    for (weight, (operator, name, value)) in weights
        .iter()
        .zip([(anna, "Анна", 10.0), (boris, "Борис", 30.0)])
    {
        assert!(weight["id"].is_i64(), "{weight}");
        assert_eq!(weight["source_id"], source);
        assert_eq!(weight["operator_id"], operator);
        assert_eq!(weight["weight"], value);
        assert_eq!(weight["operator_name"], name);
    }
});

backend_test!(patch_renames_and_changes_the_description, |app| {
    let created = app
        .post_ok("/sources/", json!({ "name": "Bot", "description": "old" }))
        .await;
    let path = format!("/sources/{}", created["id"]);

    let (status, renamed) = app.patch(&path, json!({ "name": "Telegram Bot" })).await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Telegram Bot");
    assert_eq!(renamed["description"], "old", "an absent field is kept");

    let described = app.patch_ok(&path, json!({ "description": "new" })).await;
    assert_eq!(described["name"], "Telegram Bot");
    assert_eq!(described["description"], "new");

    let (status, cleared) = app.patch(&path, json!({ "description": null })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cleared["name"], "Telegram Bot");
    assert_eq!(cleared["description"], Value::Null, "null clears it");

    let fetched = app.get_ok(&path).await;
    assert_eq!(fetched["name"], "Telegram Bot");
    assert_eq!(fetched["description"], Value::Null);
});

backend_test!(renaming_onto_another_sources_name_is_a_conflict, |app| {
    app.source("Telegram Bot").await;
    let other = app.source("WhatsApp").await;
    let answer = app
        .patch(
            &format!("/sources/{other}"),
            json!({ "name": "Telegram Bot" }),
        )
        .await;
    assert_error(&answer, StatusCode::CONFLICT, "rename onto a taken name");
    let fetched = app.get_ok(&format!("/sources/{other}")).await;
    assert_eq!(fetched["name"], "WhatsApp");

    let (status, _) = app
        .patch(&format!("/sources/{other}"), json!({ "name": "WhatsApp" }))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "keeping its own name is no conflict"
    );
});

backend_test!(a_deleted_source_is_gone_from_the_api, |app| {
    let source = app.source("Telegram Bot").await;
    let (status, body) = app.delete(&format!("/sources/{source}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);

    let path = format!("/sources/{source}");
    assert_error(&app.get(&path).await, StatusCode::NOT_FOUND, "GET");
    assert_error(
        &app.patch(&path, json!({ "name": "x" })).await,
        StatusCode::NOT_FOUND,
        "PATCH",
    );
    assert_error(&app.delete(&path).await, StatusCode::NOT_FOUND, "DELETE");
    assert_error(
        &app.get(&format!("/stats/sources/{source}")).await,
        StatusCode::NOT_FOUND,
        "stats",
    );
    assert_error(
        &app.post("/contacts/", json!({ "source_id": source })).await,
        StatusCode::NOT_FOUND,
        "a contact through it",
    );
    let list = app.get_ok("/sources/").await;
    assert_eq!(list, json!([]));
});

backend_test!(a_deleted_sources_name_can_be_reused, |app| {
    let old = app.source("Telegram Bot").await;
    app.delete_ok(&format!("/sources/{old}")).await;
    let (status, new) = app
        .post("/sources/", json!({ "name": "Telegram Bot" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{new}");
    assert_ne!(new["id"], old);
});

backend_test!(a_deleted_sources_contacts_are_kept, |app| {
    let source = app.source("Telegram Bot").await;
    let operator = app.operator("Анна", 5).await;
    app.link(source, operator, 1.0).await;
    let contact = app
        .contact(json!({ "source_id": source, "lead_external_id": "u1" }))
        .await;
    let contact_id = contact["id"].as_i64().unwrap();

    let (status, _) = app.delete(&format!("/sources/{source}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, kept) = app.get(&format!("/contacts/{contact_id}")).await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    assert_eq!(kept["source_id"], source);
    assert_eq!(kept["operator_id"], operator, "its operator is kept");
    assert_eq!(kept["status"], "active");
    let (status, listed) = app.get(&format!("/contacts/?source_id={source}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&listed), vec![contact_id]);
});

backend_test!(linking_an_operator_defaults_the_weight_to_one, |app| {
    let source = app.source("Telegram Bot").await;
    let operator = app.operator("Анна", 5).await;
    let (status, link) = app
        .post(&link_path(source), json!({ "operator_id": operator }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    assert!(link["id"].is_i64());
    assert_eq!(link["source_id"], source);
    assert_eq!(link["operator_id"], operator);
    assert_eq!(link["weight"], 1.0);
});

backend_test!(a_fractional_weight_is_kept, |app| {
    let source = app.source("Telegram Bot").await;
    let operator = app.operator("Анна", 5).await;
    let (status, link) = app
        .post(
            &link_path(source),
            json!({ "operator_id": operator, "weight": 2.5 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    assert_eq!(link["weight"], 2.5);
    let detail = app.get_ok(&format!("/sources/{source}")).await;
    assert_eq!(detail["operator_weights"][0]["weight"], 2.5);
});

backend_test!(
    linking_to_an_unknown_source_or_operator_is_not_found,
    |app| {
        let source = app.source("Telegram Bot").await;
        let operator = app.operator("Анна", 5).await;
        let answer = app
            .post(
                &link_path(source + 1000),
                json!({ "operator_id": operator }),
            )
            .await;
        assert_error(&answer, StatusCode::NOT_FOUND, "unknown source");
        let answer = app
            .post(
                &link_path(source),
                json!({ "operator_id": operator + 1000 }),
            )
            .await;
        assert_error(&answer, StatusCode::NOT_FOUND, "unknown operator");
    }
);

backend_test!(linking_the_same_operator_twice_is_a_conflict, |app| {
    let source = app.source("Telegram Bot").await;
    let operator = app.operator("Анна", 5).await;
    app.link(source, operator, 1.0).await;
    let answer = app
        .post(
            &link_path(source),
            json!({ "operator_id": operator, "weight": 5 }),
        )
        .await;
    assert_error(&answer, StatusCode::CONFLICT, "already linked");
    let detail = app.get_ok(&format!("/sources/{source}")).await;
    assert_eq!(detail["operator_weights"].as_array().unwrap().len(), 1);
    assert_eq!(
        detail["operator_weights"][0]["weight"], 1.0,
        "the weight is unchanged"
    );
});

backend_test!(invalid_weights_are_refused, |app| {
    let source = app.source("Telegram Bot").await;
    let operator = app.operator("Анна", 5).await;
    for weight in [json!(0), json!(-1), json!("abc"), json!(1e7)] {
        let answer = app
            .post(
                &link_path(source),
                json!({ "operator_id": operator, "weight": weight }),
            )
            .await;
        assert_error(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("weight {weight}"),
        );
    }
    let detail = app.get_ok(&format!("/sources/{source}")).await;
    assert_eq!(detail["operator_weights"], json!([]), "nothing was linked");

    app.link(source, operator, 1.0).await;
    for weight in [json!(0), json!(-1), json!("abc"), json!(1e7)] {
        let answer = app
            .patch(&weight_path(source, operator), json!({ "weight": weight }))
            .await;
        assert_error(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("PATCH weight {weight}"),
        );
    }
});

backend_test!(a_weight_can_be_changed, |app| {
    let source = app.source("Telegram Bot").await;
    let operator = app.operator("Анна", 5).await;
    app.link(source, operator, 10.0).await;
    let (status, changed) = app
        .patch(&weight_path(source, operator), json!({ "weight": 30 }))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["source_id"], source);
    assert_eq!(changed["operator_id"], operator);
    assert_eq!(changed["weight"], 30.0);
    let detail = app.get_ok(&format!("/sources/{source}")).await;
    assert_eq!(detail["operator_weights"][0]["weight"], 30.0);
});

backend_test!(changing_or_removing_a_missing_link_is_not_found, |app| {
    let source = app.source("Telegram Bot").await;
    let operator = app.operator("Анна", 5).await;
    let path = weight_path(source, operator);
    assert_error(
        &app.patch(&path, json!({ "weight": 3 })).await,
        StatusCode::NOT_FOUND,
        "PATCH of an unlinked operator",
    );
    assert_error(
        &app.delete(&path).await,
        StatusCode::NOT_FOUND,
        "DELETE of an unlinked operator",
    );
    assert_error(
        &app.call(Method::DELETE, &weight_path(source + 1000, operator), None)
            .await,
        StatusCode::NOT_FOUND,
        "DELETE on an unknown source",
    );
});

backend_test!(unlinking_an_operator_removes_the_weight, |app| {
    let source = app.source("Telegram Bot").await;
    let operator = app.operator("Анна", 5).await;
    app.link(source, operator, 1.0).await;
    let (status, body) = app.delete(&weight_path(source, operator)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    let detail = app.get_ok(&format!("/sources/{source}")).await;
    assert_eq!(detail["operator_weights"], json!([]));
    let (status, _) = app.delete(&weight_path(source, operator)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already removed");
    // The operator itself stays and can be linked again.
    let (status, _) = app.get(&format!("/operators/{operator}")).await;
    assert_eq!(status, StatusCode::OK);
    app.link(source, operator, 2.0).await;
});

backend_test!(invalid_source_changes_are_refused, |app| {
    let source = app.source("Telegram Bot").await;
    let path = format!("/sources/{source}");
    let cases = [
        json!({ "name": "" }),
        json!({ "name": "   " }),
        json!({ "name": "я".repeat(256) }),
        json!({ "description": "ж".repeat(10_001) }),
    ];
    for body in cases {
        let answer = app.patch(&path, body.clone()).await;
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, &body.to_string());
    }
    let fetched = app.get_ok(&path).await;
    assert_eq!(fetched["name"], "Telegram Bot");
    let answer = app
        .post(
            "/sources/",
            json!({ "name": "Long", "description": "ж".repeat(10_001) }),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "description of 10,001",
    );
});

backend_test!(a_deleted_source_or_operator_cannot_be_linked, |app| {
    let source = app.source("Telegram Bot").await;
    let operator = app.operator("Анна", 5).await;
    app.link(source, operator, 1.0).await;
    app.delete_ok(&format!("/sources/{source}")).await;
    let answer = app
        .patch(&weight_path(source, operator), json!({ "weight": 2 }))
        .await;
    assert_error(
        &answer,
        StatusCode::NOT_FOUND,
        "PATCH weight on a deleted source",
    );
    let answer = app
        .post(&link_path(source), json!({ "operator_id": operator }))
        .await;
    assert_error(&answer, StatusCode::NOT_FOUND, "link to a deleted source");

    let other = app.source("WhatsApp").await;
    app.delete_ok(&format!("/operators/{operator}")).await;
    let answer = app
        .post(&link_path(other), json!({ "operator_id": operator }))
        .await;
    assert_error(&answer, StatusCode::NOT_FOUND, "link a deleted operator");
});
