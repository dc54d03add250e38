//! A source's work rules (issue 12): `on_operator_unavailable` (an operator who stops taking contacts keeps
//! them, or they go back to the queue), `sticky_hours` (a returning lead goes back to their operator) and
//! `accept_timeout_secs` with `POST /contacts/{id}/accept` and `/decline`. Time is a manual clock the tests
//! move; what the timer does in the background is waited for, never slept through.

use crate::common;

use std::time::Duration;

use chrono::TimeDelta;
use common::receiver::Receiver;
use common::{
    TestApp, assert_error, assert_unprocessable, id_of, monday_10am, poll_until, test_config,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn requeuing_source(app: &TestApp) -> i64 {
    app.source_with("Requeue", json!({ "on_operator_unavailable": "requeue" }))
        .await
}

/// (event, reason, from, to) of each entry of the contact's history.
async fn history_of(app: &TestApp, contact_id: i64) -> Vec<(String, String, Value, Value)> {
    let history = app.get_ok(&format!("/contacts/{contact_id}/history")).await;
    history
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["event"].as_str().unwrap().to_owned(),
                entry["reason"].as_str().unwrap().to_owned(),
                entry["from_operator_id"].clone(),
                entry["to_operator_id"].clone(),
            )
        })
        .collect()
}

/// Waits (at most 10 s of real time) until the contact satisfies `done`; returns it.
async fn contact_when(app: &TestApp, contact_id: i64, done: impl Fn(&Value) -> bool) -> Value {
    poll_until(
        Duration::from_secs(10),
        Duration::from_millis(20),
        async || app.fetch_contact(contact_id).await,
        |contact| done(contact),
    )
    .await
}

async fn contact_of_lead(app: &TestApp, source: i64, lead: &str) -> Value {
    app.contact(json!({ "source_id": source, "lead_external_id": lead }))
        .await
}

fn contact_action(contact_id: i64, action: &str) -> String {
    format!("/contacts/{contact_id}/{action}")
}

// ---- the rules as fields of the source ----

backend_test!(work_rules_are_fields_of_every_source_response, |app| {
    let (status, plain) = app.post("/sources/", json!({ "name": "Plain" })).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(plain["on_operator_unavailable"], "keep");
    assert_eq!(plain["sticky_hours"], 0);
    assert_eq!(plain["accept_timeout_secs"], 0);

    let rules = json!({ "on_operator_unavailable": "requeue", "sticky_hours": 24, "accept_timeout_secs": 120 });
    let id = app.source_with("Ruled", rules).await;
    let detail = app.get_ok(&format!("/sources/{id}")).await;
    let listed = app.get_ok("/sources/").await;
    let listed = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap()
        .clone();
    for source in [&detail, &listed] {
        assert_eq!(source["on_operator_unavailable"], "requeue", "{source}");
        assert_eq!(source["sticky_hours"], 24, "{source}");
        assert_eq!(source["accept_timeout_secs"], 120, "{source}");
    }

    let changed = app
        .patch_ok(
            &format!("/sources/{id}"),
            json!({ "sticky_hours": 0, "accept_timeout_secs": 30 }),
        )
        .await;
    assert_eq!(changed["on_operator_unavailable"], "requeue", "kept");
    assert_eq!(changed["sticky_hours"], 0);
    assert_eq!(changed["accept_timeout_secs"], 30);
    // A contact embeds its source's own fields only.
    let operator = app.operator("Анна", 5).await;
    app.link(id, operator, 1.0).await;
    let contact = app.contact_through(id).await;
    assert!(
        contact["source"].get("accept_timeout_secs").is_none(),
        "{contact}"
    );
});

backend_test!(invalid_work_rules_are_refused_by_name, |app| {
    let id = app.source("Bot").await;
    for (body, field) in [
        (
            json!({ "on_operator_unavailable": "drop" }),
            "on_operator_unavailable",
        ),
        (
            json!({ "on_operator_unavailable": null }),
            "on_operator_unavailable",
        ),
        (
            json!({ "on_operator_unavailable": 1 }),
            "on_operator_unavailable",
        ),
        (json!({ "sticky_hours": -1 }), "sticky_hours"),
        (json!({ "sticky_hours": 8785 }), "sticky_hours"),
        (json!({ "sticky_hours": 1.5 }), "sticky_hours"),
        (json!({ "sticky_hours": null }), "sticky_hours"),
        (json!({ "accept_timeout_secs": -5 }), "accept_timeout_secs"),
        (
            json!({ "accept_timeout_secs": 86_401 }),
            "accept_timeout_secs",
        ),
        (
            json!({ "accept_timeout_secs": "60" }),
            "accept_timeout_secs",
        ),
    ] {
        let mut create = json!({ "name": format!("New {field}") });
        create
            .as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        let answer = app.post("/sources/", create).await;
        assert_unprocessable(&answer, field);
        let answer = app.patch(&format!("/sources/{id}"), body.clone()).await;
        assert_unprocessable(&answer, field);
    }
    let unchanged = app.get_ok(&format!("/sources/{id}")).await;
    assert_eq!(unchanged["sticky_hours"], 0);
    assert_eq!(app.count_of("/sources/").await, 1, "nothing half-created");
});

// ---- an operator who stops taking contacts ----

backend_test!(
    requeue_gives_an_away_operators_contacts_back_at_their_age,
    clock = monday_10am(),
    |app, clock| {
        let _ = &clock;
        let requeuing = app
            .source_with("Requeue", json!({ "on_operator_unavailable": "requeue" }))
            .await;
        let keeping = app.source("Keep").await;
        let anna = app.operator("Анна", 3).await;
        let boris = app.operator("Борис", 0).await;
        app.link(requeuing, anna, 1.0).await;
        app.link(requeuing, boris, 1.0).await;
        app.link(keeping, anna, 1.0).await;
        let first = id_of(&app.contact_through(requeuing).await);
        let second = id_of(&app.contact_through(requeuing).await);
        let kept = id_of(&app.contact_through(keeping).await);
        let waiting = id_of(&app.contact_through(requeuing).await);
        assert_eq!(app.fetch_contact(waiting).await["operator_id"], Value::Null);

        app.change_operator(anna, json!({ "availability": "away" }))
            .await;
        // Back in the queue, ahead of the contact that arrived after them.
        let queue = app.get_ok(&format!("/sources/{requeuing}/queue")).await;
        let order: Vec<(i64, i64)> = queue
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (id_of(c), c["queue_position"].as_i64().unwrap()))
            .collect();
        assert_eq!(order, vec![(first, 1), (second, 2), (waiting, 3)]);
        assert_eq!(
            app.fetch_contact(kept).await["operator_id"],
            anna,
            "keep keeps"
        );
        assert_eq!(app.load_of(anna).await, 1);
        let requeued = app.fetch_contact(first).await;
        assert_eq!(requeued["assigned_at"], Value::Null);
        assert_eq!(
            history_of(&app, first).await.last().unwrap(),
            &(
                "unassigned".to_owned(),
                "operator_unavailable".to_owned(),
                json!(anna),
                Value::Null
            )
        );

        // Capacity elsewhere takes them, oldest first.
        app.change_operator(boris, json!({ "max_load": 2 })).await;
        assert_eq!(app.fetch_contact(first).await["operator_id"], boris);
        assert_eq!(app.fetch_contact(second).await["operator_id"], boris);
        assert_eq!(app.fetch_contact(waiting).await["operator_id"], Value::Null);
    }
);

backend_test!(
    keep_leaves_the_contacts_with_an_operator_who_stops,
    clock = monday_10am(),
    |app, clock| {
        let _ = &clock;
        let (source, anna) = app.source_with_operator("Анна", 3).await;
        let boris = app.operator("Борис", 3).await;
        let contact = id_of(&app.contact_through(source).await);
        app.link(source, boris, 1.0).await;
        app.change_operator(anna, json!({ "availability": "offline" }))
            .await;
        assert_eq!(app.fetch_contact(contact).await["operator_id"], anna);
        app.change_operator(anna, json!({ "is_active": false }))
            .await;
        assert_eq!(app.fetch_contact(contact).await["operator_id"], anna);
    }
);

backend_test!(
    requeue_follows_the_clock_when_a_shift_ends_and_time_off_starts,
    clock = monday_10am(),
    |app, clock| {
        let source = requeuing_source(&app).await;
        let anna = app.operator("Анна", 5).await;
        app.change_operator(
            anna,
            json!({ "schedule": [{ "days": ["mon"], "start": "09:00", "end": "18:00" }] }),
        )
        .await;
        app.link(source, anna, 1.0).await;
        let by_shift = id_of(&app.contact_through(source).await);
        assert_eq!(app.fetch_contact(by_shift).await["operator_id"], anna);

        // 18:00: the shift ends, and the timer gives the contact back.
        clock.advance(TimeDelta::hours(8));
        let requeued = contact_when(&app, by_shift, |c| c["operator_id"].is_null()).await;
        assert_eq!(requeued["queue_position"], 1);
        assert_eq!(
            history_of(&app, by_shift).await.last().unwrap().1,
            "operator_unavailable"
        );

        // Tuesday: no shift; with an always-on schedule again, the queue drains back to Anna.
        clock.advance(TimeDelta::hours(6));
        app.change_operator(anna, json!({ "schedule": null })).await;
        assert_eq!(app.fetch_contact(by_shift).await["operator_id"], anna);

        // Time off that starts later is picked up by the timer when it starts…
        let starts = clock.now() + TimeDelta::minutes(30);
        let (status, _) = app
            .post(
                &format!("/operators/{anna}/time-off"),
                json!({ "starts_at": starts, "ends_at": starts + TimeDelta::days(1) }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(app.fetch_contact(by_shift).await["operator_id"], anna);
        clock.advance(TimeDelta::minutes(31));
        contact_when(&app, by_shift, |c| c["operator_id"].is_null()).await;
    }
);

backend_test!(
    time_off_under_way_requeues_at_once,
    clock = monday_10am(),
    |app, clock| {
        let source = requeuing_source(&app).await;
        let anna = app.operator("Анна", 5).await;
        let boris = app.operator("Борис", 5).await;
        app.link(source, anna, 1.0).await;
        let contact = id_of(&app.contact_through(source).await);
        app.link(source, boris, 1.0).await;
        let now = clock.now();
        let (status, _) = app
            .post(
                &format!("/operators/{anna}/time-off"),
                json!({ "starts_at": now - TimeDelta::hours(1), "ends_at": now + TimeDelta::days(1) }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        // In the same request: requeued, and drained to the one who is here.
        assert_eq!(app.fetch_contact(contact).await["operator_id"], boris);
        let history = history_of(&app, contact).await;
        assert_eq!(
            history[history.len() - 2..],
            [
                (
                    "unassigned".to_owned(),
                    "operator_unavailable".to_owned(),
                    json!(anna),
                    Value::Null
                ),
                (
                    "assigned".to_owned(),
                    "queue".to_owned(),
                    Value::Null,
                    json!(boris)
                ),
            ]
        );
    }
);

// ---- returning leads ----

backend_test!(
    a_returning_lead_goes_back_to_their_operator_through_any_source,
    clock = monday_10am(),
    |app, clock| {
        let first_source = app.source("Telegram").await;
        let sticky = app
            .source_with("WhatsApp", json!({ "sticky_hours": 24 }))
            .await;
        let anna = app.operator("Анна", 100).await;
        let boris = app.operator("Борис", 100).await;
        for source in [first_source, sticky] {
            app.link(source, anna, 1.0).await;
            app.link(source, boris, 1.0).await;
        }
        let first = contact_of_lead(&app, first_source, "lead-1").await;
        let theirs = first["operator_id"].clone();
        for _ in 0..8 {
            let again = contact_of_lead(&app, sticky, "lead-1").await;
            assert_eq!(again["operator_id"], theirs, "{again}");
            assert_eq!(history_of(&app, id_of(&again)).await[0].1, "sticky");
        }
        // Other leads are drawn by weight: both operators get some.
        let mut seen = std::collections::HashSet::new();
        for lead in 0..40 {
            let other = contact_of_lead(&app, sticky, &format!("other-{lead}")).await;
            seen.insert(other["operator_id"].as_i64().unwrap());
            assert_eq!(history_of(&app, id_of(&other)).await[0].1, "creation");
        }
        assert_eq!(seen.len(), 2, "{seen:?}");

        // Past the window the normal rule applies again.
        clock.advance(TimeDelta::hours(25));
        let later = contact_of_lead(&app, sticky, "lead-1").await;
        assert_eq!(history_of(&app, id_of(&later)).await[0].1, "creation");
    }
);

backend_test!(
    a_returning_lead_falls_back_when_their_operator_cannot_take_it,
    clock = monday_10am(),
    |app, clock| {
        let _ = &clock;
        let sticky = app
            .source_with("Sticky", json!({ "sticky_hours": 2 }))
            .await;
        let elsewhere = app.source("Elsewhere").await;
        let anna = app.operator("Анна", 1).await;
        let boris = app.operator("Борис", 100).await;
        let carol = app.operator("Карина", 100).await;
        app.link(sticky, anna, 1.0).await;
        app.link(sticky, boris, 1.0).await;
        app.link(elsewhere, carol, 1.0).await;

        // Anna's lead comes back while Anna is full: Boris, by the normal rule.
        app.change_operator(boris, json!({ "is_active": false }))
            .await;
        let with_anna = contact_of_lead(&app, sticky, "lead-a").await;
        assert_eq!(with_anna["operator_id"], anna);
        app.change_operator(boris, json!({ "is_active": true }))
            .await;
        let full = contact_of_lead(&app, sticky, "lead-a").await;
        assert_eq!(full["operator_id"], boris, "{full}");
        assert_eq!(history_of(&app, id_of(&full)).await[0].1, "creation");

        // Boris is the lead's latest operator now; while he is away, the lead goes to Anna (freed).
        app.set_status(id_of(&with_anna), "closed").await;
        app.change_operator(boris, json!({ "availability": "away" }))
            .await;
        let away = contact_of_lead(&app, sticky, "lead-a").await;
        assert_eq!(away["operator_id"], anna, "{away}");
        assert_eq!(history_of(&app, id_of(&away)).await[0].1, "creation");

        // A lead whose operator is not linked to this source: the normal rule.
        let with_carol = contact_of_lead(&app, elsewhere, "lead-c").await;
        assert_eq!(with_carol["operator_id"], carol);
        app.change_operator(boris, json!({ "availability": "available" }))
            .await;
        let not_linked = contact_of_lead(&app, sticky, "lead-c").await;
        assert_eq!(not_linked["operator_id"], boris, "{not_linked}");
        assert_eq!(history_of(&app, id_of(&not_linked)).await[0].1, "creation");
    }
);

// ---- accept, decline, timeout ----

backend_test!(accepting_a_contact_records_it_once, |app| {
    let source = app
        .source_with("Bot", json!({ "accept_timeout_secs": 60 }))
        .await;
    let anna = app.operator("Анна", 1).await;
    app.link(source, anna, 1.0).await;
    let contact = app.contact_through(source).await;
    let id = id_of(&contact);
    assert!(contact["assigned_at"].is_string(), "{contact}");
    assert_eq!(contact["accepted_at"], Value::Null);

    let accepted = app.post_ok(&contact_action(id, "accept"), json!({})).await;
    assert!(accepted["accepted_at"].is_string(), "{accepted}");
    let again = app.post_ok(&contact_action(id, "accept"), json!({})).await;
    assert_eq!(again["accepted_at"], accepted["accepted_at"]);
    let accepted_entries = history_of(&app, id)
        .await
        .into_iter()
        .filter(|entry| entry.0 == "accepted")
        .count();
    assert_eq!(accepted_entries, 1);

    // Only an active contact with an operator can be accepted or declined.
    let waiting = id_of(&app.contact_through(source).await);
    for action in ["accept", "decline"] {
        let answer = app.post(&contact_action(waiting, action), json!({})).await;
        assert_error(&answer, StatusCode::CONFLICT, "no operator");
    }
    app.set_status(id, "closed").await;
    for action in ["accept", "decline"] {
        let answer = app.post(&contact_action(id, action), json!({})).await;
        assert_error(&answer, StatusCode::CONFLICT, "not active");
        let answer = app.post(&contact_action(999_999, action), json!({})).await;
        assert_error(&answer, StatusCode::NOT_FOUND, "no such contact");
        let answer = app
            .post(&format!("/contacts/abc/{action}"), json!({}))
            .await;
        assert_unprocessable(&answer, "id");
    }
});

backend_test!(
    a_declined_contact_goes_to_someone_who_has_not_declined_it,
    |app| {
        let source = app.source("Bot").await;
        let anna = app.operator("Анна", 5).await;
        let boris = app.operator("Борис", 5).await;
        app.link(source, anna, 1.0).await;
        let id = id_of(&app.contact_through(source).await);
        app.link(source, boris, 1.0).await;

        let declined = app.post_ok(&contact_action(id, "decline"), json!({})).await;
        assert_eq!(declined["operator_id"], boris, "{declined}");
        assert_eq!(app.load_of(anna).await, 0);
        assert_eq!(
            history_of(&app, id).await.last().unwrap(),
            &(
                "assigned".to_owned(),
                "declined".to_owned(),
                json!(anna),
                json!(boris)
            )
        );
        // Boris declines too: nobody is left, and it waits, kept from both though both have room.
        let waiting = app.post_ok(&contact_action(id, "decline"), json!({})).await;
        assert_eq!(waiting["operator_id"], Value::Null, "{waiting}");
        assert_eq!(waiting["queue_position"], 1);
        assert_eq!(
            history_of(&app, id).await.last().unwrap().1,
            "declined",
            "unassigned, declined"
        );
        // A newer contact is not held up behind it.
        let newer = app.contact_through(source).await;
        assert!(!newer["operator_id"].is_null(), "{newer}");
        // Someone new takes it.
        let carol = app.operator("Карина", 5).await;
        app.link(source, carol, 1.0).await;
        assert_eq!(app.fetch_contact(id).await["operator_id"], carol);
    }
);

backend_test!(
    a_contact_not_accepted_in_time_goes_to_another,
    clock = monday_10am(),
    |app, clock| {
        let source = app
            .source_with("Bot", json!({ "accept_timeout_secs": 60 }))
            .await;
        let anna = app.operator("Анна", 5).await;
        let boris = app.operator("Борис", 5).await;
        app.link(source, anna, 1.0).await;
        let id = id_of(&app.contact_through(source).await);
        let accepted = id_of(&app.contact_through(source).await);
        app.post_ok(&contact_action(accepted, "accept"), json!({}))
            .await;
        app.link(source, boris, 1.0).await;

        clock.advance(TimeDelta::seconds(59));
        assert_eq!(app.fetch_contact(id).await["operator_id"], anna);
        clock.advance(TimeDelta::seconds(2));
        let moved = contact_when(&app, id, |c| c["operator_id"] == boris).await;
        assert_eq!(moved["accepted_at"], Value::Null);
        assert_eq!(
            history_of(&app, id).await.last().unwrap(),
            &(
                "assigned".to_owned(),
                "accept_timeout".to_owned(),
                json!(anna),
                json!(boris)
            )
        );
        assert_eq!(app.load_of(anna).await, 1, "the accepted one stays");
        assert_eq!(app.fetch_contact(accepted).await["operator_id"], anna);

        // Boris does not accept either: nobody is left, and it waits, kept from Anna though she has room.
        clock.advance(TimeDelta::seconds(61));
        let waiting = contact_when(&app, id, |c| c["operator_id"].is_null()).await;
        assert_eq!(waiting["queue_position"], 1);
        assert_eq!(
            history_of(&app, id).await.last().unwrap().1,
            "accept_timeout"
        );
        let newer = app.contact_through(source).await;
        assert!(!newer["operator_id"].is_null(), "{newer}");
        assert_eq!(app.fetch_contact(id).await["operator_id"], Value::Null);
    }
);

backend_test!(
    a_timeout_seen_by_two_instances_hands_the_contact_on_once,
    clock = monday_10am(),
    |app, clock| {
        let receiver = Receiver::start(0).await;
        let (status, _) = app
            .post(
                "/webhooks",
                json!({ "url": receiver.url(), "events": ["contact.assigned"] }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let source = app
            .source_with("Bot", json!({ "accept_timeout_secs": 30 }))
            .await;
        let anna = app.operator("Анна", 5).await;
        let boris = app.operator("Борис", 5).await;
        let carol = app.operator("Карина", 5).await;
        app.link(source, anna, 1.0).await;
        let id = id_of(&app.contact_through(source).await);
        app.link(source, boris, 1.0).await;
        app.link(source, carol, 1.0).await;
        let second =
            leadrouter::Server::start_with_clock(&test_config(&app.database.url), clock.clone())
                .await
                .expect("second instance starts");

        clock.advance(TimeDelta::seconds(31));
        let moved = contact_when(&app, id, |c| c["operator_id"] != anna).await;
        // Let both timers look at least once more after the hand-on.
        clock.advance(TimeDelta::seconds(1));
        let history = history_of(&app, id).await;
        let timeouts = history.iter().filter(|e| e.1 == "accept_timeout").count();
        assert_eq!(timeouts, 1, "{history:?}");
        assert_eq!(
            app.fetch_contact(id).await["operator_id"],
            moved["operator_id"]
        );
        let loads = app.load_of(anna).await + app.load_of(boris).await + app.load_of(carol).await;
        assert_eq!(loads, 1);

        // The webhook says why.
        let received = receiver
            .wait_for(
                |received| {
                    received
                        .iter()
                        .any(|r| r.json["data"]["change"]["reason"] == "accept_timeout")
                },
                common::receiver::DEADLINE,
            )
            .await;
        let event = received
            .iter()
            .find(|r| r.json["data"]["change"]["reason"] == "accept_timeout")
            .expect("a contact.assigned event for the timeout");
        assert_eq!(event.event_type(), Some("contact.assigned"));
        assert_eq!(event.contact_id(), Some(id));
        drop(second);
    }
);

backend_test!(
    contacts_refused_by_everyone_do_not_hold_up_the_queue,
    |app| {
        let source = app.source("Bot").await;
        let anna = app.operator("Анна", 1).await;
        let boris = app.operator("Борис", 1).await;
        app.link(source, anna, 1.0).await;
        app.link(source, boris, 1.0).await;
        // More contacts refused by both than a drain reads ahead of the free capacity (32 beyond it).
        let mut refused = Vec::new();
        for _ in 0..36 {
            let contact = app.contact_through(source).await;
            let id = id_of(&contact);
            let handed_on = app.post_ok(&contact_action(id, "decline"), json!({})).await;
            assert!(!handed_on["operator_id"].is_null(), "{handed_on}");
            let waiting = app.post_ok(&contact_action(id, "decline"), json!({})).await;
            assert_eq!(waiting["operator_id"], Value::Null, "{waiting}");
            refused.push(id);
        }
        for operator in [anna, boris] {
            app.change_operator(operator, json!({ "availability": "away" }))
                .await;
        }
        let behind = id_of(&app.contact_through(source).await);
        app.change_operator(anna, json!({ "availability": "available" }))
            .await;
        assert_eq!(app.fetch_contact(behind).await["operator_id"], anna);
        for id in refused {
            assert_eq!(app.fetch_contact(id).await["operator_id"], Value::Null);
        }
    }
);
