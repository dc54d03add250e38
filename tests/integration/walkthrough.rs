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

/// One request of a walk-through, printed as it is sent and answered (`cargo test an_operators_day --
/// --nocapture` shows the day): `fields` picks what is shown of the answer, or of each item of a list (all
/// of it when empty).
async fn step(
    app: &common::TestApp,
    clock: &leadrouter::domain::Clock,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
    fields: &[&str],
) -> serde_json::Value {
    let (status, answer) = app.call(method.clone(), path, body.clone()).await;
    assert!(status.is_success(), "{method} {path}: {status} {answer}");
    let pick = |value: &serde_json::Value| match (value, fields) {
        (serde_json::Value::Object(object), [_, ..]) => serde_json::Value::Object(
            fields
                .iter()
                .filter_map(|f| object.get(*f).map(|v| ((*f).to_owned(), v.clone())))
                .collect(),
        ),
        _ => value.clone(),
    };
    let shown = match &answer {
        serde_json::Value::Array(items) => items.iter().map(pick).collect(),
        other => pick(other),
    };
    let local = clock
        .now()
        .with_timezone(&chrono_tz::Europe::Berlin)
        .format("%a %H:%M");
    let body = body.map(|b| format!(" {b}")).unwrap_or_default();
    println!(
        "[{local} Berlin] {method} {path}{body}\n    → {} {shown}",
        status.as_u16()
    );
    answer
}

backend_test!(
    an_operators_day,
    clock = chrono::DateTime::parse_from_rfc3339("2026-12-02T08:30:00+01:00")
        .unwrap()
        .to_utc(),
    |app, clock| {
        use reqwest::Method;
        let berlin = |text: &str| {
            chrono::DateTime::parse_from_rfc3339(&format!("{text}+01:00"))
                .unwrap()
                .to_utc()
        };
        let operator_fields = [
            "id",
            "availability",
            "away_until",
            "accepting",
            "not_accepting_because",
            "next_change_at",
        ];
        let history_fields = ["event", "reason", "from_operator_id", "to_operator_id"];
        let contact_fields = [
            "id",
            "operator_id",
            "assigned_at",
            "accepted_at",
            "queue_position",
        ];
        // Wednesday 08:30 in Berlin. Anna works 09:00–18:00 on weekdays; Boris 10:00–19:00.
        let anna = step(&app, &clock, Method::POST, "/operators/", Some(json!({
            "name": "Anna", "timezone": "Europe/Berlin",
            "schedule": [{ "days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00" }]
        })), &operator_fields).await;
        assert_eq!(anna["not_accepting_because"], "off_shift");
        let anna_id = anna["id"].as_i64().unwrap();
        let boris = app.post_ok("/operators/", json!({
            "name": "Boris", "timezone": "Europe/Berlin",
            "schedule": [{ "days": ["mon", "tue", "wed", "thu", "fri"], "start": "10:00", "end": "19:00" }]
        })).await;
        let boris_id = boris["id"].as_i64().unwrap();
        let source = step(
            &app,
            &clock,
            Method::POST,
            "/sources/",
            Some(json!({
                "name": "WhatsApp", "sticky_hours": 72, "accept_timeout_secs": 120
            })),
            &[
                "id",
                "on_operator_unavailable",
                "sticky_hours",
                "accept_timeout_secs",
            ],
        )
        .await;
        let source_id = source["id"].as_i64().unwrap();
        app.link(source_id, anna_id, 3.0).await;
        app.link(source_id, boris_id, 1.0).await;
        let alice =
            json!({ "source_id": source_id, "lead_phone": "+49 30 1234567", "lead_name": "Alice" });

        let anna_path = format!("/operators/{anna_id}");
        let anna_now = async || {
            step(
                &app,
                &clock,
                Method::GET,
                &anna_path,
                None,
                &operator_fields,
            )
            .await
        };
        let new_contact = async |body: serde_json::Value| {
            step(
                &app,
                &clock,
                Method::POST,
                "/contacts/",
                Some(body),
                &contact_fields,
            )
            .await
        };

        // 09:00: Anna's shift starts.
        clock.set(berlin("2026-12-02T09:00:00"));
        let now = anna_now().await;
        assert_eq!(now["accepting"], true);

        // 09:05: Alice writes; only Anna is on shift. Anna accepts.
        clock.set(berlin("2026-12-02T09:05:00"));
        let first = new_contact(alice.clone()).await;
        assert_eq!(first["operator_id"], anna_id);
        let first_id = first["id"].as_i64().unwrap();
        step(
            &app,
            &clock,
            Method::POST,
            &format!("/contacts/{first_id}/accept"),
            None,
            &contact_fields,
        )
        .await;
        step(
            &app,
            &clock,
            Method::PATCH,
            &format!("/contacts/{first_id}/status"),
            Some(json!({ "status": "closed" })),
            &["id", "status"],
        )
        .await;

        // 12:30: lunch until 13:30. A lead writing at 12:40 goes to Boris.
        clock.set(berlin("2026-12-02T12:30:00"));
        let lunch = step(
            &app,
            &clock,
            Method::PATCH,
            &format!("/operators/{anna_id}"),
            Some(json!({ "availability": "away", "away_until": "2026-12-02T13:30:00+01:00" })),
            &operator_fields,
        )
        .await;
        assert_eq!(lunch["not_accepting_because"], "away");
        clock.set(berlin("2026-12-02T12:40:00"));
        let during_lunch =
            new_contact(json!({ "source_id": source_id, "lead_external_id": "bob" })).await;
        assert_eq!(during_lunch["operator_id"], boris_id);
        clock.set(berlin("2026-12-02T13:30:00"));
        let back = anna_now().await;
        assert_eq!(back["accepting"], true);

        // 14:00: Alice comes back: to Anna, her operator of this morning (sticky), not by the draw.
        clock.set(berlin("2026-12-02T14:00:00"));
        let returning = new_contact(alice.clone()).await;
        assert_eq!(returning["operator_id"], anna_id);
        let returning_id = returning["id"].as_i64().unwrap();
        let history = step(
            &app,
            &clock,
            Method::GET,
            &format!("/contacts/{returning_id}/history"),
            None,
            &history_fields,
        )
        .await;
        assert_eq!(history[0]["reason"], "sticky");

        // Anna does not accept it within 120 s: it goes to Boris.
        clock.set(berlin("2026-12-02T14:02:01"));
        let moved = common::poll_until(
            std::time::Duration::from_secs(10),
            std::time::Duration::from_millis(20),
            async || app.fetch_contact(returning_id).await,
            |contact| contact["operator_id"] == boris_id,
        )
        .await;
        assert_eq!(moved["operator_id"], boris_id);
        let history = step(
            &app,
            &clock,
            Method::GET,
            &format!("/contacts/{returning_id}/history"),
            None,
            &history_fields,
        )
        .await;
        assert_eq!(
            history.as_array().unwrap().last().unwrap()["reason"],
            "accept_timeout"
        );

        // 16:00: Thursday off.
        clock.set(berlin("2026-12-02T16:00:00"));
        step(&app, &clock, Method::POST, &format!("/operators/{anna_id}/time-off"), Some(json!({
            "starts_at": "2026-12-03T00:00:00+01:00", "ends_at": "2026-12-04T00:00:00+01:00", "reason": "Day off"
        })), &[]).await;

        // 18:00: the shift ends; next on shift Friday 09:00, Thursday being off.
        clock.set(berlin("2026-12-02T18:00:00"));
        let evening = anna_now().await;
        assert_eq!(evening["not_accepting_because"], "off_shift");
        assert_eq!(evening["next_change_at"], "2026-12-04T08:00:00.000000Z");

        // Thursday 10:00: on time off. Alice writes again: to Boris, her latest operator since the timeout.
        clock.set(berlin("2026-12-03T10:00:00"));
        let thursday = anna_now().await;
        assert_eq!(thursday["not_accepting_because"], "time_off");
        let on_day_off = new_contact(alice.clone()).await;
        assert_eq!(on_day_off["operator_id"], boris_id);

        // Friday 09:00: back.
        clock.set(berlin("2026-12-04T09:00:00"));
        let friday = anna_now().await;
        assert_eq!(friday["accepting"], true);
    }
);
