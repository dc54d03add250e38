//! Operators at work (issue 12): availability and `away_until`, weekly schedules in a time zone (across
//! midnight and daylight saving), time off; `accepting`, `not_accepting_because` and `next_change_at` on every
//! operator; routing that skips operators who do not take contacts; and the queue draining when an operator
//! starts taking contacts by the clock. Time is a manual clock the tests move; nothing sleeps through an hour.

use crate::common;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::{TestApp, assert_unprocessable, id_of, poll_until};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Monday 2026-06-01, 08:00 UTC.
fn monday_8am() -> DateTime<Utc> {
    at("2026-06-01T08:00:00Z")
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// RFC 3339 as the API writes it.
fn wire(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

async fn operator_with(app: &TestApp, name: &str, settings: Value) -> Value {
    let mut body = json!({ "name": name, "max_load": 5 });
    body.as_object_mut()
        .unwrap()
        .extend(settings.as_object().unwrap().clone());
    let (status, operator) = app.post("/operators/", body).await;
    assert_eq!(status, StatusCode::CREATED, "{operator}");
    operator
}

async fn operator_now(app: &TestApp, id: i64) -> Value {
    app.get_ok(&format!("/operators/{id}")).await
}

/// (accepting, not_accepting_because, next_change_at) as answered.
async fn state_of(app: &TestApp, id: i64) -> (bool, Value, Value) {
    let operator = operator_now(app, id).await;
    (
        operator["accepting"].as_bool().unwrap(),
        operator["not_accepting_because"].clone(),
        operator["next_change_at"].clone(),
    )
}

/// Waits (at most 10 s of real time) for the contact to be given an operator; returns its operator_id.
async fn assigned_operator(app: &TestApp, contact_id: i64) -> Value {
    let contact = poll_until(
        Duration::from_secs(10),
        Duration::from_millis(50),
        async || app.fetch_contact(contact_id).await,
        |contact| !contact["operator_id"].is_null(),
    )
    .await;
    contact["operator_id"].clone()
}

/// A source with the operator linked to it, and a contact through it that waits, unassigned.
async fn waiting_contact(app: &TestApp, operator: i64) -> i64 {
    let source = app.source("Telegram Bot").await;
    app.link(source, operator, 1.0).await;
    let contact = app.contact_through(source).await;
    assert_eq!(contact["operator_id"], Value::Null, "{contact}");
    id_of(&contact)
}

backend_test!(operators_are_available_by_default, |app| {
    let id = app.operator("Анна", 5).await;
    let operator = operator_now(&app, id).await;
    assert_eq!(operator["availability"], "available");
    assert_eq!(operator["away_until"], Value::Null);
    assert_eq!(operator["timezone"], "UTC");
    assert_eq!(operator["schedule"], Value::Null);
    assert_eq!(operator["accepting"], true);
    assert_eq!(operator["not_accepting_because"], Value::Null);
    assert_eq!(operator["next_change_at"], Value::Null);
    let listed = app.get_ok("/operators/").await;
    assert_eq!(listed[0]["accepting"], true, "{listed}");
    // Contacts embed the operator as before.
    let source = app.source("Bot").await;
    app.link(source, id, 1.0).await;
    let contact = app.contact_through(source).await;
    assert_eq!(contact["operator"]["id"], id);
    assert!(contact["operator"].get("accepting").is_none(), "{contact}");
});

backend_test!(
    switching_availability_by_hand,
    clock = monday_8am(),
    |app, clock| {
        let _ = &clock;
        let anna = app.operator("Анна", 5).await;
        let boris = app.operator("Борис", 100).await;
        let source = app.source("Bot").await;
        app.link(source, anna, 1.0).await;
        app.link(source, boris, 1.0).await;

        let away = app
            .patch_ok(
                &format!("/operators/{anna}"),
                json!({ "availability": "away" }),
            )
            .await;
        assert_eq!(away["availability"], "away");
        assert_eq!(away["accepting"], false);
        assert_eq!(away["not_accepting_because"], "away");
        assert_eq!(
            away["next_change_at"],
            Value::Null,
            "away without an end changes only by hand"
        );
        for _ in 0..5 {
            assert_eq!(app.contact_through(source).await["operator_id"], boris);
        }

        let offline = app
            .patch_ok(
                &format!("/operators/{boris}"),
                json!({ "availability": "offline" }),
            )
            .await;
        assert_eq!(offline["not_accepting_because"], "offline");
        let inactive = app
            .patch_ok(&format!("/operators/{anna}"), json!({ "is_active": false }))
            .await;
        assert_eq!(
            inactive["not_accepting_because"], "inactive",
            "inactive comes first"
        );

        // Nobody takes contacts: it waits, and is assigned as soon as someone is switched back.
        let waiting = app.contact_through(source).await;
        assert_eq!(waiting["operator_id"], Value::Null);
        let back = app
            .patch_ok(
                &format!("/operators/{boris}"),
                json!({ "availability": "available" }),
            )
            .await;
        assert_eq!(back["accepting"], true);
        assert_eq!(
            app.fetch_contact(id_of(&waiting)).await["operator_id"],
            boris,
            "drained at once"
        );
    }
);

backend_test!(
    away_until_ends_by_itself,
    clock = monday_8am(),
    |app, clock| {
        let lunch_ends = monday_8am() + TimeDelta::minutes(30);
        let anna = operator_with(
            &app,
            "Анна",
            json!({ "availability": "away", "away_until": wire(lunch_ends) }),
        )
        .await;
        let anna = id_of(&anna);
        assert_eq!(
            state_of(&app, anna).await,
            (false, json!("away"), json!(wire(lunch_ends)))
        );
        let contact = waiting_contact(&app, anna).await;
        clock.advance(TimeDelta::minutes(30));
        assert_eq!(assigned_operator(&app, contact).await, anna);
        let operator = operator_now(&app, anna).await;
        assert_eq!(operator["accepting"], true);
        assert_eq!(
            operator["availability"], "away",
            "availability stays as set; away_until has passed"
        );

        // An away_until in the past means available now; switching back clears it.
        let past = app
            .patch_ok(
                &format!("/operators/{anna}"),
                json!({ "availability": "away", "away_until": "2026-06-01T07:00:00+02:00" }),
            )
            .await;
        assert_eq!(past["accepting"], true);
        assert_eq!(past["away_until"], "2026-06-01T05:00:00.000000Z");
        let cleared = app
            .patch_ok(
                &format!("/operators/{anna}"),
                json!({ "availability": "available" }),
            )
            .await;
        assert_eq!(cleared["away_until"], Value::Null);
    }
);

backend_test!(
    a_shift_starts_and_ends,
    clock = monday_8am(),
    |app, clock| {
        let schedule = json!([{ "days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00" }]);
        let anna = id_of(&operator_with(&app, "Анна", json!({ "schedule": schedule })).await);
        let operator = operator_now(&app, anna).await;
        assert_eq!(operator["schedule"], schedule);
        assert_eq!(
            state_of(&app, anna).await,
            (
                false,
                json!("off_shift"),
                json!("2026-06-01T09:00:00.000000Z")
            )
        );
        let contact = waiting_contact(&app, anna).await;
        clock.set(at("2026-06-01T09:00:00Z"));
        assert_eq!(assigned_operator(&app, contact).await, anna);
        assert_eq!(
            state_of(&app, anna).await,
            (true, Value::Null, json!("2026-06-01T18:00:00.000000Z"))
        );
        clock.set(at("2026-06-05T18:00:00Z"));
        assert_eq!(
            state_of(&app, anna).await,
            (
                false,
                json!("off_shift"),
                json!("2026-06-08T09:00:00.000000Z")
            ),
            "Friday evening: back on Monday"
        );
    }
);

backend_test!(
    a_night_shift_crosses_midnight,
    clock = at("2026-06-05T19:00:00Z"),
    |app, clock| {
        // Friday 22:00 to Saturday 06:00 in Berlin (CEST, +02:00): 20:00Z to 04:00Z.
        let anna = operator_with(
            &app,
            "Анна",
            json!({
                "timezone": "Europe/Berlin",
                "schedule": [{ "days": ["fri"], "start": "22:00", "end": "06:00" }],
            }),
        )
        .await;
        let anna = id_of(&anna);
        assert_eq!(
            state_of(&app, anna).await,
            (
                false,
                json!("off_shift"),
                json!("2026-06-05T20:00:00.000000Z")
            )
        );
        let contact = waiting_contact(&app, anna).await;
        clock.set(at("2026-06-05T23:30:00Z"));
        assert_eq!(assigned_operator(&app, contact).await, anna);
        assert_eq!(
            state_of(&app, anna).await,
            (true, Value::Null, json!("2026-06-06T04:00:00.000000Z")),
            "Saturday morning is still Friday's shift"
        );
        clock.set(at("2026-06-06T04:00:00Z"));
        assert_eq!(
            state_of(&app, anna).await,
            (
                false,
                json!("off_shift"),
                json!("2026-06-12T20:00:00.000000Z")
            )
        );
    }
);

backend_test!(
    shifts_follow_daylight_saving,
    clock = at("2026-03-07T17:00:00Z"),
    |app, clock| {
        // New York springs forward on Sunday 2026-03-08 at 02:00: Saturday is EST (-05), Sunday EDT (-04).
        let anna = operator_with(
            &app,
            "Анна",
            json!({
                "timezone": "America/New_York",
                "schedule": [{ "days": ["sat", "sun"], "start": "09:00", "end": "17:00" }],
            }),
        )
        .await;
        let anna = id_of(&anna);
        assert_eq!(
            state_of(&app, anna).await,
            (true, Value::Null, json!("2026-03-07T22:00:00.000000Z")),
            "Saturday 17:00 EST"
        );
        clock.set(at("2026-03-07T22:00:00Z"));
        assert_eq!(
            state_of(&app, anna).await,
            (
                false,
                json!("off_shift"),
                json!("2026-03-08T13:00:00.000000Z")
            ),
            "Sunday 09:00 EDT, an hour earlier in UTC than Saturday's"
        );
        let contact = waiting_contact(&app, anna).await;
        clock.set(at("2026-03-08T13:00:00Z"));
        assert_eq!(assigned_operator(&app, contact).await, anna);
    }
);

backend_test!(
    time_off_starts_and_ends,
    clock = monday_8am(),
    |app, clock| {
        let anna = app.operator("Анна", 5).await;
        let starts = monday_8am() + TimeDelta::hours(1);
        let ends = monday_8am() + TimeDelta::hours(2);
        let (status, time_off) = app
            .post(
                &format!("/operators/{anna}/time-off"),
                json!({ "starts_at": wire(starts), "ends_at": wire(ends), "reason": "Dentist" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{time_off}");
        assert_eq!(
            time_off,
            json!({
                "id": time_off["id"],
                "operator_id": anna,
                "starts_at": wire(starts),
                "ends_at": wire(ends),
                "reason": "Dentist",
            })
        );
        assert_eq!(
            state_of(&app, anna).await,
            (true, Value::Null, json!(wire(starts)))
        );
        clock.set(starts);
        assert_eq!(
            state_of(&app, anna).await,
            (false, json!("time_off"), json!(wire(ends)))
        );
        let contact = waiting_contact(&app, anna).await;
        clock.set(ends);
        assert_eq!(assigned_operator(&app, contact).await, anna);
        assert_eq!(state_of(&app, anna).await, (true, Value::Null, Value::Null));
    }
);

backend_test!(
    time_off_is_listed_and_deleted,
    clock = monday_8am(),
    |app, clock| {
        let _ = &clock;
        let anna = app.operator("Анна", 5).await;
        let path = format!("/operators/{anna}/time-off");
        let now = wire(monday_8am());
        let later = wire(monday_8am() + TimeDelta::days(3));
        let (status, time_off) = app
            .post(&path, json!({ "starts_at": now, "ends_at": later }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{time_off}");
        assert_eq!(time_off["reason"], Value::Null);
        let listed = app.get_ok(&path).await;
        assert_eq!(listed, json!([time_off]));
        // Deleting the time off in effect lets her take contacts at once: the queue drains.
        let contact = waiting_contact(&app, anna).await;
        app.delete_ok(&format!("{path}/{}", id_of(&time_off))).await;
        assert_eq!(app.fetch_contact(contact).await["operator_id"], anna);
        assert_eq!(app.get_ok(&path).await, json!([]));
        let (status, _) = app.delete(&format!("{path}/{}", id_of(&time_off))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Unknown operator; ends not after starts.
        let (status, _) = app.get("/operators/999999/time-off").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = app
            .post(
                "/operators/999999/time-off",
                json!({ "starts_at": now, "ends_at": later }),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        for ends_at in [now.clone(), wire(monday_8am() - TimeDelta::hours(1))] {
            let answer = app
                .post(&path, json!({ "starts_at": now, "ends_at": ends_at }))
                .await;
            assert_unprocessable(&answer, "ends_at not after starts_at");
            assert!(
                answer.1["detail"].as_str().unwrap().contains("ends_at"),
                "{}",
                answer.1
            );
        }
        let answer = app
            .post(&path, json!({ "starts_at": "tomorrow", "ends_at": later }))
            .await;
        assert_unprocessable(&answer, "not a timestamp");
    }
);

backend_test!(
    routing_skips_operators_not_accepting,
    clock = monday_8am(),
    |app, clock| {
        let _ = &clock;
        let source = app.source("Bot").await;
        let on_shift = app.operator("Смена", 100).await;
        let off_shift = id_of(
            &operator_with(
                &app,
                "Ночная",
                json!({ "schedule": [{ "days": ["mon"], "start": "20:00", "end": "04:00" }] }),
            )
            .await,
        );
        let on_leave = app.operator("Отпуск", 100).await;
        app.post_ok(
            &format!("/operators/{on_leave}/time-off"),
            json!({ "starts_at": "2026-05-25T00:00:00Z", "ends_at": "2026-06-15T00:00:00Z" }),
        )
        .await;
        for operator in [on_shift, off_shift, on_leave] {
            app.link(source, operator, 1.0).await;
        }
        assert_eq!(state_of(&app, on_leave).await.1, "time_off");
        for _ in 0..10 {
            assert_eq!(app.contact_through(source).await["operator_id"], on_shift);
        }
    }
);

backend_test!(bad_settings_are_refused_by_name, |app| {
    let anna = app.operator("Анна", 5).await;
    let path = format!("/operators/{anna}");
    let shift =
        |days: Value, start: &str, end: &str| json!([{ "days": days, "start": start, "end": end }]);
    let refused = [
        (json!({ "timezone": "Mars/Olympus_Mons" }), "timezone"),
        (json!({ "availability": "busy" }), "availability"),
        (
            json!({ "schedule": shift(json!(["funday"]), "09:00", "18:00") }),
            "days",
        ),
        (
            json!({ "schedule": shift(json!([]), "09:00", "18:00") }),
            "days",
        ),
        (
            json!({ "schedule": shift(json!(["mon"]), "25:00", "18:00") }),
            "start",
        ),
        (
            json!({ "schedule": shift(json!(["mon"]), "09:00", "9:30") }),
            "end",
        ),
        (json!({ "away_until": "after lunch" }), "away_until"),
    ];
    for (body, field) in refused {
        for answer in [
            app.patch(&path, body.clone()).await,
            app.post("/operators/", {
                let mut create = json!({ "name": "Борис" });
                create
                    .as_object_mut()
                    .unwrap()
                    .extend(body.as_object().unwrap().clone());
                create
            })
            .await,
        ] {
            assert_unprocessable(&answer, field);
            let detail = answer.1["detail"].as_str().unwrap().to_owned();
            assert!(detail.contains(field), "{body}: {detail}");
        }
    }
    for field in ["availability", "timezone"] {
        let answer = app
            .post("/operators/", json!({ "name": "Борис", field: null }))
            .await;
        assert_unprocessable(&answer, field);
    }
    // Nothing of it stuck.
    let operator = operator_now(&app, anna).await;
    assert_eq!(operator["timezone"], "UTC");
    assert_eq!(operator["schedule"], Value::Null);
    assert_eq!(app.count_of("/operators/").await, 1);
});

backend_test!(schedule_null_means_always_on_shift, |app| {
    let anna = id_of(
        &operator_with(
            &app,
            "Анна",
            json!({ "timezone": "Asia/Tokyo", "schedule": [{ "days": ["sun"], "start": "00:00", "end": "00:01" }] }),
        )
        .await,
    );
    let cleared = app
        .patch_ok(&format!("/operators/{anna}"), json!({ "schedule": null }))
        .await;
    assert_eq!(cleared["schedule"], Value::Null);
    assert_eq!(cleared["timezone"], "Asia/Tokyo");
    assert_eq!(cleared["accepting"], true);
    let kept = app
        .patch_ok(&format!("/operators/{anna}"), json!({ "timezone": null }))
        .await;
    assert_eq!(
        kept["timezone"], "Asia/Tokyo",
        "null keeps a field that is not nullable"
    );
});
