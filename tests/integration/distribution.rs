//! The weighted choice as seen through the API: shares follow the weights, and only operators that are
//! active and below max_load are ever picked.

use crate::common;

use std::collections::HashMap;

use common::TestApp;
use futures::stream::{self, StreamExt};
use serde_json::{Value, json};

/// Posts `count` anonymous contacts to the source, `parallel` at a time, and returns them.
async fn post_contacts(app: &TestApp, source_id: i64, count: usize, parallel: usize) -> Vec<Value> {
    stream::iter(0..count)
        .map(|_| app.contact(json!({ "source_id": source_id })))
        .buffer_unordered(parallel)
        .collect()
        .await
}

fn count_by_operator(contacts: &[Value]) -> HashMap<Option<i64>, usize> {
    let mut counts = HashMap::new();
    for contact in contacts {
        *counts.entry(contact["operator_id"].as_i64()).or_default() += 1;
    }
    counts
}

backend_test!(weights_10_and_30_split_contacts_25_75, |app| {
    let source = app.source("Telegram").await;
    let light = app.operator("light", 100_000).await;
    let heavy = app.operator("heavy", 100_000).await;
    app.link(source, light, 10.0).await;
    app.link(source, heavy, 30.0).await;

    let contacts = post_contacts(&app, source, 4_000, 16).await;
    let counts = count_by_operator(&contacts);

    // Binomial(4000, 0.25): mean 1000, σ ≈ 27.4; ±5σ never flakes in practice.
    let light_count = counts[&Some(light)];
    assert!(
        (863..=1137).contains(&light_count),
        "light got {light_count} of 4000: {counts:?}"
    );
    assert_eq!(
        light_count + counts[&Some(heavy)],
        4_000,
        "every contact assigned: {counts:?}"
    );

    // The stats say the same.
    let stats = app.get_ok(&format!("/stats/sources/{source}")).await;
    assert_eq!(stats["total_contacts"], 4000);
    assert_eq!(stats["unassigned_contacts"], 0);
    let rows = stats["operator_distribution"].as_array().unwrap();
    let light_row = rows.iter().find(|r| r["operator_id"] == light).unwrap();
    assert_eq!(light_row["count"], light_count);
    assert_eq!(light_row["target_share"], 0.25);
    let actual = light_row["actual_share"].as_f64().unwrap();
    assert!(
        (actual - light_count as f64 / 4000.0).abs() < 1e-4,
        "{light_row}"
    );
});

backend_test!(fractional_weights_are_honoured, |app| {
    let source = app.source("Web").await;
    let half = app.operator("half", 100_000).await;
    let one_and_half = app.operator("one and a half", 100_000).await;
    app.link(source, half, 0.5).await;
    app.link(source, one_and_half, 1.5).await;

    let contacts = post_contacts(&app, source, 2_000, 16).await;
    let counts = count_by_operator(&contacts);

    // Binomial(2000, 0.25): mean 500, σ ≈ 19.4; ±5σ.
    let half_count = counts[&Some(half)];
    assert!(
        (403..=597).contains(&half_count),
        "0.5 got {half_count} of 2000: {counts:?}"
    );
});

backend_test!(
    inactive_full_and_zero_capacity_operators_are_never_picked,
    |app| {
        let source = app.source("WhatsApp").await;
        let available = app.operator("available", 100_000).await;
        let inactive = app.operator("inactive", 100_000).await;
        let zero = app.operator("zero capacity", 0).await;
        let full = app.operator("full", 1).await;
        let (status, _) = app
            .patch(
                &format!("/operators/{inactive}"),
                json!({ "is_active": false }),
            )
            .await;
        assert!(status.is_success());
        // Fill `full` through a source of its own.
        let other = app.source("other").await;
        app.link(other, full, 1.0).await;
        let filler = app.contact(json!({ "source_id": other })).await;
        assert_eq!(filler["operator_id"], full);

        app.link(source, available, 1.0).await;
        for operator in [inactive, zero, full] {
            app.link(source, operator, 1_000.0).await;
        }
        let contacts = post_contacts(&app, source, 300, 8).await;
        let counts = count_by_operator(&contacts);
        assert_eq!(counts.get(&Some(available)), Some(&300), "{counts:?}");
    }
);

backend_test!(closing_a_contact_frees_its_slot, |app| {
    let source = app.source("Telegram").await;
    let operator = app.operator("solo", 2).await;
    app.link(source, operator, 1.0).await;

    let first = app.contact(json!({ "source_id": source })).await;
    let second = app.contact(json!({ "source_id": source })).await;
    let third = app.contact(json!({ "source_id": source })).await;
    assert_eq!(first["operator_id"], operator);
    assert_eq!(second["operator_id"], operator);
    assert_eq!(third["operator_id"], Value::Null, "the operator is full");

    app.set_status(first["id"].as_i64().unwrap(), "closed")
        .await;
    let third = app.get_ok(&format!("/contacts/{}", third["id"])).await;
    assert_eq!(
        third["operator_id"], operator,
        "the closed contact's slot went to the contact waiting"
    );
    let fourth = app.contact(json!({ "source_id": source })).await;
    assert_eq!(
        fourth["operator_id"],
        Value::Null,
        "none is left for a newcomer"
    );

    let stats = app.operator_stats(operator).await;
    assert_eq!(stats["active_contacts_count"], 2);
    assert_eq!(stats["utilization_percent"], 100.0);
    assert_eq!(stats["total_contacts"], 3);
    assert_eq!(
        stats["contacts_by_status"],
        json!({ "active": 2, "closed": 1 })
    );
});

backend_test!(
    a_lowered_max_load_stops_new_assignments_until_the_load_drops_below_it,
    |app| {
        let source = app.source("Telegram").await;
        let operator = app.operator("busy", 3).await;
        app.link(source, operator, 1.0).await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(
                app.contact(json!({ "source_id": source })).await["id"]
                    .as_i64()
                    .unwrap(),
            );
        }
        let (status, _) = app
            .patch(&format!("/operators/{operator}"), json!({ "max_load": 1 }))
            .await;
        assert!(status.is_success());

        app.set_status(ids[0], "closed").await;
        let waiting = app.contact(json!({ "source_id": source })).await;
        assert_eq!(
            waiting["operator_id"],
            Value::Null,
            "2 active, max_load 1: still full"
        );

        app.set_status(ids[1], "closed").await;
        let still = app.get_ok(&format!("/contacts/{}", waiting["id"])).await;
        assert_eq!(
            still["operator_id"],
            Value::Null,
            "1 active, max_load 1: full"
        );
        app.set_status(ids[2], "closed").await;
        let assigned = app.get_ok(&format!("/contacts/{}", waiting["id"])).await;
        assert_eq!(
            assigned["operator_id"], operator,
            "below max_load at last: the contact waiting is assigned"
        );
    }
);
