//! What the routing decisions tell (issue 13, items 4 and 5): how fairly a source's automatic assignments
//! followed its weights over a window (`fairness` in `GET /stats/sources/{id}`), and how long a waiting
//! contact may expect to wait at its queue's recent pace (`eta_seconds` on every contact). Time is a manual
//! clock where the test needs to know it.

use crate::common;

use chrono::{DateTime, TimeDelta, Utc};
use common::{TestApp, assert_unprocessable, field_names, id_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Monday 2026-06-01, 10:00 UTC.
fn monday_10am() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T10:00:00Z")
        .unwrap()
        .to_utc()
}

/// A source with the given strategy: its id.
async fn source_choosing(app: &TestApp, name: &str, strategy: &str) -> i64 {
    let (status, source) = app
        .post("/sources/", json!({ "name": name, "strategy": strategy }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    assert_eq!(source["strategy"], strategy, "{source}");
    id_of(&source)
}

/// Posts `count` anonymous contacts through the source, and returns their ids.
async fn contacts(app: &TestApp, source_id: i64, count: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        ids.push(id_of(&app.contact_through(source_id).await));
    }
    ids
}

/// `fairness` of `GET /stats/sources/{id}{query}`, expecting 200.
async fn fairness(app: &TestApp, source_id: i64, query: &str) -> Value {
    let stats = app
        .get_ok(&format!("/stats/sources/{source_id}{query}"))
        .await;
    stats["fairness"].clone()
}

/// The operators' (id, assignments, expected, target_share, actual_share, deviation_pp) of a fairness.
fn rows(fairness: &Value) -> Vec<(i64, i64, f64, f64, f64, f64)> {
    fairness["operators"]
        .as_array()
        .unwrap_or_else(|| panic!("no operators: {fairness}"))
        .iter()
        .map(|o| {
            let number = |field: &str| o[field].as_f64().unwrap_or_else(|| panic!("{field}: {o}"));
            (
                o["operator_id"].as_i64().unwrap(),
                o["assignments"].as_i64().unwrap(),
                number("expected"),
                number("target_share"),
                number("actual_share"),
                number("deviation_pp"),
            )
        })
        .collect()
}

// ---- fairness ----

backend_test!(smooth_weighted_equal_weights_split_exactly, |app| {
    let source = source_choosing(&app, "Smooth", "smooth_weighted").await;
    let anna = app.operator("Анна", 1000).await;
    let boris = app.operator("Борис", 1000).await;
    app.link(source, anna, 1.0).await;
    app.link(source, boris, 1.0).await;
    contacts(&app, source, 100).await;

    let stats = app.get_ok(&format!("/stats/sources/{source}")).await;
    // The stats' own fields are as they were, the fairness beside them.
    assert_eq!(
        field_names(&stats),
        [
            "assigned_contacts",
            "fairness",
            "operator_distribution",
            "source_id",
            "source_name",
            "total_contacts",
            "unassigned_contacts"
        ]
    );
    assert_eq!(stats["total_contacts"], 100);
    let fairness = &stats["fairness"];
    assert_eq!(
        field_names(fairness),
        [
            "assignments",
            "chi_square",
            "degrees_of_freedom",
            "operators",
            "p_value",
            "since",
            "until"
        ]
    );
    assert_eq!(fairness["since"], Value::Null);
    assert_eq!(fairness["until"], Value::Null);
    assert_eq!(fairness["assignments"], 100);
    assert_eq!(fairness["chi_square"], 0.0);
    assert_eq!(fairness["degrees_of_freedom"], 1);
    assert_eq!(fairness["p_value"], 1.0);
    assert_eq!(
        field_names(&fairness["operators"][0]),
        [
            "actual_share",
            "assignments",
            "deviation_pp",
            "expected",
            "operator_id",
            "operator_name",
            "target_share"
        ]
    );
    assert_eq!(fairness["operators"][0]["operator_name"], "Анна");
    assert_eq!(
        rows(fairness),
        vec![
            (anna, 50, 50.0, 0.5, 0.5, 0.0),
            (boris, 50, 50.0, 0.5, 0.5, 0.0)
        ]
    );
});

backend_test!(
    fairness_counts_only_the_window_asked,
    clock = monday_10am(),
    |app, clock| {
        let source = source_choosing(&app, "Smooth", "smooth_weighted").await;
        let anna = app.operator("Анна", 1000).await;
        let boris = app.operator("Борис", 1000).await;
        app.link(source, anna, 1.0).await;
        app.link(source, boris, 1.0).await;
        contacts(&app, source, 40).await; // at 10:00
        clock.advance(TimeDelta::hours(1));
        contacts(&app, source, 60).await; // at 11:00

        let windows = [
            ("", 100),
            ("?since=2026-06-01T10:30:00Z", 60),
            ("?until=2026-06-01T10:30:00Z", 40),
            // since is in the window, until is not.
            ("?since=2026-06-01T10:00:00Z&until=2026-06-01T11:00:00Z", 40),
            ("?until=2026-06-01T10:00:00Z", 0),
            ("?since=2026-06-01T11:00:00.000001Z", 0),
        ];
        for (query, assignments) in windows {
            let fairness = fairness(&app, source, query).await;
            assert_eq!(fairness["assignments"], assignments, "{query}: {fairness}");
            if assignments == 0 {
                assert_eq!(fairness["chi_square"], Value::Null, "{query}");
                assert_eq!(fairness["p_value"], Value::Null, "{query}");
                assert_eq!(fairness["degrees_of_freedom"], 0, "{query}");
                assert_eq!(fairness["operators"], json!([]), "{query}");
            } else {
                let half = assignments / 2;
                let due = half as f64;
                assert_eq!(fairness["chi_square"], 0.0, "{query}");
                assert_eq!(fairness["p_value"], 1.0, "{query}");
                assert_eq!(
                    rows(&fairness),
                    vec![
                        (anna, half, due, 0.5, 0.5, 0.0),
                        (boris, half, due, 0.5, 0.5, 0.0)
                    ],
                    "{query}"
                );
            }
        }
        let asked = fairness(
            &app,
            source,
            "?since=2026-06-01T10:30:00Z&until=2026-06-01T12:00:00%2B01:00",
        )
        .await;
        assert_eq!(asked["since"], "2026-06-01T10:30:00.000000Z");
        assert_eq!(asked["until"], "2026-06-01T11:00:00.000000Z");
        assert_eq!(asked["assignments"], 0, "until is excluded");
    }
);

backend_test!(
    weighted_random_is_measured_against_its_weights,
    config = |config: &mut leadrouter::Config| config.routing_seed = Some(13),
    |app| {
        let source = source_choosing(&app, "Random", "weighted_random").await;
        let anna = app.operator("Анна", 1000).await;
        let boris = app.operator("Борис", 1000).await;
        app.link(source, anna, 1.0).await;
        app.link(source, boris, 3.0).await;
        contacts(&app, source, 400).await;

        let fairness = fairness(&app, source, "").await;
        assert_eq!(fairness["assignments"], 400);
        assert_eq!(fairness["degrees_of_freedom"], 1);
        let rows = rows(&fairness);
        assert_eq!(rows.len(), 2, "{fairness}");
        let (anna_row, boris_row) = (rows[0], rows[1]);
        assert_eq!((anna_row.0, boris_row.0), (anna, boris));
        assert_eq!(anna_row.1 + boris_row.1, 400);
        assert_eq!((anna_row.2, boris_row.2), (100.0, 300.0), "expected");
        assert_eq!((anna_row.3, boris_row.3), (0.25, 0.75), "target_share");
        // Four standard deviations of a binomial(400, 0.25) either side, and more.
        assert!((0.15..=0.35).contains(&anna_row.4), "{fairness}");
        assert!((0.65..=0.85).contains(&boris_row.4), "{fairness}");
        for (_, got, _, target, actual, deviation) in rows.iter().copied() {
            assert_eq!(actual, got as f64 / 400.0);
            let points = ((actual - target) * 100.0 * 100.0).round() / 100.0;
            assert!((deviation - points).abs() < 1e-9, "{fairness}");
        }
        let chi_square = (anna_row.1 as f64 - 100.0).powi(2) / 100.0
            + (boris_row.1 as f64 - 300.0).powi(2) / 300.0;
        let answered = fairness["chi_square"].as_f64().unwrap();
        assert!((answered - chi_square).abs() < 1e-4, "{fairness}");
        let p_value = fairness["p_value"].as_f64().unwrap();
        assert!(p_value > 0.0 && p_value <= 1.0, "{fairness}");
    }
);

backend_test!(sticky_assignments_are_not_counted, |app| {
    let (status, source) = app
        .post("/sources/", json!({ "name": "Sticky", "sticky_hours": 24 }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    let source = id_of(&source);
    let anna = app.operator("Анна", 10).await;
    let boris = app.operator("Борис", 10).await;
    app.link(source, anna, 1.0).await;
    app.link(source, boris, 1.0).await;
    let nothing = fairness(&app, source, "").await;
    assert_eq!(nothing["assignments"], 0);
    assert_eq!(nothing["chi_square"], Value::Null);
    assert_eq!(nothing["p_value"], Value::Null);
    assert_eq!(nothing["degrees_of_freedom"], 0);
    assert_eq!(nothing["operators"], json!([]));

    let lead = json!({ "source_id": source, "lead_external_id": "user-1" });
    let first = app.contact(lead.clone()).await;
    let again = app.contact(lead).await;
    assert_eq!(first["operator_id"], again["operator_id"], "sticky");

    let fairness = fairness(&app, source, "").await;
    assert_eq!(fairness["assignments"], 1, "{fairness}");
    // One contact, due half to each: (1 − 0.5)² / 0.5 + (0 − 0.5)² / 0.5.
    assert_eq!(fairness["chi_square"], 1.0);
    assert_eq!(fairness["degrees_of_freedom"], 1);
    let chosen = first["operator_id"].as_i64().unwrap();
    let deviations: Vec<(i64, i64, f64)> = rows(&fairness)
        .into_iter()
        .map(|(id, got, _, _, _, deviation)| (id, got, deviation))
        .collect();
    let other = if chosen == anna { boris } else { anna };
    let mut expected = vec![(chosen, 1, 50.0), (other, 0, -50.0)];
    expected.sort_by_key(|row| row.0);
    assert_eq!(deviations, expected);
});

backend_test!(bad_windows_are_refused_naming_the_parameter, |app| {
    let source = app.source("Telegram Bot").await;
    let refused = [
        ("?since=yesterday", "since"),
        ("?until=2026-13-01T00:00:00Z", "until"),
        ("?since=2026-06-01", "since"),
        // An unescaped `+` is a space in a query string.
        ("?since=2026-06-01T10:00:00+03:00", "since"),
    ];
    for (query, parameter) in refused {
        let answer = app.get(&format!("/stats/sources/{source}{query}")).await;
        assert_unprocessable(&answer, query);
        let detail = answer.1["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("{parameter}: ")),
            "{query}: {detail}"
        );
    }
    let (status, _) = app
        .get("/stats/sources/999999?since=2026-06-01T10:00:00Z")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
});

// ---- queue ETA ----

/// `eta_seconds` as the README documents it: the latest (at most 50) assignments from the queue in the hour
/// before `now`, over the time from the oldest of them to now (at least a minute), give the pace; the ETA is
/// `position / pace`, rounded up. `None` without such assignments.
fn documented_eta(
    position: i64,
    queue_assignments: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Option<i64> {
    let mut recent: Vec<DateTime<Utc>> = queue_assignments
        .iter()
        .copied()
        .filter(|at| *at >= now - TimeDelta::hours(1) && *at <= now)
        .collect();
    recent.sort_unstable_by(|a, b| b.cmp(a));
    recent.truncate(50);
    let oldest = *recent.last()?;
    let span = (now - oldest).max(TimeDelta::minutes(1)).num_seconds();
    // position / (count / span), in whole numbers.
    let count = recent.len() as i64;
    Some((position * span + count - 1) / count)
}

/// (id, queue_position, eta_seconds) of each contact of a list.
fn places(list: &Value) -> Vec<(i64, Value, Value)> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|c| {
            (
                id_of(c),
                c["queue_position"].clone(),
                c["eta_seconds"].clone(),
            )
        })
        .collect()
}

backend_test!(
    a_waiting_contact_expects_to_wait_by_its_queues_pace,
    clock = monday_10am(),
    |app, clock| {
        let start = clock.now();
        let (source, anna) = app.source_with_operator("Анна", 1).await;
        let first = app.contact_through(source).await;
        assert_eq!(first["eta_seconds"], Value::Null, "assigned: {first}");
        let waiting = contacts(&app, source, 4).await;
        let second = app.fetch_contact(waiting[0]).await;
        assert_eq!(second["queue_position"], 1);
        assert_eq!(second["eta_seconds"], Value::Null, "no queue history yet");

        // Each close hands Anna's slot to the oldest waiting contact, at a known time.
        let mut assigned_at = Vec::new();
        let mut holder = id_of(&first);
        for (minutes, next) in [(1, waiting[0]), (3, waiting[1]), (6, waiting[2])] {
            clock.set(start + TimeDelta::minutes(minutes));
            app.set_status(holder, "closed").await;
            assert_eq!(app.fetch_contact(next).await["operator_id"], anna);
            assigned_at.push(clock.now());
            holder = next;
        }

        // 10:11: three assignments from the queue, the oldest ten minutes ago.
        clock.set(start + TimeDelta::minutes(11));
        let now = clock.now();
        let last_waiting = waiting[3];
        let eta = |position| json!(documented_eta(position, &assigned_at, now).unwrap());
        assert_eq!(eta(1), 200);
        let newest = app.contact_through(source).await;
        assert_eq!(newest["queue_position"], 2, "{newest}");
        assert_eq!(newest["eta_seconds"], eta(2), "as posted: {newest}");
        let newest = id_of(&newest);
        assert_eq!(app.fetch_contact(last_waiting).await["eta_seconds"], eta(1));
        let queue = app.get_ok(&format!("/sources/{source}/queue")).await;
        assert_eq!(
            places(&queue),
            vec![(last_waiting, json!(1), eta(1)), (newest, json!(2), eta(2))]
        );
        let page = app.get_ok(&format!("/sources/{source}/queue?skip=1")).await;
        assert_eq!(places(&page), vec![(newest, json!(2), eta(2))]);
        let listed = app.get_ok(&format!("/contacts/?source_id={source}")).await;
        let mut expected = vec![(newest, json!(2), eta(2)), (last_waiting, json!(1), eta(1))];
        // The assigned and the closed ones wait for nothing.
        for id in [waiting[2], waiting[1], waiting[0], id_of(&first)] {
            expected.push((id, Value::Null, Value::Null));
        }
        assert_eq!(places(&listed), expected);

        // 10:30: the pace slows as time passes without an assignment.
        clock.set(start + TimeDelta::minutes(30));
        let now = clock.now();
        let later = documented_eta(1, &assigned_at, now).unwrap();
        assert_eq!(later, 580, "1740 s over 3");
        assert_eq!(app.fetch_contact(last_waiting).await["eta_seconds"], later);

        // An hour after the last assignment from the queue there is no pace to go by.
        clock.set(start + TimeDelta::minutes(67));
        assert_eq!(documented_eta(1, &assigned_at, clock.now()), None);
        let waiting_still = app.fetch_contact(last_waiting).await;
        assert_eq!(waiting_still["queue_position"], 1);
        assert_eq!(waiting_still["eta_seconds"], Value::Null);
    }
);

backend_test!(
    a_pace_is_measured_over_a_minute_at_least,
    clock = monday_10am(),
    |app, clock| {
        let (source, anna) = app.source_with_operator("Анна", 1).await;
        let holder = id_of(&app.contact_through(source).await);
        let waiting = contacts(&app, source, 2).await;
        clock.advance(TimeDelta::seconds(5));
        app.set_status(holder, "closed").await;
        assert_eq!(app.fetch_contact(waiting[0]).await["operator_id"], anna);
        let assigned_at = [clock.now()];
        clock.advance(TimeDelta::seconds(10));
        // One assignment ten seconds ago is one a minute, not six.
        let eta = documented_eta(1, &assigned_at, clock.now());
        assert_eq!(eta, Some(60));
        assert_eq!(
            app.fetch_contact(waiting[1]).await["eta_seconds"],
            json!(eta)
        );
    }
);
