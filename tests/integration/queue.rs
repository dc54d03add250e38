//! The queue of waiting contacts (issue #6): `queue_position` on every contact, `GET /sources/{id}/queue`, and
//! the queue draining itself on every change that frees capacity — in age order, never over max_load, never
//! twice — plus the periodic sweep that catches capacity appearing behind the API's back.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{TestApp, id_of};
use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Posts `count` contacts through the source and returns their ids, oldest first.
async fn contacts(app: &TestApp, source_id: i64, count: usize) -> Vec<i64> {
    let mut created = Vec::with_capacity(count);
    for _ in 0..count {
        created.push(id_of(&app.contact(json!({ "source_id": source_id })).await));
    }
    created
}

/// `GET /sources/{id}/queue{query}`, expecting 200: (contact id, queue_position) in the order answered.
async fn queue_page(app: &TestApp, source_id: i64, query: &str) -> Vec<(i64, i64)> {
    let (status, list) = app.get(&format!("/sources/{source_id}/queue{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {list}");
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(|contact| {
            assert_eq!(contact["source_id"], source_id, "{contact}");
            assert_eq!(contact["operator_id"], Value::Null, "{contact}");
            assert_eq!(contact["status"], "active", "{contact}");
            let position = contact["queue_position"]
                .as_i64()
                .unwrap_or_else(|| panic!("a queued contact without a position: {contact}"));
            (id_of(contact), position)
        })
        .collect()
}

/// Asserts the source's queue is exactly `expected` (oldest first) with positions 1..=n, both in
/// `GET /sources/{id}/queue` and in each contact's `GET /contacts/{id}`.
async fn assert_queue(app: &TestApp, source_id: i64, expected: &[i64]) {
    let listed = queue_page(app, source_id, "?limit=1000").await;
    let wanted: Vec<(i64, i64)> = expected
        .iter()
        .zip(1..)
        .map(|(&id, position)| (id, position))
        .collect();
    assert_eq!(listed, wanted, "the queue of source {source_id}");
    for (id, position) in wanted {
        let contact = app.fetch_contact(id).await;
        assert_eq!(contact["queue_position"], position, "{contact}");
        assert_eq!(contact["operator_id"], Value::Null, "{contact}");
    }
}

/// Asserts the contact is assigned to the operator and out of the queue.
async fn assert_assigned(app: &TestApp, contact_id: i64, operator_id: i64) {
    let contact = app.fetch_contact(contact_id).await;
    assert_eq!(contact["operator_id"], operator_id, "{contact}");
    assert_eq!(contact["queue_position"], Value::Null, "{contact}");
}

// --- queue_position -----------------------------------------------------------------------------------------

backend_test!(positions_count_the_waiting_contacts_of_each_source, |app| {
    let (source, operator) = app.source_with_operator("Анна", 1).await;
    let first = app.contact(json!({ "source_id": source })).await;
    assert_eq!(first["operator_id"], operator);
    assert!(
        first.as_object().unwrap().contains_key("queue_position"),
        "the field is there even when null: {first}"
    );
    assert_eq!(first["queue_position"], Value::Null, "{first}");

    let mut expected: BTreeMap<i64, Value> = BTreeMap::new();
    expected.insert(id_of(&first), Value::Null);
    for position in 1..=3 {
        let contact = app.contact(json!({ "source_id": source })).await;
        assert_eq!(contact["operator_id"], Value::Null, "{contact}");
        assert_eq!(contact["queue_position"], position, "{contact}");
        expected.insert(id_of(&contact), json!(position));
    }

    // Another source's queue starts at 1, interleaved or not: its operator takes nothing (max_load 0).
    let other = app.source("WhatsApp").await;
    let zero = app.operator("Ноль", 0).await;
    app.link(other, zero, 1.0).await;
    // And a third source without any operator.
    let bare = app.source("Email").await;
    for position in 1..=2 {
        let contact = app.contact(json!({ "source_id": other })).await;
        assert_eq!(contact["queue_position"], position, "{contact}");
        expected.insert(id_of(&contact), json!(position));
        let contact = app.contact(json!({ "source_id": bare })).await;
        assert_eq!(contact["queue_position"], position, "{contact}");
        expected.insert(id_of(&contact), json!(position));
    }
    let contact = app.contact(json!({ "source_id": source })).await;
    assert_eq!(contact["queue_position"], 4, "{contact}");
    expected.insert(id_of(&contact), json!(4));

    // GET /contacts/{id} and GET /contacts show the same positions.
    for (&id, position) in &expected {
        let fetched = app.fetch_contact(id).await;
        assert_eq!(&fetched["queue_position"], position, "{fetched}");
    }
    let (status, list) = app.get("/contacts/?limit=1000").await;
    assert_eq!(status, StatusCode::OK);
    let listed: BTreeMap<i64, Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|contact| (id_of(contact), contact["queue_position"].clone()))
        .collect();
    assert_eq!(listed, expected);
    let filtered = app
        .get_ok(&format!("/contacts/?source_id={other}&unassigned=true"))
        .await;
    for contact in filtered.as_array().unwrap() {
        assert_eq!(
            contact["queue_position"],
            expected[&id_of(contact)],
            "{contact}"
        );
    }
});

backend_test!(
    a_closed_contact_has_no_position_and_the_ones_behind_move_up,
    |app| {
        let source = app.source("Telegram Bot").await;
        let waiting = contacts(&app, source, 3).await;
        assert_queue(&app, source, &waiting).await;

        let closed = app.set_status(waiting[1], "closed").await;
        assert_eq!(closed["queue_position"], Value::Null, "{closed}");
        assert_eq!(
            app.fetch_contact(waiting[1]).await["queue_position"],
            Value::Null
        );
        assert_queue(&app, source, &[waiting[0], waiting[2]]).await;

        let won = app.set_status(waiting[0], "won").await;
        assert_eq!(won["queue_position"], Value::Null, "{won}");
        assert_queue(&app, source, &[waiting[2]]).await;

        // An assigned contact, active or closed, has no position either.
        let (routed, operator) = source_with_operator_named(&app, "Routed", "Анна", 1).await;
        let contact = app.contact(json!({ "source_id": routed })).await;
        assert_eq!(contact["operator_id"], operator);
        let closed = app.set_status(id_of(&contact), "closed").await;
        assert_eq!(closed["queue_position"], Value::Null, "{closed}");
    }
);

/// `source_with_operator` names the source "Telegram Bot"; a second one in a test needs another name.
async fn source_with_operator_named(
    app: &TestApp,
    source_name: &str,
    operator_name: &str,
    max_load: i64,
) -> (i64, i64) {
    let source = app.source(source_name).await;
    let operator = app.operator(operator_name, max_load).await;
    app.link(source, operator, 1.0).await;
    (source, operator)
}

// --- GET /sources/{id}/queue --------------------------------------------------------------------------------

backend_test!(the_queue_lists_the_waiting_contacts_oldest_first, |app| {
    let (source, operator) = app.source_with_operator("Анна", 1).await;
    let assigned = contacts(&app, source, 1).await[0];
    assert_assigned(&app, assigned, operator).await;
    let waiting = contacts(&app, source, 6).await;
    // Another source's waiting contacts are not in this queue.
    let other = app.source("WhatsApp").await;
    contacts(&app, other, 2).await;
    // A closed waiting contact leaves it.
    app.set_status(waiting[2], "closed").await;
    let queued: Vec<i64> = waiting
        .iter()
        .copied()
        .filter(|&id| id != waiting[2])
        .collect();
    assert_queue(&app, source, &queued).await;

    // Without parameters: the whole (short) queue.
    let all = queue_page(&app, source, "").await;
    assert_eq!(all.iter().map(|(id, _)| *id).collect::<Vec<_>>(), queued);

    // Paging: positions are skip + index + 1.
    for (skip, limit) in [(0, 2), (1, 2), (2, 10), (4, 1), (5, 3), (9, 5)] {
        let page = queue_page(&app, source, &format!("?skip={skip}&limit={limit}")).await;
        let expected: Vec<(i64, i64)> = queued
            .iter()
            .copied()
            .zip(1..)
            .skip(skip)
            .take(limit)
            .collect();
        assert_eq!(page, expected, "skip={skip} limit={limit}");
    }
    assert_eq!(queue_page(&app, other, "").await.len(), 2);
});

backend_test!(
    the_queue_of_an_unknown_or_deleted_source_is_not_found,
    |app| {
        let source = app.source("Telegram Bot").await;
        contacts(&app, source, 2).await;
        let (status, body) = app.get(&format!("/sources/{}/queue", source + 1000)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(body["detail"].is_string(), "{body}");

        let (status, _) = app.delete(&format!("/sources/{source}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = app.get(&format!("/sources/{source}/queue")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(body["detail"].is_string(), "{body}");
    }
);

backend_test!(bad_queue_paging_is_refused, |app| {
    let source = app.source("Telegram Bot").await;
    contacts(&app, source, 1).await;
    for query in [
        "?limit=0",
        "?limit=-1",
        "?limit=1001",
        "?skip=-1",
        "?skip=x",
        "?limit=x",
    ] {
        let (status, body) = app.get(&format!("/sources/{source}/queue{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert!(body["detail"].is_string(), "{query}: {body}");
    }
    assert_eq!(queue_page(&app, source, "?limit=1000").await.len(), 1);
    // The largest skip is a valid one (an empty page), not an overflow in the positions.
    assert!(
        queue_page(&app, source, "?skip=9223372036854775807")
            .await
            .is_empty()
    );
});

// --- the triggers -------------------------------------------------------------------------------------------

backend_test!(
    closing_an_assigned_contact_gives_the_slot_to_the_oldest_waiting,
    |app| {
        let (source, operator) = app.source_with_operator("Анна", 1).await;
        let busy = contacts(&app, source, 1).await[0];
        let waiting = contacts(&app, source, 3).await;
        assert_queue(&app, source, &waiting).await;

        let closed = app.set_status(busy, "closed").await;
        assert_eq!(closed["status"], "closed");

        assert_assigned(&app, waiting[0], operator).await;
        assert_queue(&app, source, &waiting[1..]).await;
        assert_eq!(app.load_of(operator).await, 1);

        // Any status out of `active` frees the slot.
        app.set_status(waiting[0], "won").await;
        assert_assigned(&app, waiting[1], operator).await;
        assert_queue(&app, source, &waiting[2..]).await;
        assert_eq!(app.load_of(operator).await, 1);
    }
);

backend_test!(
    raising_max_load_assigns_exactly_as_many_of_the_oldest,
    |app| {
        let (source, operator) = app.source_with_operator("Анна", 1).await;
        let busy = contacts(&app, source, 1).await[0];
        let waiting = contacts(&app, source, 4).await;

        app.change_operator(operator, json!({ "max_load": 3 }))
            .await;

        assert_assigned(&app, busy, operator).await;
        assert_assigned(&app, waiting[0], operator).await;
        assert_assigned(&app, waiting[1], operator).await;
        assert_queue(&app, source, &waiting[2..]).await;
        assert_eq!(app.load_of(operator).await, 3);

        // Changing something else frees nothing.
        app.change_operator(operator, json!({ "name": "Анна К." }))
            .await;
        assert_queue(&app, source, &waiting[2..]).await;
        assert_eq!(app.load_of(operator).await, 3);
    }
);

backend_test!(activating_an_operator_drains_the_queue, |app| {
    let source = app.source("Telegram Bot").await;
    let operator = app.inactive_operator("В отпуске", 2).await;
    app.link(source, operator, 1.0).await;
    let waiting = contacts(&app, source, 3).await;
    assert_queue(&app, source, &waiting).await;

    app.change_operator(operator, json!({ "is_active": true }))
        .await;

    assert_assigned(&app, waiting[0], operator).await;
    assert_assigned(&app, waiting[1], operator).await;
    assert_queue(&app, source, &waiting[2..]).await;
    assert_eq!(app.load_of(operator).await, 2);
});

backend_test!(
    linking_an_operator_drains_the_source_up_to_its_max_load,
    |app| {
        let source = app.source("Telegram Bot").await;
        let waiting = contacts(&app, source, 5).await;
        assert_queue(&app, source, &waiting).await;

        let operator = app.operator("Анна", 3).await;
        app.link(source, operator, 1.0).await;

        for &id in &waiting[..3] {
            assert_assigned(&app, id, operator).await;
        }
        assert_queue(&app, source, &waiting[3..]).await;
        assert_eq!(app.load_of(operator).await, 3);

        // Linked to a second source, its remaining capacity (none) takes nothing there.
        let other = app.source("WhatsApp").await;
        let elsewhere = contacts(&app, other, 1).await;
        app.link(other, operator, 1.0).await;
        assert_queue(&app, other, &elsewhere).await;
        assert_eq!(app.load_of(operator).await, 3);
    }
);

backend_test!(changing_a_weight_drains_the_source, |app| {
    let (source, operator) = app.source_with_operator("Анна", 1).await;
    contacts(&app, source, 1).await;
    let waiting = contacts(&app, source, 2).await;
    // Capacity behind the API's back: no trigger, and the sweep is off in tests.
    app.execute_sql(&format!(
        "UPDATE operators SET max_load = 2 WHERE id = {operator}"
    ))
    .await;
    assert_queue(&app, source, &waiting).await;

    let (status, body) = app
        .patch(
            &format!("/sources/{source}/operators/{operator}"),
            json!({ "weight": 5.0 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    assert_assigned(&app, waiting[0], operator).await;
    assert_queue(&app, source, &waiting[1..]).await;
    assert_eq!(app.load_of(operator).await, 2);
});

backend_test!(
    a_freed_operator_takes_the_oldest_waiting_across_its_sources,
    |app| {
        let first = app.source("Telegram Bot").await;
        let second = app.source("WhatsApp").await;
        let operator = app.operator("Анна", 1).await;
        app.link(first, operator, 1.0).await;
        app.link(second, operator, 1.0).await;

        let busy = contacts(&app, first, 1).await[0];
        assert_assigned(&app, busy, operator).await;
        // Waiting, oldest first: b1 (second), a2 (first), b3 (second), a4 (first).
        let b1 = contacts(&app, second, 1).await[0];
        let a2 = contacts(&app, first, 1).await[0];
        let b3 = contacts(&app, second, 1).await[0];
        let a4 = contacts(&app, first, 1).await[0];
        assert_queue(&app, first, &[a2, a4]).await;
        assert_queue(&app, second, &[b1, b3]).await;

        // The freed slot came from the first source, but the oldest waiting contact is in the second.
        app.set_status(busy, "closed").await;
        assert_assigned(&app, b1, operator).await;
        assert_queue(&app, first, &[a2, a4]).await;
        assert_queue(&app, second, &[b3]).await;

        app.set_status(b1, "closed").await;
        assert_assigned(&app, a2, operator).await;
        assert_queue(&app, first, &[a4]).await;
        assert_queue(&app, second, &[b3]).await;

        app.set_status(a2, "closed").await;
        assert_assigned(&app, b3, operator).await;
        assert_queue(&app, first, &[a4]).await;
        assert_queue(&app, second, &[]).await;
        assert_eq!(app.load_of(operator).await, 1);
    }
);

backend_test!(
    deleting_an_operator_requeues_its_active_contacts_by_age,
    |app| {
        let (source, doomed) = app.source_with_operator("Уходит", 2).await;
        let c = contacts(&app, source, 4).await;
        assert_assigned(&app, c[0], doomed).await;
        assert_assigned(&app, c[1], doomed).await;
        assert_queue(&app, source, &c[2..]).await;
        // Close c0: its slot goes to c2. The doomed operator holds c1 and c2, and c0 closed.
        app.set_status(c[0], "closed").await;
        assert_assigned(&app, c[2], doomed).await;
        assert_queue(&app, source, &c[3..]).await;
        // Another operator with room for two takes c3 when linked: one slot left.
        let heir = app.operator("Остаётся", 2).await;
        app.link(source, heir, 1.0).await;
        assert_assigned(&app, c[3], heir).await;
        assert_queue(&app, source, &[]).await;

        let (status, body) = app.delete(&format!("/operators/{doomed}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

        // c1 and c2 went back in age order: c1 took the heir's last slot, c2 waits first in line.
        assert_assigned(&app, c[1], heir).await;
        assert_queue(&app, source, &[c[2]]).await;
        assert_eq!(app.load_of(heir).await, 2);
        // The closed contact just lost its operator.
        let closed = app.fetch_contact(c[0]).await;
        assert_eq!(closed["status"], "closed");
        assert_eq!(closed["operator_id"], Value::Null, "{closed}");
        assert_eq!(closed["queue_position"], Value::Null, "{closed}");

        // The next contact waits behind c2.
        let next = app.contact(json!({ "source_id": source })).await;
        assert_eq!(next["queue_position"], 2, "{next}");
    }
);

backend_test!(
    deleting_an_operator_without_another_one_leaves_its_contacts_waiting,
    |app| {
        let (source, doomed) = app.source_with_operator("Уходит", 2).await;
        let c = contacts(&app, source, 3).await;
        let (status, _) = app.delete(&format!("/operators/{doomed}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        // c0 and c1 are older than c2, which was waiting already: they go in front of it.
        assert_queue(&app, source, &c).await;
    }
);

backend_test!(
    reopening_an_unassigned_closed_contact_puts_it_back_in_line,
    |app| {
        let (source, operator) = app.source_with_operator("Анна", 1).await;
        let busy = contacts(&app, source, 1).await[0];
        let waiting = contacts(&app, source, 2).await;
        app.set_status(waiting[0], "closed").await;
        assert_queue(&app, source, &waiting[1..]).await;

        // No capacity: it waits, at its age position (in front of the younger one).
        let reopened = app.set_status(waiting[0], "active").await;
        assert_eq!(reopened["operator_id"], Value::Null, "{reopened}");
        assert_queue(&app, source, &waiting).await;

        app.set_status(busy, "closed").await;
        assert_assigned(&app, waiting[0], operator).await;
        assert_queue(&app, source, &waiting[1..]).await;

        // With capacity: reopening assigns it at once.
        let (other, other_operator) =
            source_with_operator_named(&app, "WhatsApp", "Борис", 1).await;
        let closed = app.contact(json!({ "source_id": other })).await;
        assert_eq!(closed["operator_id"], other_operator);
        // Make it an unassigned closed contact: closed, then its operator deleted.
        app.set_status(id_of(&closed), "closed").await;
        let (status, _) = app.delete(&format!("/operators/{other_operator}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let fresh = app.operator("Вера", 1).await;
        app.link(other, fresh, 1.0).await;
        assert_eq!(app.load_of(fresh).await, 0, "nothing was waiting");
        app.set_status(id_of(&closed), "active").await;
        assert_assigned(&app, id_of(&closed), fresh).await;
        assert_eq!(app.load_of(fresh).await, 1);
    }
);

backend_test!(a_new_contact_does_not_jump_the_queue, |app| {
    let (source, operator) = app.source_with_operator("Анна", 1).await;
    let busy = contacts(&app, source, 1).await[0];
    let waiting = contacts(&app, source, 2).await;

    app.set_status(busy, "closed").await;
    assert_assigned(&app, waiting[0], operator).await;

    let newest = app.contact(json!({ "source_id": source })).await;
    assert_eq!(newest["operator_id"], Value::Null, "{newest}");
    assert_eq!(newest["queue_position"], 2, "{newest}");
    assert_queue(&app, source, &[waiting[1], id_of(&newest)]).await;
});

backend_test!(
    a_new_contact_lets_older_waiting_contacts_take_free_capacity_first,
    |app| {
        let (source, operator) = app.source_with_operator("Анна", 1).await;
        contacts(&app, source, 1).await;
        let waiting = contacts(&app, source, 2).await;

        // One slot appears behind the API's back (sweep off): the new contact must not take it.
        app.execute_sql(&format!(
            "UPDATE operators SET max_load = 2 WHERE id = {operator}"
        ))
        .await;
        let newest = app.contact(json!({ "source_id": source })).await;
        assert_eq!(newest["operator_id"], Value::Null, "{newest}");
        assert_eq!(newest["queue_position"], 2, "{newest}");
        assert_assigned(&app, waiting[0], operator).await;
        assert_queue(&app, source, &[waiting[1], id_of(&newest)]).await;

        // Three slots appear: the two waiting ones go first, the new one gets the last.
        app.execute_sql(&format!(
            "UPDATE operators SET max_load = 5 WHERE id = {operator}"
        ))
        .await;
        let last = app.contact(json!({ "source_id": source })).await;
        assert_eq!(last["operator_id"], operator, "{last}");
        assert_eq!(last["queue_position"], Value::Null, "{last}");
        assert_assigned(&app, waiting[1], operator).await;
        assert_assigned(&app, id_of(&newest), operator).await;
        assert_queue(&app, source, &[]).await;
        assert_eq!(app.load_of(operator).await, 5);
    }
);

// --- concurrency --------------------------------------------------------------------------------------------

backend_test!(
    concurrent_triggers_never_assign_twice_nor_over_max_load,
    |app| {
        let source = app.source("burst").await;
        let mut operators = Vec::new();
        for (name, weight) in [("a", 1.0), ("b", 3.0), ("c", 0.5)] {
            let id = app.operator(name, 4).await;
            app.link(source, id, weight).await;
            operators.push(id);
        }
        let busy = contacts(&app, source, 12).await;
        for &operator in &operators {
            assert_eq!(app.load_of(operator).await, 4);
        }
        let waiting = contacts(&app, source, 40).await;
        assert_queue(&app, source, &waiting).await;

        // Close all twelve and raise every max_load, all at once: 12 + 3 slots freed, 40 waiting.
        let new_max_loads = [6_i64, 7, 8];
        let client = &app;
        let closes = busy.iter().map(|&id| {
            let path = format!("/contacts/{id}/status?status=closed");
            async move { client.call(Method::PATCH, &path, None).await }
        });
        let raises = operators.iter().zip(new_max_loads).map(|(&id, max_load)| {
            let path = format!("/operators/{id}");
            async move { client.patch(&path, json!({ "max_load": max_load })).await }
        });
        let (closed, raised) = futures::join!(join_all(closes), join_all(raises));
        for (status, body) in closed.iter().chain(&raised) {
            assert_eq!(*status, StatusCode::OK, "{body}");
        }

        let capacity: i64 = new_max_loads.iter().sum();
        let mut assigned = BTreeSet::new();
        for (&operator, max_load) in operators.iter().zip(new_max_loads) {
            let held = app.active_contacts(operator).await;
            assert!(
                held.len() as i64 <= max_load,
                "operator {operator} holds {} > {max_load}",
                held.len()
            );
            assert_eq!(app.load_of(operator).await, held.len() as i64);
            for id in held {
                assert!(waiting.contains(&id), "{id} was closed, yet active");
                assert!(assigned.insert(id), "{id} is held twice");
            }
        }
        assert_eq!(
            assigned.len() as i64,
            capacity.min(waiting.len() as i64),
            "every freed slot was filled"
        );
        // The oldest were assigned; the queue is exactly the rest, positions 1..n.
        let expected_assigned: BTreeSet<i64> =
            waiting[..capacity as usize].iter().copied().collect();
        assert_eq!(assigned, expected_assigned, "the oldest went first");
        let queued = queue_page(&app, source, "?limit=1000").await;
        let queued_ids: Vec<i64> = queued.iter().map(|(id, _)| *id).collect();
        assert_eq!(queued_ids, waiting[capacity as usize..]);
        let positions: Vec<i64> = queued.iter().map(|(_, position)| *position).collect();
        assert_eq!(positions, (1..=queued.len() as i64).collect::<Vec<_>>());
        for id in &busy {
            let contact = app.fetch_contact(*id).await;
            assert_eq!(contact["status"], "closed", "{contact}");
        }

        // Again: close the 21 just assigned while raising every max_load by one (24 slots, 19 waiting).
        let closes = assigned.iter().map(|&id| {
            let path = format!("/contacts/{id}/status?status=closed");
            async move { client.call(Method::PATCH, &path, None).await }
        });
        let raises = operators.iter().zip(new_max_loads).map(|(&id, max_load)| {
            let path = format!("/operators/{id}");
            async move {
                client
                    .patch(&path, json!({ "max_load": max_load + 1 }))
                    .await
            }
        });
        let (closed, raised) = futures::join!(join_all(closes), join_all(raises));
        for (status, body) in closed.iter().chain(&raised) {
            assert_eq!(*status, StatusCode::OK, "{body}");
        }
        let mut held_now = BTreeSet::new();
        for (&operator, max_load) in operators.iter().zip(new_max_loads) {
            let held = app.active_contacts(operator).await;
            assert!(held.len() as i64 <= max_load + 1, "operator {operator}");
            for id in held {
                assert!(held_now.insert(id), "{id} is held twice");
            }
        }
        let rest: BTreeSet<i64> = queued_ids.iter().copied().collect();
        assert_eq!(held_now, rest, "every one still waiting was assigned");
        assert_queue(&app, source, &[]).await;
    }
);

backend_test!(
    concurrent_closes_across_shared_operators_never_assign_twice,
    |app| {
        // Two sources sharing two operators; closing everything at once lets both drain both queues.
        let first = app.source("first").await;
        let second = app.source("second").await;
        let mut operators = Vec::new();
        for name in ["a", "b"] {
            let id = app.operator(name, 5).await;
            app.link(first, id, 1.0).await;
            app.link(second, id, 2.0).await;
            operators.push(id);
        }
        let mut busy = contacts(&app, first, 5).await;
        busy.extend(contacts(&app, second, 5).await);
        let mut waiting = Vec::new();
        for _ in 0..15 {
            waiting.extend(contacts(&app, first, 1).await);
            waiting.extend(contacts(&app, second, 1).await);
        }
        let client = &app;
        let closes = busy.iter().map(|&id| {
            let path = format!("/contacts/{id}/status?status=closed");
            async move { client.call(Method::PATCH, &path, None).await }
        });
        for (status, body) in join_all(closes).await {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let mut assigned = BTreeSet::new();
        for &operator in &operators {
            let held = app.active_contacts(operator).await;
            assert_eq!(held.len(), 5, "operator {operator} is full again");
            for id in held {
                assert!(assigned.insert(id), "{id} is held twice");
            }
        }
        // The ten oldest waiting contacts across both sources.
        let oldest: BTreeSet<i64> = waiting[..10].iter().copied().collect();
        assert_eq!(assigned, oldest);
        let rest_first: Vec<i64> = waiting[10..].iter().copied().step_by(2).collect();
        let rest_second: Vec<i64> = waiting[11..].iter().copied().step_by(2).collect();
        assert_queue(&app, first, &rest_first).await;
        assert_queue(&app, second, &rest_second).await;
    }
);

backend_test!(
    closes_racing_new_contacts_never_leave_a_slot_free_while_contacts_wait,
    |app| {
        // A close frees a slot while a new contact, not seeing it yet, decides to wait; neither transaction sees
        // the other's work. Whichever commits last must still bring the two together.
        let source = app.source("Telegram Bot").await;
        let mut operators = Vec::new();
        for index in 0..6 {
            let operator = app.operator(&format!("operator {index}"), 1).await;
            app.link(source, operator, 1.0).await;
            operators.push(operator);
        }
        contacts(&app, source, 6).await;
        let client = &app;
        for round in 0..8 {
            let mut busy = Vec::new();
            for &operator in &operators {
                busy.extend(app.active_contacts(operator).await);
            }
            let closes = busy.iter().map(|&id| {
                let path = format!("/contacts/{id}/status?status=closed");
                async move { client.call(Method::PATCH, &path, None).await }
            });
            let arrivals = (0..busy.len()).map(|_| async move {
                client
                    .call(
                        Method::POST,
                        "/contacts/",
                        Some(json!({ "source_id": source })),
                    )
                    .await
            });
            let (closed, arrived) = futures::join!(join_all(closes), join_all(arrivals));
            for (status, body) in closed.iter().chain(&arrived) {
                assert!(status.is_success(), "round {round}: {status} {body}");
            }
            let mut free = 0;
            for &operator in &operators {
                free += 1 - app.active_contacts(operator).await.len() as i64;
            }
            let queue = app.get_ok(&format!("/sources/{source}/queue")).await;
            let waiting = queue.as_array().map_or(0, Vec::len);
            assert!(
                free == 0 || waiting == 0,
                "round {round}: {free} slots free while {waiting} contacts wait"
            );
        }
    }
);

// --- the sweep ----------------------------------------------------------------------------------------------

backend_test!(
    the_sweep_assigns_capacity_that_appeared_behind_the_apis_back,
    config = |c| c.queue_sweep_secs = 1,
    |app| {
        let (source, operator) = app.source_with_operator("Анна", 1).await;
        let busy = contacts(&app, source, 1).await[0];
        let waiting = contacts(&app, source, 3).await;
        assert_queue(&app, source, &waiting).await;

        app.execute_sql(&format!(
            "UPDATE operators SET max_load = 5 WHERE id = {operator}"
        ))
        .await;

        common::poll_until(
            Duration::from_secs(20),
            Duration::from_millis(100),
            async || queue_page(&app, source, "").await,
            Vec::is_empty,
        )
        .await;
        assert_queue(&app, source, &[]).await;
        assert_assigned(&app, busy, operator).await;
        for &id in &waiting {
            assert_assigned(&app, id, operator).await;
        }
        assert_eq!(app.load_of(operator).await, 4);
    }
);
