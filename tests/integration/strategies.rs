//! Routing strategies per source (issue 13) and the decision record of every automatic assignment attempt:
//! `strategy` as a field of the source, smooth_weighted's ±1 bound and least_loaded's order over HTTP,
//! switching strategy mid-stream, both exact under concurrent requests, and `GET /contacts/{id}/decisions` for
//! each reason and each `why`. Time is a manual clock the tests move.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use chrono::TimeDelta;
use common::{TestApp, assert_error, assert_unprocessable, id_of, monday_10am, poll_until};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Operators linked to the source with these weights and a max_load no test reaches: their ids.
async fn weighted_operators(app: &TestApp, source: i64, weights: &[f64]) -> Vec<i64> {
    let mut ids = Vec::new();
    for (i, &weight) in weights.iter().enumerate() {
        let id = app.operator(&format!("Operator {}", i + 1), 10_000).await;
        app.link(source, id, weight).await;
        ids.push(id);
    }
    ids
}

async fn decisions_of(app: &TestApp, contact_id: i64) -> Vec<Value> {
    app.get_ok(&format!("/contacts/{contact_id}/decisions"))
        .await
        .as_array()
        .unwrap()
        .clone()
}

async fn latest_decision(app: &TestApp, contact_id: i64) -> Value {
    decisions_of(app, contact_id)
        .await
        .pop()
        .expect("a decision")
}

/// `why` of each excluded operator of the decision, by operator id.
fn exclusions(decision: &Value) -> HashMap<i64, String> {
    decision["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["operator_id"].as_i64().unwrap(),
                e["why"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The largest |count − n × weight / Σ weights| over the operators.
fn deviation(counts: &HashMap<i64, i64>, operators: &[i64], weights: &[f64], n: i64) -> f64 {
    let total: f64 = weights.iter().sum();
    operators
        .iter()
        .zip(weights)
        .map(|(id, w)| (*counts.get(id).unwrap_or(&0) as f64 - n as f64 * w / total).abs())
        .fold(0.0, f64::max)
}

// ---- the field ----

backend_test!(strategy_is_a_field_of_the_source, |app| {
    let (status, plain) = app.post("/sources/", json!({ "name": "Plain" })).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(plain["strategy"], "weighted_random");
    let smooth = app
        .source_with("Smooth", json!({ "strategy": "smooth_weighted" }))
        .await;
    let source = app.get_ok(&format!("/sources/{smooth}")).await;
    assert_eq!(source["strategy"], "smooth_weighted");
    let changed = app
        .patch_ok(
            &format!("/sources/{smooth}"),
            json!({ "strategy": "least_loaded" }),
        )
        .await;
    assert_eq!(changed["strategy"], "least_loaded");
    let listed = app.get_ok("/sources/").await;
    assert_eq!(listed[1]["strategy"], "least_loaded");
    for bad in [json!(null), json!("round_robin"), json!(3), json!("")] {
        let answer = app
            .post("/sources/", json!({ "name": "Bad", "strategy": bad }))
            .await;
        assert_unprocessable(&answer, "strategy");
        let answer = app
            .patch(&format!("/sources/{smooth}"), json!({ "strategy": bad }))
            .await;
        assert_unprocessable(&answer, "strategy");
    }
});

// ---- smooth_weighted ----

backend_test!(
    smooth_weighted_keeps_every_count_within_one_contact_of_target,
    |app| {
        let source = app
            .source_with("Smooth", json!({ "strategy": "smooth_weighted" }))
            .await;
        let weights = [1.0, 2.0, 3.0, 4.0];
        let operators = weighted_operators(&app, source, &weights).await;
        let mut counts = HashMap::new();
        let mut largest: f64 = 0.0;
        for n in 1..=120 {
            let contact = app.contact_through(source).await;
            *counts
                .entry(contact["operator_id"].as_i64().unwrap())
                .or_insert(0) += 1;
            largest = largest.max(deviation(&counts, &operators, &weights, n));
            assert!(largest <= 1.0, "after {n}: {counts:?}");
        }
        // Every tenth contact the shares are exact: 12 / 24 / 36 / 48.
        let expected: HashMap<i64, i64> = operators.iter().copied().zip([12, 24, 36, 48]).collect();
        assert_eq!(counts, expected);
        println!("smooth_weighted, 120 contacts, weights 1/2/3/4: largest deviation {largest:.3}");
        // The decision shows the credits and the round.
        let decision = latest_decision(&app, id_of(&app.contact_through(source).await)).await;
        assert_eq!(decision["strategy"], "smooth_weighted");
        assert_eq!(decision["detail"]["round_assignments"], 121);
        assert_eq!(decision["detail"]["fresh_round"], false);
        assert_eq!(decision["detail"]["credits"].as_array().unwrap().len(), 4);
        let probabilities: Vec<f64> = decision["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["probability"].as_f64().unwrap())
            .collect();
        assert_eq!(probabilities.iter().sum::<f64>(), 1.0);
        assert!(probabilities.iter().all(|p| *p == 0.0 || *p == 1.0));
    }
);

backend_test!(
    an_operator_back_from_a_break_starts_a_fresh_round_and_is_not_flooded,
    clock = monday_10am(),
    |app, clock| {
        let _ = &clock;
        let source = app
            .source_with("Smooth", json!({ "strategy": "smooth_weighted" }))
            .await;
        let operators = weighted_operators(&app, source, &[1.0, 1.0]).await;
        for _ in 0..4 {
            app.contact_through(source).await;
        }
        // Anna is away for the next ten contacts; they all go to Boris.
        app.change_operator(operators[0], json!({ "availability": "away" }))
            .await;
        for _ in 0..10 {
            let contact = app.contact_through(source).await;
            assert_eq!(contact["operator_id"], operators[1]);
        }
        app.change_operator(operators[0], json!({ "availability": "available" }))
            .await;
        // Back: a fresh round of two equal operators alternates; Anna is owed nothing from her break.
        let mut got = Vec::new();
        for _ in 0..6 {
            got.push(app.contact_through(source).await["operator_id"].clone());
        }
        let annas = got.iter().filter(|id| **id == operators[0]).count();
        assert_eq!(annas, 3, "{got:?}");
        let decision = latest_decision(&app, id_of(&app.contact_through(source).await)).await;
        assert_eq!(decision["detail"]["round_assignments"], 7, "{decision}");
    }
);

// ---- least_loaded ----

backend_test!(
    least_loaded_takes_the_lowest_ratio_then_the_larger_weight_then_the_longest_idle,
    clock = monday_10am(),
    |app, clock| {
        let source = app
            .source_with("Least", json!({ "strategy": "least_loaded" }))
            .await;
        let anna = app.operator("Анна", 2).await;
        let boris = app.operator("Борис", 4).await;
        let vera = app.operator("Вера", 4).await;
        app.link(source, anna, 1.0).await;
        app.link(source, boris, 1.0).await;
        app.link(source, vera, 3.0).await;
        let mut got = Vec::new();
        let mut tie_breaks = Vec::new();
        for _ in 0..11 {
            // A minute apart, so that "longest idle" is told by the clock.
            clock.advance(TimeDelta::minutes(1));
            let contact = app.contact_through(source).await;
            got.push(contact["operator_id"].as_i64());
            let decision = latest_decision(&app, id_of(&contact)).await;
            tie_breaks.push(decision["detail"]["tie_break"].clone());
        }
        // Loads (anna/2, boris/4, vera/4) worked out by hand: ties of ratio go to Вера's weight 3, ties
        // between Анна and Борис (weight 1 each) to whoever waited longest, never-assigned first.
        assert_eq!(
            got,
            [
                Some(vera),
                Some(anna),
                Some(boris),
                Some(vera),
                Some(boris),
                Some(vera),
                Some(anna),
                Some(boris),
                Some(vera),
                Some(boris),
                None
            ]
        );
        assert_eq!(tie_breaks[0], "weight");
        assert_eq!(tie_breaks[1], "operator_id", "neither was ever assigned");
        assert_eq!(tie_breaks[2], Value::Null);
        assert_eq!(tie_breaks[6], "oldest_assignment");
    }
);

// ---- switching ----

backend_test!(
    switching_strategy_mid_stream_applies_from_the_next_contact,
    config = |config: &mut leadrouter::Config| config.routing_seed = Some(13),
    |app| {
        let source = app.source_with("Switch", json!({})).await;
        let weights = [1.0, 3.0];
        let operators = weighted_operators(&app, source, &weights).await;
        let mut contacts = Vec::new();
        for _ in 0..10 {
            contacts.push(id_of(&app.contact_through(source).await));
        }
        app.patch_ok(
            &format!("/sources/{source}"),
            json!({ "strategy": "smooth_weighted" }),
        )
        .await;
        let mut counts = HashMap::new();
        for n in 1..=20 {
            let contact = app.contact_through(source).await;
            *counts
                .entry(contact["operator_id"].as_i64().unwrap())
                .or_insert(0) += 1;
            assert!(
                deviation(&counts, &operators, &weights, n) <= 1.0,
                "{counts:?}"
            );
            contacts.push(id_of(&contact));
        }
        let first_smooth = decisions_of(&app, contacts[10]).await[0].clone();
        assert_eq!(
            first_smooth["detail"]["fresh_round"], true,
            "{first_smooth}"
        );
        app.patch_ok(
            &format!("/sources/{source}"),
            json!({ "strategy": "least_loaded" }),
        )
        .await;
        // Loads now 5 + x and 15 + y of 10,000: the lighter-loaded one gets it.
        let stats = app.get_ok(&format!("/stats/sources/{source}")).await;
        let counts: Vec<i64> = operators
            .iter()
            .map(|id| {
                stats["operator_distribution"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|row| row["operator_id"] == *id)
                    .unwrap()["count"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        let lighter = if counts[0] <= counts[1] {
            operators[0]
        } else {
            operators[1]
        };
        let contact = app.contact_through(source).await;
        assert_eq!(contact["operator_id"], lighter, "{counts:?}");
        contacts.push(id_of(&contact));
        let strategies: Vec<String> = {
            let mut all = Vec::new();
            for &id in &contacts {
                all.push(
                    decisions_of(&app, id).await[0]["strategy"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
            all
        };
        assert!(strategies[..10].iter().all(|s| s == "weighted_random"));
        assert!(strategies[10..30].iter().all(|s| s == "smooth_weighted"));
        assert_eq!(strategies[30], "least_loaded");
    }
);

// ---- under concurrency ----

backend_test!(
    smooth_weighted_takes_its_turns_under_concurrent_contacts,
    |app| {
        let source = app
            .source_with("Smooth", json!({ "strategy": "smooth_weighted" }))
            .await;
        let weights = [1.0, 2.0, 3.0, 4.0];
        let operators = weighted_operators(&app, source, &weights).await;
        let posts = (0..60).map(|_| app.contact_through(source));
        let contacts = futures::future::join_all(posts).await;
        let mut counts = HashMap::new();
        let mut rounds = Vec::new();
        for contact in &contacts {
            *counts
                .entry(contact["operator_id"].as_i64().unwrap())
                .or_insert(0) += 1;
            let decision = latest_decision(&app, id_of(contact)).await;
            rounds.push(decision["detail"]["round_assignments"].as_i64().unwrap());
        }
        // Each choice saw the round the one before it left: 1 to 60, each once.
        rounds.sort_unstable();
        assert_eq!(rounds, (1..=60).collect::<Vec<_>>());
        let expected: HashMap<i64, i64> = operators.iter().copied().zip([6, 12, 18, 24]).collect();
        assert_eq!(counts, expected);
    }
);

backend_test!(least_loaded_evens_out_concurrent_contacts, |app| {
    let source = app
        .source_with("Least", json!({ "strategy": "least_loaded" }))
        .await;
    let mut operators = Vec::new();
    for name in ["Анна", "Борис", "Вера", "Глеб"] {
        let id = app.operator(name, 10).await;
        app.link(source, id, 1.0).await;
        operators.push(id);
    }
    let posts = (0..20).map(|_| app.contact_through(source));
    futures::future::join_all(posts).await;
    for id in operators {
        assert_eq!(app.load_of(id).await, 5, "operator {id}");
    }
});

// ---- decisions ----

backend_test!(
    a_decision_names_every_candidate_and_why_each_other_operator_was_left_out,
    clock = monday_10am(),
    |app, clock| {
        let source = app.source_with("Bot", json!({})).await;
        let light = app.operator("Лёгкий", 5).await;
        let heavy = app.operator("Тяжёлый", 5).await;
        let inactive = app.inactive_operator("Неактивный", 5).await;
        let away = app.operator("Отошёл", 5).await;
        let offline = app.operator("Не в сети", 5).await;
        let off_shift = app.operator("Не в смене", 5).await;
        let on_leave = app.operator("В отпуске", 5).await;
        let full = app.operator("Занят", 0).await;
        app.link(source, light, 10.0).await;
        app.link(source, heavy, 30.0).await;
        for id in [inactive, away, offline, off_shift, on_leave, full] {
            app.link(source, id, 1.0).await;
        }
        app.change_operator(away, json!({ "availability": "away" }))
            .await;
        app.change_operator(offline, json!({ "availability": "offline" }))
            .await;
        app.change_operator(
            off_shift,
            json!({ "schedule": [{ "days": ["sat"], "start": "09:00", "end": "18:00" }] }),
        )
        .await;
        let now = clock.now();
        let (status, _) = app
            .post(
                &format!("/operators/{on_leave}/time-off"),
                json!({ "starts_at": now - TimeDelta::hours(1), "ends_at": now + TimeDelta::days(1) }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);

        let contact = app.contact_through(source).await;
        let decisions = decisions_of(&app, id_of(&contact)).await;
        assert_eq!(decisions.len(), 1);
        let decision = &decisions[0];
        assert_eq!(decision["reason"], "creation");
        assert_eq!(decision["strategy"], "weighted_random");
        assert_eq!(decision["contact_id"], contact["id"]);
        assert_eq!(decision["source_id"], source);
        assert_eq!(decision["chosen_operator_id"], contact["operator_id"]);
        let candidates = decision["candidates"].as_array().unwrap();
        assert_eq!(candidates.len(), 2, "{decision}");
        assert_eq!(candidates[0]["operator_id"], light);
        assert_eq!(candidates[0]["operator_name"], "Лёгкий");
        assert_eq!(candidates[0]["weight"], 10.0);
        assert_eq!(candidates[0]["load"], 0);
        assert_eq!(candidates[0]["max_load"], 5);
        assert_eq!(candidates[0]["probability"], 0.25);
        assert_eq!(candidates[1]["probability"], 0.75);
        assert_eq!(decision["detail"]["total_weight"], 40.0);
        let random = decision["detail"]["random"].as_f64().unwrap();
        let expected = if random < 10.0 { light } else { heavy };
        assert_eq!(decision["chosen_operator_id"], expected, "{decision}");
        let why = exclusions(decision);
        assert_eq!(
            why,
            HashMap::from([
                (inactive, "inactive".to_owned()),
                (away, "away".to_owned()),
                (offline, "offline".to_owned()),
                (off_shift, "off_shift".to_owned()),
                (on_leave, "time_off".to_owned()),
                (full, "full".to_owned()),
            ])
        );
        // The history entry points to it.
        let history = app
            .get_ok(&format!("/contacts/{}/history", id_of(&contact)))
            .await;
        assert_eq!(history[0]["decision_id"], decision["id"]);
        // An unknown contact has no decisions.
        assert_error(
            &app.get("/contacts/999999/decisions").await,
            StatusCode::NOT_FOUND,
            "Contact",
        );
    }
);

backend_test!(
    a_waiting_contact_says_why_it_waits_and_its_queue_assignment_is_recorded,
    |app| {
        let source = app.source_with("Bot", json!({})).await;
        let anna = app.operator("Анна", 1).await;
        app.link(source, anna, 1.0).await;
        let first = id_of(&app.contact_through(source).await);
        let waiting = app.contact_through(source).await;
        assert_eq!(waiting["operator_id"], Value::Null);
        let decision = latest_decision(&app, id_of(&waiting)).await;
        assert_eq!(decision["reason"], "creation");
        assert_eq!(decision["chosen_operator_id"], Value::Null);
        assert_eq!(decision["candidates"], json!([]));
        assert_eq!(
            exclusions(&decision),
            HashMap::from([(anna, "full".to_owned())])
        );
        // Anna closes the first: the waiting one is hers, from the queue.
        app.set_status(first, "closed").await;
        let decisions = decisions_of(&app, id_of(&waiting)).await;
        assert_eq!(decisions.len(), 2);
        assert_eq!(decisions[1]["reason"], "queue");
        assert_eq!(decisions[1]["chosen_operator_id"], anna);
        assert_eq!(decisions[1]["candidates"][0]["load"], 0);
        let history = app
            .get_ok(&format!("/contacts/{}/history", id_of(&waiting)))
            .await;
        let queued = history.as_array().unwrap().last().unwrap();
        assert_eq!(queued["reason"], "queue");
        assert_eq!(queued["decision_id"], decisions[1]["id"]);
    }
);

backend_test!(
    sticky_declined_timeout_and_unavailable_decisions_are_recorded,
    clock = monday_10am(),
    |app, clock| {
        let source = app.source_with(
            "Rules",
            json!({ "sticky_hours": 24, "accept_timeout_secs": 60, "on_operator_unavailable": "requeue" }),
        )
        .await;
        let anna = app.operator("Анна", 5).await;
        let boris = app.operator("Борис", 5).await;
        app.link(source, anna, 1.0).await;
        app.link(source, boris, 1.0).await;
        let lead = json!({ "source_id": source, "lead_external_id": "lead-1" });
        let first = app.contact(lead.clone()).await;
        let first_operator = first["operator_id"].as_i64().unwrap();
        let other = if first_operator == anna { boris } else { anna };
        app.post_ok(&format!("/contacts/{}/accept", id_of(&first)), json!({}))
            .await;

        // The lead returns: sticky.
        let second = app.contact(lead.clone()).await;
        assert_eq!(second["operator_id"], first_operator);
        let decision = latest_decision(&app, id_of(&second)).await;
        assert_eq!(decision["reason"], "sticky");
        assert_eq!(decision["detail"]["previous_operator_id"], first_operator);
        assert_eq!(decision["detail"]["sticky_hours"], 24);

        // Declined: handed to the other, the decliner excluded as declined.
        let (status, declined) = app
            .post(&format!("/contacts/{}/decline", id_of(&second)), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{declined}");
        assert_eq!(declined["operator_id"], other);
        let decision = latest_decision(&app, id_of(&second)).await;
        assert_eq!(decision["reason"], "declined");
        assert_eq!(decision["chosen_operator_id"], other);
        assert_eq!(exclusions(&decision)[&first_operator], "declined");

        // Not accepted in time: nobody is left, and the decision says so.
        clock.advance(TimeDelta::seconds(61));
        let timed_out = poll_until(
            Duration::from_secs(10),
            Duration::from_millis(20),
            async || latest_decision(&app, id_of(&second)).await,
            |decision| decision["reason"] == "accept_timeout",
        )
        .await;
        assert_eq!(timed_out["reason"], "accept_timeout", "{timed_out}");
        assert_eq!(timed_out["chosen_operator_id"], Value::Null);
        assert_eq!(
            exclusions(&timed_out),
            HashMap::from([
                (anna, "declined".to_owned()),
                (boris, "declined".to_owned())
            ])
        );

        // The first contact's operator goes away, with the other full: requeued, and waiting says why.
        app.change_operator(other, json!({ "max_load": 0 })).await;
        app.change_operator(first_operator, json!({ "availability": "away" }))
            .await;
        let requeued = app.fetch_contact(id_of(&first)).await;
        assert_eq!(requeued["operator_id"], Value::Null, "{requeued}");
        let decision = latest_decision(&app, id_of(&first)).await;
        assert_eq!(decision["reason"], "operator_unavailable");
        assert_eq!(decision["chosen_operator_id"], Value::Null);
        assert_eq!(
            exclusions(&decision),
            HashMap::from([
                (first_operator, "away".to_owned()),
                (other, "full".to_owned())
            ])
        );
    }
);

backend_test!(
    an_operator_key_reads_the_decisions_of_its_own_contacts_only,
    |app| {
        let source = app.source_with("Bot", json!({})).await;
        let anna = app.operator("Анна", 1).await;
        app.link(source, anna, 1.0).await;
        let hers = id_of(&app.contact_through(source).await);
        let waiting = id_of(&app.contact_through(source).await);
        let (_, key) = common::create_operator_key(&app, anna, "anna");
        let read = async |contact: i64| {
            let path = format!("/contacts/{contact}/decisions");
            common::call_with_key(&app, Some(&key), reqwest::Method::GET, &path, None).await
        };
        let (status, decisions) = read(hers).await;
        assert_eq!(status, StatusCode::OK, "{decisions}");
        assert_eq!(decisions[0]["chosen_operator_id"], anna);
        assert_error(&read(waiting).await, StatusCode::NOT_FOUND, "Contact");
    }
);
