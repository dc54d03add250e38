//! Lead identification through `POST /contacts/` (external_id, then phone, then email; normalisation; filling
//! in missing fields without stealing identifiers) and `/leads`.

use crate::common;

use common::{TestApp, ids};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Posts a contact through the source with the given lead fields and returns the contact.
async fn contact(app: &TestApp, source_id: i64, lead: Value) -> Value {
    let mut body = lead;
    body["source_id"] = json!(source_id);
    app.contact(body).await
}

/// Posts a contact with the given lead fields and returns the lead it was given.
async fn lead_of(app: &TestApp, source_id: i64, lead: Value) -> Value {
    contact(app, source_id, lead).await["lead"].clone()
}

async fn lead_count(app: &TestApp) -> usize {
    app.count_of("/leads/?limit=1000").await
}

/// Asserts a 422 whose detail mentions `field`.
fn assert_refused_naming(answer: &(StatusCode, Value), field: &str) {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let detail = body["detail"].as_str().expect("a detail");
    assert!(detail.contains(field), "{detail:?} does not name {field}");
}

backend_test!(the_same_external_id_is_the_same_lead, |app| {
    let source = app.source("Telegram Bot").await;
    let first = lead_of(&app, source, json!({ "lead_external_id": "user123" })).await;
    let second = lead_of(&app, source, json!({ "lead_external_id": "user123" })).await;
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first["external_id"], "user123");
    let other = lead_of(&app, source, json!({ "lead_external_id": "user124" })).await;
    assert_ne!(other["id"], first["id"]);
    assert_eq!(lead_count(&app).await, 2);
});

backend_test!(
    phone_notations_of_one_number_are_one_lead_stored_in_e164,
    |app| {
        let source = app.source("Telegram Bot").await;
        let mut leads = Vec::new();
        for phone in ["8 999 123-45-67", "+7 (999) 123-45-67", "+79991234567"] {
            leads.push(lead_of(&app, source, json!({ "lead_phone": phone })).await);
        }
        for lead in &leads {
            assert_eq!(lead["id"], leads[0]["id"], "{lead}");
            assert_eq!(lead["phone"], "+79991234567");
        }
        assert_eq!(lead_count(&app).await, 1);
    }
);

backend_test!(emails_are_trimmed_and_lowercased_into_one_lead, |app| {
    let source = app.source("Telegram Bot").await;
    let first = lead_of(&app, source, json!({ "lead_email": "  Ivan@Example.COM " })).await;
    assert_eq!(first["email"], "ivan@example.com");
    let second = lead_of(&app, source, json!({ "lead_email": "ivan@example.com" })).await;
    assert_eq!(second["id"], first["id"]);
    assert_eq!(lead_count(&app).await, 1);
});

backend_test!(
    external_id_wins_over_phone_and_no_identifier_is_stolen,
    |app| {
        let source = app.source("Telegram Bot").await;
        let a = lead_of(&app, source, json!({ "lead_external_id": "a" })).await;
        let b = lead_of(&app, source, json!({ "lead_phone": "+79991234567" })).await;
        assert_ne!(a["id"], b["id"]);

        let matched = lead_of(
            &app,
            source,
            json!({ "lead_external_id": "a", "lead_phone": "+79991234567" }),
        )
        .await;
        assert_eq!(matched["id"], a["id"], "external_id comes first");
        assert_eq!(matched["phone"], Value::Null, "B keeps its phone");

        let b_now = app.get_ok(&format!("/leads/{}", b["id"])).await;
        assert_eq!(b_now["lead"]["phone"], "+79991234567");
        assert_eq!(lead_count(&app).await, 2);
    }
);

backend_test!(phone_wins_over_email, |app| {
    let source = app.source("Telegram Bot").await;
    let by_email = lead_of(&app, source, json!({ "lead_email": "ivan@example.com" })).await;
    let by_phone = lead_of(&app, source, json!({ "lead_phone": "+79991234567" })).await;
    let matched = lead_of(
        &app,
        source,
        json!({ "lead_phone": "+79991234567", "lead_email": "ivan@example.com" }),
    )
    .await;
    assert_eq!(matched["id"], by_phone["id"]);
    assert_eq!(
        matched["email"],
        Value::Null,
        "the email stays with its lead"
    );
    assert_ne!(matched["id"], by_email["id"]);
});

backend_test!(a_matched_lead_gets_its_missing_fields_filled_in, |app| {
    let source = app.source("Telegram Bot").await;
    let bare = lead_of(&app, source, json!({ "lead_external_id": "user123" })).await;
    assert_eq!(bare["phone"], Value::Null);
    assert_eq!(bare["email"], Value::Null);
    assert_eq!(bare["name"], Value::Null);

    let filled = lead_of(
        &app,
        source,
        json!({
            "lead_external_id": "user123",
            "lead_phone": "8 999 123-45-67",
            "lead_email": "Ivan@Example.com",
            "lead_name": "Иван"
        }),
    )
    .await;
    assert_eq!(filled["id"], bare["id"]);
    assert_eq!(filled["external_id"], "user123");
    assert_eq!(filled["phone"], "+79991234567");
    assert_eq!(filled["email"], "ivan@example.com");
    assert_eq!(filled["name"], "Иван");

    let stored = app.get_ok(&format!("/leads/{}", bare["id"])).await;
    assert_eq!(stored["lead"], filled, "the filled fields are stored");

    let by_phone = lead_of(&app, source, json!({ "lead_phone": "+79991234567" })).await;
    assert_eq!(
        by_phone["id"], bare["id"],
        "the new phone now identifies it"
    );
});

backend_test!(
    a_lead_found_by_phone_gets_its_external_id_filled_in,
    |app| {
        let source = app.source("Telegram Bot").await;
        let by_phone = lead_of(&app, source, json!({ "lead_phone": "+79991234567" })).await;
        let filled = lead_of(
            &app,
            source,
            json!({ "lead_phone": "+79991234567", "lead_external_id": "user123" }),
        )
        .await;
        assert_eq!(filled["id"], by_phone["id"]);
        assert_eq!(filled["external_id"], "user123");
    }
);

backend_test!(a_leads_name_is_not_overwritten, |app| {
    let source = app.source("Telegram Bot").await;
    let first = lead_of(
        &app,
        source,
        json!({ "lead_external_id": "u", "lead_name": "Иван" }),
    )
    .await;
    let again = lead_of(
        &app,
        source,
        json!({ "lead_external_id": "u", "lead_name": "Пётр" }),
    )
    .await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["name"], "Иван");
});

backend_test!(
    a_contact_without_identifiers_creates_a_new_anonymous_lead_each_time,
    |app| {
        let source = app.source("Telegram Bot").await;
        let first = lead_of(&app, source, json!({ "lead_name": "Аноним" })).await;
        let second = lead_of(&app, source, json!({ "lead_name": "Аноним" })).await;
        let third = lead_of(&app, source, json!({})).await;
        assert_ne!(first["id"], second["id"]);
        assert_ne!(second["id"], third["id"]);
        assert_eq!(first["external_id"], Value::Null);
        assert_eq!(first["phone"], Value::Null);
        assert_eq!(first["email"], Value::Null);
        assert_eq!(lead_count(&app).await, 3);
    }
);

backend_test!(blank_identifiers_count_as_absent, |app| {
    let source = app.source("Telegram Bot").await;
    let blank = json!({
        "lead_external_id": "",
        "lead_phone": "  ",
        "lead_email": "",
        "lead_name": "  "
    });
    let first = lead_of(&app, source, blank.clone()).await;
    let second = lead_of(&app, source, blank).await;
    assert_ne!(first["id"], second["id"], "blank matches nothing");
    for field in ["external_id", "phone", "email", "name"] {
        assert_eq!(first[field], Value::Null, "{field}");
    }
});

backend_test!(one_lead_through_two_sources_has_both_contacts, |app| {
    let telegram = app.source("Telegram Bot").await;
    let whatsapp = app.source("WhatsApp").await;
    let first = contact(&app, telegram, json!({ "lead_phone": "+79991234567" })).await;
    let second = contact(&app, whatsapp, json!({ "lead_phone": "89991234567" })).await;
    assert_eq!(first["lead_id"], second["lead_id"]);
    assert_eq!(lead_count(&app).await, 1);

    let (status, detail) = app.get(&format!("/leads/{}", first["lead_id"])).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["lead"]["id"], first["lead_id"]);
    let contacts = detail["contacts"].as_array().unwrap();
    assert_eq!(
        ids(&detail["contacts"]),
        vec![
            second["id"].as_i64().unwrap(),
            first["id"].as_i64().unwrap()
        ]
    );
    assert_eq!(contacts[0]["source_id"], whatsapp, "newest first");
    assert_eq!(contacts[1]["source_id"], telegram);
});

backend_test!(an_invalid_phone_is_refused_naming_the_field, |app| {
    let source = app.source("Telegram Bot").await;
    let answer = app
        .post(
            "/contacts/",
            json!({ "source_id": source, "lead_phone": "abc" }),
        )
        .await;
    assert_refused_naming(&answer, "lead_phone");
    assert_eq!(lead_count(&app).await, 0);
});

backend_test!(an_invalid_email_is_refused_naming_the_field, |app| {
    let source = app.source("Telegram Bot").await;
    let answer = app
        .post(
            "/contacts/",
            json!({ "source_id": source, "lead_email": "ivan@" }),
        )
        .await;
    assert_refused_naming(&answer, "lead_email");
    let contacts = app.get_ok("/contacts/").await;
    assert_eq!(contacts, json!([]), "nothing was stored");
});

backend_test!(leads_are_filtered_by_normalised_identifiers, |app| {
    let source = app.source("Telegram Bot").await;
    let ivan = lead_of(
        &app,
        source,
        json!({
            "lead_external_id": "user123",
            "lead_phone": "+79991234567",
            "lead_email": "ivan@example.com"
        }),
    )
    .await;
    let other = lead_of(
        &app,
        source,
        json!({ "lead_external_id": "user124", "lead_phone": "+79990000000" }),
    )
    .await;
    let ivan_id = ivan["id"].as_i64().unwrap();

    for query in [
        "external_id=user123",
        "phone=8%20999%20123-45-67",
        "phone=%2B79991234567",
        "email=%20Ivan%40Example.COM%20",
    ] {
        let (status, found) = app.get(&format!("/leads/?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {found}");
        assert_eq!(ids(&found), vec![ivan_id], "{query}");
        assert_eq!(found[0], ivan, "{query}");
    }
    let nobody = app.get_ok("/leads/?external_id=nobody").await;
    assert_eq!(nobody, json!([]));

    let all = app.get_ok("/leads/").await;
    assert_eq!(
        ids(&all),
        vec![other["id"].as_i64().unwrap(), ivan_id],
        "newest first"
    );
});

backend_test!(an_invalid_phone_filter_is_refused, |app| {
    let answer = app.get("/leads/?phone=abc").await;
    assert_refused_naming(&answer, "phone");
    let answer = app.get("/leads/?email=ivan%40").await;
    assert_refused_naming(&answer, "email");
});

backend_test!(a_lead_is_returned_with_its_contacts_newest_first, |app| {
    let source = app.source("Telegram Bot").await;
    let mut contact_ids = Vec::new();
    for message in ["один", "два", "три"] {
        let created = contact(
            &app,
            source,
            json!({ "lead_external_id": "u", "message": message }),
        )
        .await;
        contact_ids.push(created["id"].as_i64().unwrap());
    }
    contact_ids.reverse();
    let lead_id = app.get_ok("/leads/?external_id=u").await[0]["id"].clone();

    let (status, detail) = app.get(&format!("/leads/{lead_id}")).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail.as_object().unwrap().len(), 2, "{detail}");
    assert_eq!(detail["lead"]["external_id"], "u");
    assert_eq!(ids(&detail["contacts"]), contact_ids);
    assert_eq!(detail["contacts"][0]["message"], "три");
    assert_eq!(detail["contacts"][0]["lead"]["id"], lead_id);
});

backend_test!(an_unknown_lead_is_not_found, |app| {
    let source = app.source("Telegram Bot").await;
    let lead = lead_of(&app, source, json!({ "lead_external_id": "u" })).await;
    let (status, body) = app
        .get(&format!("/leads/{}", lead["id"].as_i64().unwrap() + 1000))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["detail"].is_string());
});

backend_test!(overlong_lead_fields_are_refused_naming_the_field, |app| {
    let source = app.source("Telegram Bot").await;
    let long = "я".repeat(256);
    for field in ["lead_external_id", "lead_name"] {
        let answer = app
            .post("/contacts/", json!({ "source_id": source, field: long }))
            .await;
        assert_refused_naming(&answer, field);
    }
    let ok = lead_of(&app, source, json!({ "lead_external_id": "я".repeat(255) })).await;
    assert_eq!(ok["external_id"], "я".repeat(255));
});

backend_test!(leads_are_listed_newest_first_with_skip_and_limit, |app| {
    let source = app.source("Telegram Bot").await;
    let mut created = Vec::new();
    for n in 0..4 {
        let lead = lead_of(&app, source, json!({ "lead_external_id": format!("u{n}") })).await;
        created.push(lead["id"].as_i64().unwrap());
    }
    created.reverse();
    let all = app.get_ok("/leads/").await;
    assert_eq!(ids(&all), created);
    let page = app.get_ok("/leads/?skip=1&limit=2").await;
    assert_eq!(ids(&page), created[1..3].to_vec());
    for query in ["limit=0", "limit=1001", "skip=-1"] {
        let (status, body) = app.get(&format!("/leads/?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
    }
});

database_test!(
    upgrading_keeps_the_leads_their_contacts_and_their_uniqueness,
    |database| {
        // As 0010 left a database: the identity columns were UNIQUE constraints over NULLs too.
        database.migrate_before("0011").await;
        for statement in [
            "INSERT INTO sources (name, created_at) VALUES ('bot', '2026-01-01T00:00:00Z')",
            "INSERT INTO leads (external_id, created_at) VALUES ('tg-1', '2026-01-01T00:00:00Z')",
            "INSERT INTO leads (phone, name, created_at) VALUES ('+79001234567', 'Ann', '2026-01-01T00:00:00Z')",
            "INSERT INTO contacts (lead_id, source_id, status, created_at) \
         VALUES (1, 1, 'closed', '2026-01-01T00:00:00Z')",
            "INSERT INTO contacts (lead_id, source_id, status, created_at) \
         VALUES (2, 1, 'closed', '2026-01-01T00:00:00Z')",
        ] {
            database.execute_sql(statement).await;
        }

        let app = TestApp::spawn_on(database).await;
        let lead = app.get_ok("/leads/2").await;
        assert_eq!(lead["lead"]["name"], "Ann", "{lead}");
        assert_eq!(lead["contacts"].as_array().map(Vec::len), Some(1), "{lead}");
        if !app.database.is_postgres() {
            let broken = "SELECT COUNT(*) FROM pragma_foreign_key_check";
            assert_eq!(app.sql_number(broken).await, Some(0));
        }
        // The old leads are found by their identifiers, and the new ones join them.
        let source = 1;
        let again = lead_of(&app, source, json!({ "lead_external_id": "tg-1" })).await;
        assert_eq!(again["id"], 1, "{again}");
        let by_phone = lead_of(&app, source, json!({ "lead_phone": "+7 900 123-45-67" })).await;
        assert_eq!(by_phone["id"], 2, "{by_phone}");
        let new = lead_of(&app, source, json!({ "lead_email": "new@example.com" })).await;
        assert_eq!(new["id"], 3, "{new}");
        assert_eq!(lead_count(&app).await, 3);
        // Still one lead per value, and any number without one.
        for column in ["external_id", "phone", "email"] {
            let value = format!("'{column}-taken'");
            let twice = format!(
                "INSERT INTO leads ({column}, created_at) VALUES ({value}, '2026-01-02T00:00:00Z'), \
             ({value}, '2026-01-02T00:00:00Z')"
            );
            assert!(app.try_execute_sql(&twice).await.is_err(), "{column} twice");
        }
        let without = "INSERT INTO leads (created_at) VALUES ('2026-01-02T00:00:00Z'), \
         ('2026-01-02T00:00:00Z')";
        assert!(app.try_execute_sql(without).await.is_ok());
        // And it is partial indexes that say so, not the constraints of before, which indexed every NULL too.
        let (partial, constraints) = if app.database.is_postgres() {
            (
                "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() \
                 AND tablename = 'leads' AND indexdef LIKE '%UNIQUE%WHERE%IS NOT NULL%'",
                "SELECT COUNT(*) FROM pg_constraint WHERE conrelid = 'leads'::regclass AND contype = 'u'",
            )
        } else {
            (
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'leads' \
                 AND sql LIKE '%UNIQUE%WHERE%IS NOT NULL%'",
                "SELECT COUNT(*) FROM sqlite_master WHERE tbl_name = 'leads' \
                 AND name LIKE 'sqlite_autoindex%'",
            )
        };
        assert_eq!(app.sql_number(partial).await, Some(3));
        assert_eq!(app.sql_number(constraints).await, Some(0));
    }
);
