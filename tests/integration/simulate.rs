//! The what-if simulator, `POST /sources/{id}/simulate`: it foresees what the real assignments do, within
//! capacity or not, with other weights, from where the source's round stands; it writes nothing; it refuses
//! what it cannot simulate; and a `read` key may ask.

use crate::common;

use std::collections::HashMap;

use common::{TestApp, assert_error, assert_unprocessable, call_with_key, create_key};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The seed of the server whose real assignments the simulation foresees.
const SEED: u64 = 20_261_202;

/// `POST /sources/{id}/simulate` with the body, expecting 200.
async fn simulate(app: &TestApp, source_id: i64, body: Value) -> Value {
    let path = format!("/sources/{source_id}/simulate");
    let (status, answer) = app.post(&path, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// The simulated count per operator id.
fn simulated_counts(simulation: &Value) -> HashMap<i64, i64> {
    simulation["operators"]
        .as_array()
        .unwrap_or_else(|| panic!("no operators: {simulation}"))
        .iter()
        .map(|o| {
            (
                o["operator_id"].as_i64().unwrap(),
                o["simulated_count"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The operator rows' `field` by operator id.
fn per_operator(simulation: &Value, field: &str) -> HashMap<i64, f64> {
    simulation["operators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["operator_id"].as_i64().unwrap(),
                o[field].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The next contact's chances, as (operator id, probability), in order.
fn next_chances(simulation: &Value) -> Vec<(i64, f64)> {
    simulation["next"]
        .as_array()
        .unwrap_or_else(|| panic!("no next: {simulation}"))
        .iter()
        .map(|n| {
            (
                n["operator_id"].as_i64().unwrap(),
                n["probability"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The real counts per linked operator, as the source's stats say.
async fn real_counts(app: &TestApp, source_id: i64) -> HashMap<i64, i64> {
    let stats = app.get_ok(&format!("/stats/sources/{source_id}")).await;
    stats["operator_distribution"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|row| Some((row["operator_id"].as_i64()?, row["count"].as_i64().unwrap())))
        .collect()
}

/// A source of the strategy with operators of these weights, each able to take far more than the test sends:
/// (source id, operator ids).
async fn source_with_weights(
    app: &TestApp,
    name: &str,
    strategy: &str,
    weights: &[f64],
) -> (i64, Vec<i64>) {
    let source = app
        .post_ok("/sources/", json!({ "name": name, "strategy": strategy }))
        .await;
    let source = common::id_of(&source);
    let mut operators = Vec::new();
    for (index, &weight) in weights.iter().enumerate() {
        let operator = app.operator(&format!("{name} {index}"), 100_000).await;
        app.link(source, operator, weight).await;
        operators.push(operator);
    }
    (source, operators)
}

backend_test!(
    the_simulator_agrees_with_the_real_strategy_on_a_seeded_run,
    config = |config: &mut leadrouter::Config| config.routing_seed = Some(SEED),
    |app| {
        const CONTACTS: usize = 200;
        // weighted_random first: on a fresh server, its draws are the seed's first.
        for strategy in ["weighted_random", "smooth_weighted", "least_loaded"] {
            let (source, operators) =
                source_with_weights(&app, strategy, strategy, &[1.0, 2.0, 3.0, 4.0]).await;
            let simulation = simulate(
                &app,
                source,
                json!({ "contacts": CONTACTS, "seed": SEED, "capacity": "ignore" }),
            )
            .await;
            assert_eq!(simulation["strategy"], strategy);
            assert_eq!(simulation["unassigned"], 0);
            for _ in 0..CONTACTS {
                app.contact_through(source).await;
            }
            let real = real_counts(&app, source).await;
            let simulated = simulated_counts(&simulation);
            assert_eq!(simulated, real, "{strategy}: {simulation}");
            assert_eq!(simulated.values().sum::<i64>(), CONTACTS as i64);
            assert_eq!(simulated.len(), operators.len());
        }
    }
);

backend_test!(
    current_capacity_stops_at_max_load_and_ignore_does_not,
    |app| {
        let source = app.source("bot").await;
        let two = app.operator("two", 2).await;
        let three = app.operator("three", 3).await;
        app.link(source, two, 1.0).await;
        app.link(source, three, 1.0).await;

        let current = simulate(&app, source, json!({ "contacts": 10 })).await;
        assert_eq!(current["capacity"], "current");
        assert_eq!(current["contacts"], 10);
        assert_eq!(current["unassigned"], 5);
        assert_eq!(
            simulated_counts(&current),
            HashMap::from([(two, 2), (three, 3)])
        );
        assert_eq!(per_operator(&current, "simulated_share")[&three], 0.6);

        let ignored = simulate(
            &app,
            source,
            json!({ "contacts": 10, "capacity": "ignore" }),
        )
        .await;
        assert_eq!(ignored["capacity"], "ignore");
        assert_eq!(ignored["unassigned"], 0);
        assert_eq!(simulated_counts(&ignored).values().sum::<i64>(), 10);

        // With one real contact held, one unit less is free; a full operator is no candidate now, but counts
        // when capacity is ignored.
        app.contact_through(source).await;
        app.contact_through(source).await;
        let two_is_full = app.load_of(two).await == 2;
        let current = simulate(&app, source, json!({ "contacts": 10 })).await;
        assert_eq!(current["unassigned"], 7);
        if two_is_full {
            assert_eq!(per_operator(&current, "target_share")[&two], 0.0);
            assert_eq!(next_chances(&current).len(), 1);
            let ignored =
                simulate(&app, source, json!({ "contacts": 1, "capacity": "ignore" })).await;
            assert_eq!(next_chances(&ignored).len(), 2);
        }

        // An inactive operator takes nothing, capacity or not.
        app.change_operator(three, json!({ "is_active": false }))
            .await;
        app.change_operator(two, json!({ "is_active": false }))
            .await;
        let nobody = simulate(&app, source, json!({ "contacts": 4, "capacity": "ignore" })).await;
        assert_eq!(nobody["unassigned"], 4);
        assert_eq!(nobody["next"], json!([]));
        assert!(
            nobody["operators"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o["simulated_share"] == 0.0)
        );
    }
);

backend_test!(given_weights_change_the_target_shares, |app| {
    let source = app.source("bot").await;
    let light = app.operator("light", 100).await;
    let heavy = app.operator("heavy", 100).await;
    app.link(source, light, 1.0).await;
    app.link(source, heavy, 3.0).await;

    let own = simulate(
        &app,
        source,
        json!({ "contacts": 8, "strategy": "smooth_weighted" }),
    )
    .await;
    assert_eq!(
        per_operator(&own, "target_share"),
        HashMap::from([(light, 0.25), (heavy, 0.75)])
    );
    assert_eq!(
        simulated_counts(&own),
        HashMap::from([(light, 2), (heavy, 6)])
    );
    let names: Vec<&str> = own["operators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["operator_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["light", "heavy"],
        "every linked operator, by id, named"
    );

    let evened = simulate(
        &app,
        source,
        json!({ "contacts": 8, "strategy": "smooth_weighted", "weights": [{ "operator_id": light, "weight": 3 }] }),
    )
    .await;
    assert_eq!(
        per_operator(&evened, "weight"),
        HashMap::from([(light, 3.0), (heavy, 3.0)])
    );
    assert_eq!(
        per_operator(&evened, "target_share"),
        HashMap::from([(light, 0.5), (heavy, 0.5)])
    );
    assert_eq!(
        simulated_counts(&evened),
        HashMap::from([(light, 4), (heavy, 4)])
    );

    // Weight 0: as if unlinked; still listed.
    let without_heavy = simulate(
        &app,
        source,
        json!({ "contacts": 5, "weights": [{ "operator_id": heavy, "weight": 0 }] }),
    )
    .await;
    assert_eq!(
        per_operator(&without_heavy, "target_share"),
        HashMap::from([(light, 1.0), (heavy, 0.0)])
    );
    assert_eq!(
        simulated_counts(&without_heavy),
        HashMap::from([(light, 5), (heavy, 0)])
    );
    assert_eq!(next_chances(&without_heavy), vec![(light, 1.0)]);
    assert_eq!(without_heavy["next"][0]["operator_name"], "light");

    // weighted_random's next is the weights' share.
    let next = simulate(&app, source, json!({ "contacts": 1, "seed": 0 })).await;
    assert_eq!(next["strategy"], "weighted_random");
    assert_eq!(next_chances(&next), vec![(light, 0.25), (heavy, 0.75)]);
    // The same seed, the same answer.
    let body = json!({ "contacts": 500, "seed": 7 });
    assert_eq!(
        simulate(&app, source, body.clone()).await,
        simulate(&app, source, body).await
    );
});

backend_test!(smooth_weighted_continues_the_stored_round, |app| {
    let (source, operators) =
        source_with_weights(&app, "bot", "smooth_weighted", &[1.0, 3.0]).await;
    let (light, heavy) = (operators[0], operators[1]);
    assert_eq!(
        app.contact_through(source).await["operator_id"],
        heavy,
        "a fresh round opens with the heavier"
    );

    let next = simulate(&app, source, json!({ "contacts": 1 })).await;
    assert_eq!(next_chances(&next), vec![(light, 1.0), (heavy, 0.0)]);
    assert_eq!(app.contact_through(source).await["operator_id"], light);

    // Ten more, simulated then real, agree one by one in total.
    let ahead = simulate(
        &app,
        source,
        json!({ "contacts": 10, "strategy": "smooth_weighted" }),
    )
    .await;
    let before = real_counts(&app, source).await;
    for _ in 0..10 {
        app.contact_through(source).await;
    }
    let after = real_counts(&app, source).await;
    for (operator, count) in simulated_counts(&ahead) {
        assert_eq!(after[&operator] - before[&operator], count, "{ahead}");
    }

    // Given weights, even the same ones, start a fresh round: the heavier again.
    let fresh = simulate(
        &app,
        source,
        json!({ "contacts": 1, "weights": [{ "operator_id": heavy, "weight": 3.0 }] }),
    )
    .await;
    assert_eq!(next_chances(&fresh), vec![(light, 0.0), (heavy, 1.0)]);
});

backend_test!(least_loaded_next_names_the_lowest_load, |app| {
    let source = app
        .post_ok(
            "/sources/",
            json!({ "name": "bot", "strategy": "least_loaded" }),
        )
        .await;
    let source = common::id_of(&source);
    let roomy = app.operator("roomy", 4).await;
    let small = app.operator("small", 2).await;
    app.link(source, roomy, 1.0).await;
    app.link(source, small, 1.0).await;
    // Both at 0: the weights tie, neither was ever assigned: the lower id.
    assert_eq!(app.contact_through(source).await["operator_id"], roomy);
    // 1/4 against 0/2.
    let next = simulate(&app, source, json!({ "contacts": 1 })).await;
    assert_eq!(next["strategy"], "least_loaded");
    assert_eq!(next_chances(&next), vec![(roomy, 0.0), (small, 1.0)]);
    assert_eq!(app.contact_through(source).await["operator_id"], small);
    // 1/4 against 1/2: roomy; 2/4 = 1/2, and small's last contact is the older: small, now full; then roomy
    // alone, up to 4/4; nobody takes the rest.
    let rest = simulate(&app, source, json!({ "contacts": 10 })).await;
    assert_eq!(
        simulated_counts(&rest),
        HashMap::from([(roomy, 3), (small, 1)])
    );
    assert_eq!(rest["unassigned"], 6);
});

backend_test!(a_simulation_writes_nothing, |app| {
    let (source, operators) =
        source_with_weights(&app, "bot", "smooth_weighted", &[1.0, 2.0]).await;
    for _ in 0..3 {
        app.contact_through(source).await;
    }
    let counted = [
        "SELECT COUNT(*) FROM contacts",
        "SELECT COUNT(*) FROM routing_decisions",
        "SELECT COUNT(*) FROM contact_history",
        "SELECT COUNT(*) FROM audit_log",
        "SELECT COUNT(*) FROM operators WHERE last_assigned_at IS NOT NULL",
        "SELECT CAST(SUM(active_load) AS BIGINT) FROM operators",
        "SELECT CAST(SUM(LENGTH(strategy_round)) AS BIGINT) FROM sources",
    ];
    let mut before = Vec::new();
    for query in counted {
        before.push(app.sql_number(query).await);
    }
    let stats = app.get_ok(&format!("/stats/sources/{source}")).await;
    let contacts = app.get_ok(&format!("/contacts/?source_id={source}")).await;
    let next = simulate(&app, source, json!({ "contacts": 1 })).await;

    for body in [
        json!({ "contacts": 100_000 }),
        json!({ "contacts": 500, "capacity": "ignore", "strategy": "least_loaded" }),
        json!({ "contacts": 50, "weights": [{ "operator_id": operators[0], "weight": 0 }] }),
    ] {
        simulate(&app, source, body).await;
    }

    let mut after = Vec::new();
    for query in counted {
        after.push(app.sql_number(query).await);
    }
    assert_eq!(before, after, "{counted:?}");
    assert_eq!(app.get_ok(&format!("/stats/sources/{source}")).await, stats);
    assert_eq!(
        app.get_ok(&format!("/contacts/?source_id={source}")).await,
        contacts
    );
    // The round is where it was: the same next contact, and the real one gets it.
    assert_eq!(simulate(&app, source, json!({ "contacts": 1 })).await, next);
    let chosen = next_chances(&next)
        .into_iter()
        .find(|(_, p)| *p == 1.0)
        .unwrap()
        .0;
    assert_eq!(app.contact_through(source).await["operator_id"], chosen);
});

backend_test!(what_cannot_be_simulated_is_refused, |app| {
    let source = app.source("bot").await;
    let linked = app.operator("linked", 5).await;
    let stranger = app.operator("stranger", 5).await;
    app.link(source, linked, 1.0).await;
    let path = format!("/sources/{source}/simulate");

    let refused = [
        (json!({ "contacts": 0 }), "contacts"),
        (json!({ "contacts": 100_001 }), "contacts"),
        (json!({ "contacts": 1.5 }), "contacts"),
        (json!({ "contacts": "10" }), "contacts"),
        (json!({ "contacts": null }), "contacts"),
        (json!({}), "contacts"),
        (
            json!({ "contacts": 1, "strategy": "round_robin" }),
            "strategy",
        ),
        (json!({ "contacts": 1, "strategy": null }), "strategy"),
        (
            json!({ "contacts": 1, "capacity": "unlimited" }),
            "capacity",
        ),
        (json!({ "contacts": 1, "capacity": null }), "capacity"),
        (json!({ "contacts": 1, "seed": -1 }), "seed"),
        (json!({ "contacts": 1, "seed": 0.5 }), "seed"),
        (json!({ "contacts": 1, "seed": null }), "seed"),
        (json!({ "contacts": 1, "weights": null }), "weights"),
        (json!({ "contacts": 1, "weights": {} }), "weights"),
        (
            json!({ "contacts": 1, "weights": [{ "operator_id": linked, "weight": -1 }] }),
            "weights",
        ),
        (
            json!({ "contacts": 1, "weights": [{ "operator_id": linked, "weight": 1_000_001 }] }),
            "weights",
        ),
        (
            json!({ "contacts": 1, "weights": [{ "operator_id": linked }] }),
            "weights",
        ),
        (
            json!({ "contacts": 1, "weights": [{ "operator_id": 1.5, "weight": 1 }] }),
            "weights",
        ),
    ];
    for (body, field) in refused {
        let answer = app.post(&path, body.clone()).await;
        assert_unprocessable(&answer, &body.to_string());
        let detail = answer.1["detail"].as_str().unwrap();
        assert!(detail.contains(field), "{body} → {detail}");
    }

    // A weight for an operator the source has no link to: 404, as the link's own routes answer.
    for stranger in [stranger, 999_999] {
        let body = json!({ "contacts": 1, "weights": [{ "operator_id": stranger, "weight": 1 }] });
        let answer = app.post(&path, body).await;
        assert_error(&answer, StatusCode::NOT_FOUND, "weights");
    }
    // An operator given twice counts as the last one given.
    let answer = simulate(
        &app,
        source,
        json!({ "contacts": 1, "weights": [
            { "operator_id": linked, "weight": 1 },
            { "operator_id": linked, "weight": 2 },
        ] }),
    )
    .await;
    assert_eq!(answer["operators"][0]["weight"], 2.0, "{answer}");

    // Whole numbers written with a fraction of zero are whole; a field leadrouter does not know is ignored,
    // as in every other body.
    let answer = simulate(
        &app,
        source,
        json!({ "contacts": 5.0, "seed": 3.0, "colour": "red" }),
    )
    .await;
    assert_eq!(answer["contacts"], 5);

    assert_error(
        &app.post("/sources/999999/simulate", json!({ "contacts": 1 }))
            .await,
        StatusCode::NOT_FOUND,
        "no such source",
    );
    app.delete_ok(&format!("/sources/{source}")).await;
    assert_error(
        &app.post(&path, json!({ "contacts": 1 })).await,
        StatusCode::NOT_FOUND,
        "a deleted source",
    );
});

backend_test!(
    read_keys_may_simulate_ingest_and_operator_keys_may_not,
    |app| {
        let (source, operator) = app.source_with_operator("Ann", 5).await;
        let read = create_key(&app, "read", "dashboard");
        let ingest = create_key(&app, "ingest", "bot");
        let (_, operator_key) = common::create_operator_key(&app, operator, "ann-phone");
        let path = format!("/sources/{source}/simulate");
        let body = || Some(json!({ "contacts": 3 }));

        let (status, answer) = call_with_key(&app, Some(&read), Method::POST, &path, body()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["operators"][0]["simulated_count"], 3);
        for token in [&ingest, &operator_key] {
            let answer = call_with_key(&app, Some(token), Method::POST, &path, body()).await;
            assert_error(&answer, StatusCode::FORBIDDEN, "not a read key");
        }
        // Reading is all it grants: other POSTs under /sources stay the admin's.
        let link = Some(json!({ "operator_id": operator }));
        let answer = call_with_key(
            &app,
            Some(&read),
            Method::POST,
            &format!("/sources/{source}/operators"),
            link,
        )
        .await;
        assert_error(&answer, StatusCode::FORBIDDEN, "a read key links nothing");
        let (status, _) = call_with_key(&app, None, Method::POST, &path, body()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
);
