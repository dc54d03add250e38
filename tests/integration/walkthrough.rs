//! The seed README's curl walk-through, step by step, as one test.

use crate::common;

use reqwest::StatusCode;
use serde_json::json;

backend_test!(the_seed_walkthrough_works_as_documented, |app| {
    // 1. Operators.
    let (status, operator1) = app
        .post(
            "/operators/",
            json!({ "name": "Оператор 1", "is_active": true, "max_load": 10 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(operator1["name"], "Оператор 1");
    assert_eq!(operator1["is_active"], true);
    assert_eq!(operator1["max_load"], 10);
    assert!(operator1["created_at"].as_str().unwrap().ends_with('Z'));
    let operator2 = app
        .post_ok("/operators/", json!({ "name": "Оператор 2" }))
        .await;
    assert_eq!(operator2["max_load"], 10, "max_load defaults to 10");
    assert_eq!(operator2["is_active"], true, "is_active defaults to true");

    // 2. A source.
    let (status, source) = app
        .post(
            "/sources/",
            json!({ "name": "Telegram Bot", "description": "Бот в Telegram" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(source["description"], "Бот в Telegram");
    let source_id = source["id"].as_i64().unwrap();

    // 3. Weights 10 and 30.
    let (status, link) = app
        .post(
            &format!("/sources/{source_id}/operators"),
            json!({ "operator_id": operator1["id"], "weight": 10 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(link["weight"], 10.0);
    assert_eq!(link["source_id"], source_id);
    app.link(source_id, operator2["id"].as_i64().unwrap(), 30.0)
        .await;
    let detail = app.get_ok(&format!("/sources/{source_id}")).await;
    assert_eq!(detail["operator_weights"].as_array().unwrap().len(), 2);

    // 4. A contact.
    let contact = app
        .contact(json!({
            "source_id": source_id,
            "lead_external_id": "user123",
            "lead_phone": "+79991234567",
            "lead_name": "Иван Иванов",
            "message": "Хочу узнать о продукте"
        }))
        .await;
    assert_eq!(contact["status"], "active");
    assert_eq!(contact["lead"]["external_id"], "user123");
    assert_eq!(contact["lead"]["phone"], "+79991234567");
    assert_eq!(contact["source"]["name"], "Telegram Bot");
    let operator_id = contact["operator_id"]
        .as_i64()
        .expect("an operator is free");
    assert_eq!(contact["operator"]["id"], operator_id);

    // The same lead, written another way, through the same source: one lead.
    let again = app
        .contact(json!({ "source_id": source_id, "lead_phone": "8 999 123-45-67" }))
        .await;
    assert_eq!(again["lead_id"], contact["lead_id"]);

    // 5. Stats.
    let (status, stats) = app.get(&format!("/stats/sources/{source_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["total_contacts"], 2);
    let (status, operator_stats) = app.get(&format!("/operators/{operator_id}/stats")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(operator_stats["active_contacts_count"].as_i64().unwrap() >= 1);
});
