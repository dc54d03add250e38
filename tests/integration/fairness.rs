//! What the routing decisions tell (issue 13, item 4): how fairly a source's automatic assignments followed
//! its weights over a window (`fairness` in `GET /stats/sources/{id}`). Time is a manual clock where the test
//! needs to know it.

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
        (
            "?since=2026-06-01T10:00:00Z&until=2026-06-01T10:00:00Z",
            "until",
        ),
        (
            "?since=2026-06-01T10:00:00Z&until=2026-06-01T09:00:00Z",
            "until",
        ),
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
