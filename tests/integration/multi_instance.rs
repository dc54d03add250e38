//! Several leadrouter instances on one database, as behind a load balancer: the invariants must hold across
//! processes, where no in-process lock can help. On PostgreSQL that is the scale-out set-up; on SQLite the
//! instances share the file, whose lock serialises their writers.

use crate::common;

use std::collections::{HashMap, HashSet};

use common::start_server;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

backend_test!(three_instances_share_capacity_and_leads_exactly, |app| {
    let source = app.source("campaign").await;
    let mut capacity = HashMap::new();
    for (name, max_load, weight) in [("a", 2, 1.0), ("b", 5, 3.0), ("c", 8, 0.5), ("d", 13, 2.0)] {
        let id = app.operator(name, max_load).await;
        app.link(source, id, weight).await;
        capacity.insert(id, max_load);
    }
    let second = start_server(&app.database.url).await;
    let third = start_server(&app.database.url).await;
    let instances = [
        app.base_url.clone(),
        format!("http://{}", second.local_addr()),
        format!("http://{}", third.local_addr()),
    ];

    // 300 contacts of 100 leads; each lead writes three times, through a different instance each time.
    let requests = (0..300).map(|i| {
        let lead = i % 100;
        let url = format!("{}/contacts/", instances[i % 3]);
        let body = json!({
            "source_id": source,
            "lead_external_id": format!("lead-{lead}"),
            "lead_phone": format!("+7999{:07}", lead),
        });
        let client = app.client.clone();
        async move {
            let response = client.post(url).json(&body).send().await.expect("sent");
            (
                response.status(),
                response.json::<Value>().await.expect("JSON"),
            )
        }
    });
    let answers = join_all(requests).await;

    assert!(
        answers
            .iter()
            .all(|(status, _)| *status == StatusCode::CREATED),
        "{answers:?}"
    );
    let total_capacity: i64 = capacity.values().sum();
    let assigned = answers
        .iter()
        .filter(|(_, c)| !c["operator_id"].is_null())
        .count() as i64;
    assert_eq!(
        assigned, total_capacity,
        "assignments equal the free capacity"
    );
    for (operator, max_load) in &capacity {
        let held = answers
            .iter()
            .filter(|(_, c)| c["operator_id"] == *operator)
            .count() as i64;
        assert_eq!(
            held, *max_load,
            "operator {operator} holds exactly its max_load"
        );
        let stats = app.operator_stats(*operator).await;
        assert_eq!(stats["active_contacts_count"], *max_load);
    }

    let mut lead_of_identity: HashMap<String, HashSet<i64>> = HashMap::new();
    for (_, contact) in &answers {
        let identity = contact["lead"]["external_id"].as_str().unwrap().to_owned();
        lead_of_identity
            .entry(identity)
            .or_default()
            .insert(contact["lead_id"].as_i64().unwrap());
    }
    assert_eq!(lead_of_identity.len(), 100);
    assert!(
        lead_of_identity.values().all(|leads| leads.len() == 1),
        "one lead per identity"
    );
    let leads = app.get_ok("/leads/?limit=1000").await;
    assert_eq!(leads.as_array().unwrap().len(), 100);

    second.stop().await.unwrap();
    third.stop().await.unwrap();
});
