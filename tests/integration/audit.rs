//! The audit trail: every admin change — operators, sources, weights, webhooks, API keys (with the CLI),
//! manual assignments — is written down in the change's own transaction, with who made it and the target's
//! values before and after; `GET /audit` lists it newest first, filtered and paged, to admin keys only; old
//! entries are forgotten after the configured retention.

use crate::common;

use std::time::Duration;

use chrono::{SecondsFormat, TimeDelta, Utc};
use common::{
    TestApp, assert_unprocessable, call_with_key as call, call_with_key_ok as call_ok,
    create_key_with_id, id_of, keys_command as keys,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// `GET /audit?query`, expecting 200: the entries.
async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let list = app.get_ok(&format!("/audit?{query}")).await;
    list.as_array().expect("an array").clone()
}

/// The entries of one target, newest first.
async fn audit_of(app: &TestApp, target_type: &str, target_id: i64) -> Vec<Value> {
    audit(
        app,
        &format!("target_type={target_type}&target_id={target_id}"),
    )
    .await
}

/// The actions of entries, in order.
fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|entry| entry["action"].as_str().expect("an action"))
        .collect()
}

/// How many entries the trail holds, counted in the database.
async fn entries_stored(app: &TestApp) -> i64 {
    app.sql_number("SELECT COUNT(*) FROM audit_log")
        .await
        .unwrap()
}

/// A time as both databases read it in SQL.
fn sql_time(days_ago: i64) -> String {
    (Utc::now() - TimeDelta::days(days_ago)).to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// An entry written behind the server's back, `at` the given SQL time.
async fn insert_entry(app: &TestApp, at: &str, target_id: i64) {
    app.execute_sql(&format!(
        "INSERT INTO audit_log (at, key_id, actor, action, target_type, target_id, before, after) \
         VALUES ('{at}', NULL, 'open', 'operator.created', 'operator', {target_id}, NULL, '{{}}')"
    ))
    .await;
}

backend_test!(operator_changes_are_recorded_with_their_values, |app| {
    let operator = app.operator("Анна", 5).await;
    app.change_operator(operator, json!({ "max_load": 7 }))
        .await;
    // Nothing changes: nothing is recorded.
    app.change_operator(operator, json!({ "max_load": 7 }))
        .await;
    app.delete_ok(&format!("/operators/{operator}")).await;

    let entries = audit_of(&app, "operator", operator).await;
    assert_eq!(
        actions(&entries),
        ["operator.deleted", "operator.updated", "operator.created"],
        "{entries:?}"
    );
    let (deleted, updated, created) = (&entries[0], &entries[1], &entries[2]);
    assert_eq!(created["before"], Value::Null);
    assert_eq!(created["after"]["name"], "Анна");
    assert_eq!(created["after"]["max_load"], 5);
    assert_eq!(created["after"]["is_active"], true);
    assert_eq!(updated["before"]["max_load"], 5);
    assert_eq!(updated["after"]["max_load"], 7);
    assert_eq!(updated["after"]["name"], "Анна");
    assert_eq!(deleted["before"]["max_load"], 7);
    assert_eq!(deleted["after"], Value::Null);
    for entry in &entries {
        // No key exists: the API is open, and the trail says so.
        assert_eq!(entry["actor"], "open", "{entry}");
        assert_eq!(entry["key_id"], Value::Null, "{entry}");
        assert_eq!(entry["target_type"], "operator");
        assert_eq!(entry["target_id"], operator);
        assert!(entry["at"].as_str().is_some_and(|at| at.ends_with('Z')));
        assert_eq!(
            common::field_names(entry),
            [
                "action",
                "actor",
                "after",
                "at",
                "before",
                "id",
                "key_id",
                "target_id",
                "target_type"
            ]
        );
    }
    // The load is the contacts' doing, not an admin's: it is not among the values.
    assert!(created["after"].get("active_load").is_none(), "{created}");
});

backend_test!(time_off_changes_are_recorded, |app| {
    let operator = app.operator("Анна", 5).await;
    let period = json!({
        "starts_at": "2026-12-24T00:00:00+01:00",
        "ends_at": "2026-12-27T00:00:00+01:00",
        "reason": "Holidays"
    });
    let time_off = app
        .post_ok(&format!("/operators/{operator}/time-off"), period)
        .await;
    let id = id_of(&time_off);
    app.delete_ok(&format!("/operators/{operator}/time-off/{id}"))
        .await;
    let entries = audit_of(&app, "time_off", id).await;
    assert_eq!(
        actions(&entries),
        ["time_off.deleted", "time_off.created"],
        "{entries:?}"
    );
    assert_eq!(entries[1]["after"]["operator_id"], operator);
    assert_eq!(entries[1]["after"]["reason"], "Holidays");
    assert_eq!(
        entries[1]["after"]["starts_at"],
        "2026-12-23T23:00:00.000000Z"
    );
    assert_eq!(entries[0]["before"], entries[1]["after"]);
    assert_eq!(entries[0]["after"], Value::Null);
    // A period that is refused leaves no entry.
    let (status, _) = app
        .post(
            &format!("/operators/{operator}/time-off"),
            json!({ "starts_at": "2026-12-27T00:00:00Z", "ends_at": "2026-12-24T00:00:00Z" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(audit(&app, "action=time_off.created").await.len(), 1);
});

backend_test!(source_and_weight_changes_are_recorded, |app| {
    let source = app.source("Telegram Bot").await;
    let anna = app.operator("Анна", 5).await;
    let boris = app.operator("Борис", 5).await;
    let link = app
        .post_ok(
            &format!("/sources/{source}/operators"),
            json!({ "operator_id": anna, "weight": 10 }),
        )
        .await;
    let weight = id_of(&link);
    app.patch_ok(
        &format!("/sources/{source}/operators/{anna}"),
        json!({ "weight": 30 }),
    )
    .await;
    app.patch_ok(
        &format!("/sources/{source}"),
        json!({ "name": "WhatsApp Bot", "description": "В WhatsApp" }),
    )
    .await;
    app.delete_ok(&format!("/sources/{source}/operators/{anna}"))
        .await;

    let weights = audit_of(&app, "weight", weight).await;
    assert_eq!(
        actions(&weights),
        ["weight.removed", "weight.updated", "weight.set"],
        "{weights:?}"
    );
    let set = &weights[2];
    assert_eq!(set["before"], Value::Null);
    assert_eq!(
        set["after"],
        json!({ "id": weight, "source_id": source, "operator_id": anna, "weight": 10.0 })
    );
    assert_eq!(weights[1]["before"]["weight"], 10.0);
    assert_eq!(weights[1]["after"]["weight"], 30.0);
    assert_eq!(weights[0]["before"]["weight"], 30.0);
    assert_eq!(weights[0]["after"], Value::Null);

    let sources = audit_of(&app, "source", source).await;
    assert_eq!(
        actions(&sources),
        ["source.updated", "source.created"],
        "{sources:?}"
    );
    assert_eq!(sources[1]["after"]["name"], "Telegram Bot");
    assert_eq!(sources[1]["after"]["description"], Value::Null);
    assert_eq!(sources[0]["before"]["name"], "Telegram Bot");
    assert_eq!(sources[0]["after"]["name"], "WhatsApp Bot");
    assert_eq!(sources[0]["after"]["description"], "В WhatsApp");

    // Deleting the source or an operator removes their weights: each removal is written down too.
    let to_source = app
        .post_ok(
            &format!("/sources/{source}/operators"),
            json!({ "operator_id": anna, "weight": 2 }),
        )
        .await;
    let other = app.source("Web widget").await;
    let to_other = app
        .post_ok(
            &format!("/sources/{other}/operators"),
            json!({ "operator_id": boris, "weight": 3 }),
        )
        .await;
    app.delete_ok(&format!("/sources/{source}")).await;
    app.delete_ok(&format!("/operators/{boris}")).await;
    let deleted = audit_of(&app, "source", source).await;
    assert_eq!(deleted[0]["action"], "source.deleted");
    assert_eq!(deleted[0]["before"]["name"], "WhatsApp Bot");
    assert_eq!(deleted[0]["after"], Value::Null);
    for (link, source_id, operator_id) in [(&to_source, source, anna), (&to_other, other, boris)] {
        let removed = audit_of(&app, "weight", id_of(link)).await;
        assert_eq!(
            actions(&removed),
            ["weight.removed", "weight.set"],
            "{removed:?}"
        );
        assert_eq!(removed[0]["before"]["source_id"], source_id);
        assert_eq!(removed[0]["before"]["operator_id"], operator_id);
    }
});

backend_test!(webhook_changes_are_recorded_without_their_secret, |app| {
    let secret = "a-long-shared-secret-to-keep";
    let webhook = app
        .post_ok(
            "/webhooks",
            json!({ "url": "http://127.0.0.1:9/hook", "events": ["contact.assigned"], "secret": secret }),
        )
        .await;
    let generated = app
        .post_ok(
            "/webhooks",
            json!({ "url": "http://127.0.0.1:9/other", "events": ["contact.created"] }),
        )
        .await;
    let generated_secret = generated["secret"].as_str().unwrap().to_owned();
    app.delete_ok(&format!("/webhooks/{}", webhook["id"])).await;

    let entries = audit_of(&app, "webhook", id_of(&webhook)).await;
    assert_eq!(
        actions(&entries),
        ["webhook.deleted", "webhook.created"],
        "{entries:?}"
    );
    let created = &entries[1]["after"];
    assert_eq!(created["url"], "http://127.0.0.1:9/hook");
    assert_eq!(created["events"], json!(["contact.assigned"]));
    assert!(created.get("secret").is_none(), "{created}");
    assert_eq!(entries[0]["before"]["url"], "http://127.0.0.1:9/hook");
    assert_eq!(entries[0]["after"], Value::Null);

    // Neither secret is anywhere in the trail, as served or as stored.
    let everything = app.get_ok("/audit").await.to_string();
    assert_eq!(audit(&app, "target_type=webhook").await.len(), 3);
    for secret in [secret, generated_secret.as_str()] {
        assert!(!everything.contains(secret), "{everything}");
        let stored = app
            .sql_number(&format!(
                "SELECT COUNT(*) FROM audit_log WHERE before LIKE '%{secret}%' OR after LIKE '%{secret}%'"
            ))
            .await;
        assert_eq!(stored, Some(0));
    }
});

backend_test!(manual_assignments_are_recorded_and_bots_are_not, |app| {
    let (source, anna) = app.source_with_operator("Анна", 5).await;
    let boris = app.inactive_operator("Борис", 5).await;
    let before_contacts = entries_stored(&app).await;
    // A bot's contact, and an operator closing and reopening it: no admin change, nothing in the trail.
    let contact = id_of(&app.contact_through(source).await);
    app.set_status(contact, "closed").await;
    app.set_status(contact, "active").await;
    assert_eq!(entries_stored(&app).await, before_contacts);

    let (status, answer) = app
        .patch(
            &format!("/contacts/{contact}"),
            json!({ "operator_id": boris, "force": true }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    app.assign_ok(contact, json!(anna)).await;
    // The operator it has already: no change.
    app.assign_ok(contact, json!(anna)).await;
    app.assign_ok(contact, Value::Null).await;

    let entries = audit_of(&app, "contact", contact).await;
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert!(
        entries
            .iter()
            .all(|e| e["action"] == "contact.assigned_manually")
    );
    let (taken, back, forced) = (&entries[0], &entries[1], &entries[2]);
    assert_eq!(
        forced["before"],
        json!({ "operator_id": anna, "status": "active" })
    );
    assert_eq!(
        forced["after"],
        json!({ "operator_id": boris, "status": "active", "force": true })
    );
    assert_eq!(back["before"]["operator_id"], boris);
    assert_eq!(back["after"]["operator_id"], anna);
    assert_eq!(back["after"]["force"], false);
    assert_eq!(taken["before"]["operator_id"], anna);
    assert_eq!(taken["after"]["operator_id"], Value::Null);
});

backend_test!(
    the_key_is_recorded_and_only_admin_keys_read_the_trail,
    |app| {
        // While no key exists, changes are the open API's.
        let early = app.operator("Анна", 5).await;
        let (admin_id, admin) = create_key_with_id(&app, "admin", "ops team");
        let (read_id, read) = create_key_with_id(&app, "read", "dashboard");
        let (_, ingest) = create_key_with_id(&app, "ingest", "telegram-bot");
        let created = call_ok(
            &app,
            Some(&admin),
            Method::POST,
            "/operators/",
            Some(json!({ "name": "Борис" })),
        )
        .await;
        keys(&app, &["revoke", "dashboard"]);

        let get = |query: &str| {
            let path = format!("/audit?{query}");
            let admin = admin.clone();
            let app = &app;
            async move {
                let list = call_ok(app, Some(&admin), Method::GET, &path, None).await;
                list.as_array().unwrap().clone()
            }
        };
        let early_entries = get(&format!("target_type=operator&target_id={early}")).await;
        assert_eq!(early_entries[0]["actor"], "open");
        assert_eq!(early_entries[0]["key_id"], Value::Null);
        let with_key = get(&format!("key_id={admin_id}")).await;
        assert_eq!(actions(&with_key), ["operator.created"], "{with_key:?}");
        assert_eq!(with_key[0]["target_id"], id_of(&created));
        assert_eq!(with_key[0]["actor"], format!("key {admin_id}"));
        assert_eq!(with_key[0]["key_id"], admin_id);

        // The CLI's key changes, by "cli", without tokens or their hashes.
        let key_entries = get("target_type=api_key").await;
        assert_eq!(
            actions(&key_entries),
            ["key.revoked", "key.created", "key.created", "key.created"],
            "{key_entries:?}"
        );
        assert!(
            key_entries
                .iter()
                .all(|e| e["actor"] == "cli" && e["key_id"].is_null())
        );
        let admin_created = &get(&format!("target_type=api_key&target_id={admin_id}")).await[0];
        assert_eq!(admin_created["after"]["name"], "ops team");
        assert_eq!(admin_created["after"]["scope"], "admin");
        assert_eq!(admin_created["after"]["revoked_at"], Value::Null);
        assert!(admin_created["after"].get("token_hash").is_none());
        let revoked = &key_entries[0];
        assert_eq!(revoked["target_id"], read_id);
        assert_eq!(revoked["before"]["revoked_at"], Value::Null);
        assert!(revoked["after"]["revoked_at"].is_string(), "{revoked}");
        assert_eq!(revoked["after"]["name"], "dashboard");
        let everything = get("").await;
        let text = Value::Array(everything).to_string();
        for token in [&admin, &read, &ingest] {
            assert!(!text.contains(token.as_str()));
            let hash = leadrouter::domain::access::token_hash(token);
            assert!(!text.contains(&hash), "a token's hash in {text}");
        }

        // Admin keys only: read and ingest keys are refused, no key is unauthorised.
        let (_, reader) = create_key_with_id(&app, "read", "reporting");
        for token in [&reader, &ingest] {
            let (status, body) = call(&app, Some(token), Method::GET, "/audit", None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        }
        let (status, _) = call(&app, None, Method::GET, "/audit/", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(the_trail_is_filtered_and_paged_newest_first, |app| {
    let anna = app.operator("Анна", 5).await;
    app.operator("Борис", 5).await;
    app.operator("Вера", 5).await;
    let source = app.source("Telegram Bot").await;
    app.change_operator(anna, json!({ "is_active": false }))
        .await;

    let all = audit(&app, "").await;
    assert_eq!(
        actions(&all),
        [
            "operator.updated",
            "source.created",
            "operator.created",
            "operator.created",
            "operator.created"
        ]
    );
    let ids: Vec<i64> = all.iter().map(id_of).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let times: Vec<&str> = all.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    assert_eq!(audit(&app, "action=operator.created").await.len(), 3);
    assert_eq!(
        audit(&app, "target_type=source").await[0]["target_id"],
        source
    );
    assert_eq!(
        actions(&audit(&app, &format!("target_type=operator&target_id={anna}")).await),
        ["operator.updated", "operator.created"]
    );
    assert!(audit(&app, "key_id=1").await.is_empty());
    let first_page = audit(&app, "limit=2").await;
    let second_page = audit(&app, "skip=2&limit=2").await;
    let last_page = audit(&app, "skip=4&limit=2").await;
    let paged: Vec<Value> = [first_page, second_page, last_page].concat();
    assert_eq!(paged, all);

    // By time: the oldest entry moved back to 2020; `since` is inclusive, `until` exclusive.
    let oldest = id_of(&all[4]);
    app.execute_sql(&format!(
        "UPDATE audit_log SET at = '2020-01-01T00:00:00+00:00' WHERE id = {oldest}"
    ))
    .await;
    let before_2021 = audit(&app, "until=2021-01-01T00:00:00Z").await;
    assert_eq!(before_2021.len(), 1);
    assert_eq!(id_of(&before_2021[0]), oldest);
    assert_eq!(before_2021[0]["at"], "2020-01-01T00:00:00.000000Z");
    assert_eq!(audit(&app, "since=2021-01-01T00:00:00Z").await.len(), 4);
    assert_eq!(
        audit(
            &app,
            "since=2020-01-01T00:00:00Z&until=2020-01-01T00:00:00.000001Z"
        )
        .await
        .len(),
        1
    );
    assert!(
        audit(&app, "until=2020-01-01T00:00:00Z").await.is_empty(),
        "until is exclusive"
    );
    assert_eq!(
        audit(
            &app,
            "since=2020-01-01T03:00:00%2B03:00&until=2021-01-01T00:00:00Z"
        )
        .await
        .len(),
        1,
        "an offset, sent as %2B"
    );
    assert_eq!(id_of(&audit(&app, "").await[4]), oldest, "oldest last");

    for (query, field) in [
        ("target_type=lead", "target_type"),
        ("target_id=abc", "target_id"),
        ("key_id=1.5", "key_id"),
        ("action=operator.renamed", "action"),
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("skip=-1", "skip"),
        ("limit=0", "limit"),
        ("limit=many", "limit"),
    ] {
        let answer = app.get(&format!("/audit?{query}")).await;
        assert_unprocessable(&answer, query);
        let detail = answer.1["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("{field}: ")),
            "{query}: {detail}"
        );
    }
});

/// A trigger that makes every insert into `table` matching `condition` (SQL over `NEW`) fail.
async fn install_fault(app: &TestApp, table: &str, condition: &str) {
    if app.database.is_postgres() {
        app.execute_sql(&format!(
            "CREATE FUNCTION injected_fault() RETURNS trigger AS $$ BEGIN \
             IF {condition} THEN RAISE EXCEPTION 'injected fault'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
        ))
        .await;
        app.execute_sql(&format!(
            "CREATE TRIGGER injected_fault BEFORE INSERT ON {table} \
             FOR EACH ROW EXECUTE FUNCTION injected_fault()"
        ))
        .await;
    } else {
        app.execute_sql(&format!(
            "CREATE TRIGGER injected_fault BEFORE INSERT ON {table} \
             WHEN {condition} BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
        ))
        .await;
    }
}

backend_test!(a_change_that_fails_leaves_no_entry, |app| {
    let (source, anna) = app.source_with_operator("Анна", 0).await;
    let boris = app.inactive_operator("Борис", 5).await;
    let contact = id_of(&app.contact_through(source).await);
    let stored = entries_stored(&app).await;

    // Refused before anything is written.
    for (status, answer) in [
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            app.patch(&format!("/operators/{anna}"), json!({ "max_load": -1 }))
                .await,
        ),
        (
            StatusCode::NOT_FOUND,
            app.patch("/operators/9999", json!({ "max_load": 3 })).await,
        ),
        (StatusCode::NOT_FOUND, app.delete("/operators/9999").await),
        (
            StatusCode::CONFLICT,
            app.post("/sources/", json!({ "name": "Telegram Bot" }))
                .await,
        ),
        (
            StatusCode::NOT_FOUND,
            app.post(
                &format!("/sources/{source}/operators"),
                json!({ "operator_id": 9999 }),
            )
            .await,
        ),
        (
            StatusCode::NOT_FOUND,
            app.patch(
                &format!("/sources/{source}/operators/{boris}"),
                json!({ "weight": 2 }),
            )
            .await,
        ),
        (StatusCode::NOT_FOUND, app.delete("/webhooks/9999").await),
        (
            StatusCode::CONFLICT,
            app.patch(
                &format!("/contacts/{contact}"),
                json!({ "operator_id": boris }),
            )
            .await,
        ),
    ] {
        assert_eq!(status, answer.0, "{}", answer.1);
    }
    assert_eq!(entries_stored(&app).await, stored);

    // Failing in the database after its entry was written: raising max_load drains the queue, and the
    // assignment's history entry fails. Neither the change nor its entry stays.
    install_fault(&app, "contact_history", "NEW.reason = 'queue'").await;
    let (status, answer) = app
        .patch(&format!("/operators/{anna}"), json!({ "max_load": 1 }))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    assert_eq!(entries_stored(&app).await, stored);
    assert_eq!(
        app.get_ok(&format!("/operators/{anna}")).await["max_load"],
        0
    );
});

backend_test!(an_entry_that_cannot_be_written_fails_its_change, |app| {
    let operator = app.operator("Анна", 5).await;
    install_fault(&app, "audit_log", "NEW.action = 'operator.updated'").await;
    let (status, answer) = app
        .patch(&format!("/operators/{operator}"), json!({ "max_load": 9 }))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    assert_eq!(
        app.get_ok(&format!("/operators/{operator}")).await["max_load"],
        5,
        "a change is never committed without its entry"
    );
});

backend_test!(old_entries_are_forgotten_after_the_retention, |app| {
    let operator = app.operator("Анна", 5).await;
    insert_entry(&app, "2020-01-01T00:00:00+00:00", 1001).await;
    insert_entry(&app, &sql_time(200), 1002).await;
    insert_entry(&app, &sql_time(20), 1003).await;
    let targets = |entries: &[Value]| -> Vec<i64> {
        entries
            .iter()
            .map(|e| e["target_id"].as_i64().unwrap())
            .collect()
    };

    // The purge runs as the server starts: the default keeps a year.
    let app = TestApp::spawn_on(app.stop().await).await;
    let left = app
        .poll_get("/audit", Duration::from_secs(20), |list| {
            list.as_array().is_some_and(|l| l.len() == 3)
        })
        .await;
    assert_eq!(targets(left.as_array().unwrap()), [operator, 1003, 1002]);

    // 30 days: the entry of 200 days ago goes too.
    let database = app.stop().await;
    let app = TestApp::spawn_on_with(database, |config| config.audit_retention_days = 30).await;
    let left = app
        .poll_get("/audit", Duration::from_secs(20), |list| {
            list.as_array().is_some_and(|l| l.len() == 2)
        })
        .await;
    assert_eq!(targets(left.as_array().unwrap()), [operator, 1003]);
});

backend_test!(
    a_retention_of_zero_keeps_the_trail_forever,
    config = |config: &mut leadrouter::Config| config.audit_retention_days = 0,
    |app| {
        insert_entry(&app, "2000-01-01T00:00:00+00:00", 1001).await;
        // An expired idempotency key: once it is gone, the purge has run.
        let source = app.source("Telegram Bot").await;
        let response = app
            .client
            .post(app.url("/contacts/"))
            .header("Idempotency-Key", "old")
            .json(&json!({ "source_id": source }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        app.execute_sql(
            "UPDATE idempotency_keys SET created_at = '2020-01-01T00:00:00+00:00' WHERE key = 'old'",
        )
        .await;
        let database = app.stop().await;
        let app = TestApp::spawn_on_with(database, |config| config.audit_retention_days = 0).await;
        common::poll_until(
            Duration::from_secs(20),
            Duration::from_millis(100),
            async || {
                app.sql_number("SELECT COUNT(*) FROM idempotency_keys")
                    .await
            },
            |count| *count == Some(0),
        )
        .await;
        assert_eq!(
            app.sql_number("SELECT COUNT(*) FROM idempotency_keys")
                .await,
            Some(0),
            "the purge ran"
        );
        let old = audit(&app, "target_id=1001").await;
        assert_eq!(old.len(), 1, "kept forever");
    }
);
