//! `PATCH /contacts/{id}`: giving a contact to an operator by hand (issue #6) — load moved, capacity and
//! activity checked unless forced, the queue drained behind the freed slot, and admin only.

use crate::common;

use common::{TestApp, call_with_key, call_with_key_ok, create_key, id_of, ids};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn contact_path(contact_id: i64) -> String {
    format!("/contacts/{contact_id}")
}

/// PATCH /contacts/{id} with the body.
async fn assign(app: &TestApp, contact_id: i64, body: Value) -> (StatusCode, Value) {
    app.patch(&contact_path(contact_id), body).await
}

/// The number of history entries of the contact.
async fn history_len(app: &TestApp, contact_id: i64) -> usize {
    let (status, history) = app.get(&format!("/contacts/{contact_id}/history")).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    history.as_array().expect("an array").len()
}

/// A waiting contact: through a source no operator is linked to.
async fn waiting_contact(app: &TestApp, source_id: i64) -> i64 {
    let contact = app.contact(json!({ "source_id": source_id })).await;
    assert_eq!(contact["operator_id"], Value::Null, "{contact}");
    assert!(contact["queue_position"].is_i64(), "{contact}");
    id_of(&contact)
}

/// An operator with max_load 1 holding one active contact (of a source of its own): full.
async fn full_operator(app: &TestApp, name: &str) -> i64 {
    let source = app.source(&format!("{name}'s source")).await;
    let operator = app.operator(name, 1).await;
    app.link(source, operator, 1.0).await;
    let contact = app.contact(json!({ "source_id": source })).await;
    assert_eq!(contact["operator_id"], operator);
    assert_eq!(app.load_of(operator).await, 1);
    operator
}

backend_test!(a_waiting_contact_is_given_to_a_free_operator, |app| {
    // Nobody is linked to the source: its contacts wait.
    let source = app.source("Telegram Bot").await;
    let waiting = waiting_contact(&app, source).await;
    let other = waiting_contact(&app, source).await;
    assert_eq!(app.fetch_contact(other).await["queue_position"], 2);
    let free = app.operator("Борис", 3).await;

    let assigned = app.assign_ok(waiting, json!(free)).await;
    assert_eq!(assigned["operator_id"], free, "{assigned}");
    assert_eq!(assigned["operator"]["id"], free, "{assigned}");
    assert_eq!(assigned["queue_position"], Value::Null, "{assigned}");
    assert_eq!(assigned["status"], "active");

    let fetched = app.fetch_contact(waiting).await;
    assert_eq!(fetched["operator_id"], free);
    assert_eq!(fetched["queue_position"], Value::Null);
    assert_eq!(app.load_of(free).await, 1);
    let behind = app.fetch_contact(other).await;
    assert_eq!(behind["queue_position"], 1, "the one behind moved up");
    assert_eq!(behind["operator_id"], Value::Null, "{behind}");
    let queue = app.get_ok(&format!("/sources/{source}/queue")).await;
    assert_eq!(ids(&queue), [other]);
});

backend_test!(
    an_operator_not_linked_to_the_source_can_be_given_it,
    |app| {
        let (source, linked) = app.source_with_operator("Анна", 5).await;
        let contact = app.contact(json!({ "source_id": source })).await;
        assert_eq!(contact["operator_id"], linked);
        let stranger = app.operator("Чужой", 5).await;

        let assigned = app.assign_ok(id_of(&contact), json!(stranger)).await;
        assert_eq!(assigned["operator_id"], stranger);
        assert_eq!(
            app.fetch_contact(id_of(&contact)).await["operator_id"],
            stranger
        );
        assert_eq!(app.load_of(stranger).await, 1);
        assert_eq!(app.load_of(linked).await, 0);
    }
);

backend_test!(
    reassigning_an_active_contact_moves_one_unit_of_load,
    |app| {
        let (source, first) = app.source_with_operator("Анна", 5).await;
        let contact = id_of(&app.contact(json!({ "source_id": source })).await);
        let kept = id_of(&app.contact(json!({ "source_id": source })).await);
        let second = app.operator("Борис", 5).await;
        assert_eq!(app.load_of(first).await, 2);
        assert_eq!(app.load_of(second).await, 0);

        let moved = app.assign_ok(contact, json!(second)).await;
        assert_eq!(moved["operator_id"], second);
        assert_eq!(app.load_of(first).await, 1);
        assert_eq!(app.load_of(second).await, 1);
        assert_eq!(app.fetch_contact(kept).await["operator_id"], first);

        // And back.
        app.assign_ok(contact, json!(first)).await;
        assert_eq!(app.load_of(first).await, 2);
        assert_eq!(app.load_of(second).await, 0);
    }
);

backend_test!(
    reassigning_frees_a_slot_that_the_queue_takes_at_once,
    |app| {
        let (source, first) = app.source_with_operator("Анна", 1).await;
        let busy = id_of(&app.contact(json!({ "source_id": source })).await);
        let waiting = waiting_contact(&app, source).await;
        let second = app.operator("Борис", 5).await;

        app.assign_ok(busy, json!(second)).await;

        let drained = app.fetch_contact(waiting).await;
        assert_eq!(drained["operator_id"], first, "{drained}");
        assert_eq!(drained["queue_position"], Value::Null, "{drained}");
        assert_eq!(app.load_of(first).await, 1);
        assert_eq!(app.load_of(second).await, 1);
    }
);

backend_test!(
    an_inactive_or_full_operator_is_refused_unless_forced,
    |app| {
        let source = app.source("Telegram Bot").await;
        let first = waiting_contact(&app, source).await;
        let second = waiting_contact(&app, source).await;
        let inactive = app.inactive_operator("В отпуске", 5).await;
        let full = full_operator(&app, "Занята").await;

        for (contact, operator, what) in [(first, inactive, "inactive"), (second, full, "full")] {
            let (status, body) = assign(&app, contact, json!({ "operator_id": operator })).await;
            assert_eq!(status, StatusCode::CONFLICT, "{what}: {body}");
            assert!(body["detail"].is_string(), "{what}: {body}");
            let (status, body) = assign(
                &app,
                contact,
                json!({ "operator_id": operator, "force": false }),
            )
            .await;
            assert_eq!(status, StatusCode::CONFLICT, "{what}, force false: {body}");
            let unchanged = app.fetch_contact(contact).await;
            assert_eq!(unchanged["operator_id"], Value::Null, "{what}: {unchanged}");
        }
        assert_eq!(app.fetch_contact(first).await["queue_position"], 1);
        assert_eq!(app.fetch_contact(second).await["queue_position"], 2);
        assert_eq!(app.load_of(inactive).await, 0);
        assert_eq!(app.load_of(full).await, 1);

        for (contact, operator) in [(first, inactive), (second, full)] {
            let (status, body) = assign(
                &app,
                contact,
                json!({ "operator_id": operator, "force": true }),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["operator_id"], operator, "{body}");
            assert_eq!(body["queue_position"], Value::Null, "{body}");
        }
        assert_eq!(app.load_of(inactive).await, 1);
        assert_eq!(app.load_of(full).await, 2, "forced over max_load 1");
    }
);

backend_test!(
    an_operator_at_max_load_zero_is_full_for_an_active_contact,
    |app| {
        let source = app.source("Telegram Bot").await;
        let contact = waiting_contact(&app, source).await;
        let zero = app.operator("Ноль", 0).await;
        let (status, body) = assign(&app, contact, json!({ "operator_id": zero })).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let (status, body) =
            assign(&app, contact, json!({ "operator_id": zero, "force": true })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(app.load_of(zero).await, 1);
    }
);

backend_test!(unknown_contacts_and_operators_are_not_found, |app| {
    let (source, operator) = app.source_with_operator("Анна", 5).await;
    let contact = id_of(&app.contact(json!({ "source_id": source })).await);

    let (status, body) = assign(&app, contact + 1000, json!({ "operator_id": operator })).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["detail"], "Contact not found", "{body}");

    for body in [
        json!({ "operator_id": operator + 1000 }),
        json!({ "operator_id": operator + 1000, "force": true }),
    ] {
        let (status, answer) = assign(&app, contact, body.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}: {answer}");
        assert_eq!(answer["detail"], "Operator not found", "{body}: {answer}");
    }

    // A deleted operator is unknown too.
    let gone = app.operator("Ушёл", 5).await;
    let (status, _) = app.delete(&format!("/operators/{gone}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, answer) = assign(&app, contact, json!({ "operator_id": gone })).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");

    assert_eq!(app.fetch_contact(contact).await["operator_id"], operator);
    assert_eq!(app.load_of(operator).await, 1);
});

backend_test!(invalid_bodies_are_refused, |app| {
    let (source, operator) = app.source_with_operator("Анна", 5).await;
    let contact = id_of(&app.contact(json!({ "source_id": source })).await);
    let other = app.operator("Борис", 5).await;
    // Neither operator_id nor status: nothing to change, and nothing changes.
    for body in [json!({}), json!({ "force": true })] {
        let (status, answer) = assign(&app, contact, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}: {answer}");
        assert_eq!(answer["operator_id"], operator, "{answer}");
    }
    let cases = [
        ("operator_id a string", json!({ "operator_id": "x" })),
        (
            "operator_id a numeric string",
            json!({ "operator_id": other.to_string() }),
        ),
        ("operator_id a fraction", json!({ "operator_id": 1.5 })),
        (
            "operator_id an object",
            json!({ "operator_id": { "id": other } }),
        ),
        (
            "force a string",
            json!({ "operator_id": other, "force": "yes" }),
        ),
        (
            "force a number",
            json!({ "operator_id": other, "force": 1 }),
        ),
        ("an array", json!([])),
        ("an array with an id", json!([other])),
        ("a number", json!(other)),
        ("null", Value::Null),
    ];
    for (what, body) in cases {
        let (status, answer) = assign(&app, contact, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {answer}");
        assert!(answer["detail"].is_string(), "{what}: {answer}");
    }
    let unchanged = app.fetch_contact(contact).await;
    assert_eq!(unchanged["operator_id"], operator, "{unchanged}");
    assert_eq!(app.load_of(other).await, 0);
    assert_eq!(history_len(&app, contact).await, 1, "nothing was recorded");
});

backend_test!(assigning_the_operator_it_has_changes_nothing, |app| {
    let (source, operator) = app.source_with_operator("Анна", 1).await;
    let contact = id_of(&app.contact(json!({ "source_id": source })).await);
    assert_eq!(history_len(&app, contact).await, 1);

    // Full (1 of 1), yet it is the same operator: nothing to check, nothing to do.
    let same = app.assign_ok(contact, json!(operator)).await;
    assert_eq!(same["operator_id"], operator, "{same}");
    let (status, forced) = assign(
        &app,
        contact,
        json!({ "operator_id": operator, "force": true }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{forced}");
    assert_eq!(app.load_of(operator).await, 1);
    assert_eq!(history_len(&app, contact).await, 1, "no history entry");

    // A waiting contact unassigned again: nothing either.
    let other = app.source("WhatsApp").await;
    let waiting = waiting_contact(&app, other).await;
    let still = app.assign_ok(waiting, Value::Null).await;
    assert_eq!(still["operator_id"], Value::Null, "{still}");
    assert_eq!(still["queue_position"], 1, "{still}");
    assert_eq!(history_len(&app, waiting).await, 1, "no history entry");
});

backend_test!(null_unassigns_back_into_the_queue, |app| {
    let (source, operator) = app.source_with_operator("Анна", 1).await;
    let contact = id_of(&app.contact(json!({ "source_id": source })).await);
    // No capacity may remain, or the queue would hand the contact straight back.
    app.change_operator(operator, json!({ "is_active": false }))
        .await;

    let unassigned = app.assign_ok(contact, Value::Null).await;
    assert_eq!(unassigned["operator_id"], Value::Null, "{unassigned}");
    assert_eq!(unassigned["operator"], Value::Null, "{unassigned}");
    assert_eq!(unassigned["queue_position"], 1, "{unassigned}");
    assert_eq!(unassigned["status"], "active");
    let fetched = app.fetch_contact(contact).await;
    assert_eq!(fetched["operator_id"], Value::Null);
    assert_eq!(fetched["queue_position"], 1);
    assert_eq!(app.load_of(operator).await, 0);
    let queue = app.get_ok(&format!("/sources/{source}/queue")).await;
    assert_eq!(ids(&queue), [contact]);

    // A younger contact waits behind it.
    let younger = waiting_contact(&app, source).await;
    assert_eq!(app.fetch_contact(younger).await["queue_position"], 2);
});

backend_test!(an_unassigned_contact_goes_back_at_its_age_position, |app| {
    // Capacity remains after the unassign: the oldest waiting contact — this very one — gets it again.
    let (source, operator) = app.source_with_operator("Анна", 1).await;
    let contact = id_of(&app.contact(json!({ "source_id": source })).await);
    let younger = waiting_contact(&app, source).await;

    app.assign_ok(contact, Value::Null).await;

    let again = app.fetch_contact(contact).await;
    assert_eq!(again["operator_id"], operator, "{again}");
    assert_eq!(again["queue_position"], Value::Null, "{again}");
    let still = app.fetch_contact(younger).await;
    assert_eq!(still["operator_id"], Value::Null, "{still}");
    assert_eq!(still["queue_position"], 1, "{still}");
    assert_eq!(app.load_of(operator).await, 1);
});

backend_test!(
    a_closed_contact_needs_no_capacity_but_an_active_operator,
    |app| {
        let (source, first) = app.source_with_operator("Анна", 1).await;
        let contact = id_of(&app.contact(json!({ "source_id": source })).await);
        app.set_status(contact, "closed").await;
        let full = full_operator(&app, "Занята").await;
        let inactive = app.inactive_operator("В отпуске", 5).await;

        let (status, body) = assign(&app, contact, json!({ "operator_id": inactive })).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(app.fetch_contact(contact).await["operator_id"], first);

        let moved = app.assign_ok(contact, json!(full)).await;
        assert_eq!(moved["operator_id"], full, "{moved}");
        assert_eq!(moved["status"], "closed", "{moved}");
        assert_eq!(moved["queue_position"], Value::Null, "{moved}");
        assert_eq!(app.load_of(full).await, 1, "a closed contact adds no load");
        assert_eq!(app.load_of(first).await, 0);

        // Forced, the inactive one is fine.
        let (status, body) = assign(
            &app,
            contact,
            json!({ "operator_id": inactive, "force": true }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(app.load_of(inactive).await, 0);

        // A closed contact unassigned is not waiting.
        let unassigned = app.assign_ok(contact, Value::Null).await;
        assert_eq!(unassigned["operator_id"], Value::Null, "{unassigned}");
        assert_eq!(unassigned["queue_position"], Value::Null, "{unassigned}");
        let queue = app.get_ok(&format!("/sources/{source}/queue")).await;
        assert_eq!(queue, json!([]));
    }
);

// --- keys ---------------------------------------------------------------------------------------------------

backend_test!(manual_assignment_is_for_admin_keys_only, |app| {
    let source = app.source("Telegram Bot").await;
    let contact = waiting_contact(&app, source).await;
    let operator = app.operator("Анна", 5).await;
    let admin = create_key(&app, "admin", "ops");
    let read = create_key(&app, "read", "dashboard");
    let ingest = create_key(&app, "ingest", "bot");
    let body = json!({ "operator_id": operator });
    let path = contact_path(contact);

    let (status, _) = app.patch(&path, body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no key");
    for (token, scope) in [(&read, "read"), (&ingest, "ingest")] {
        let (status, answer) =
            call_with_key(&app, Some(token), Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{scope}: {answer}");
    }
    let unchanged = call_with_key_ok(&app, Some(&read), Method::GET, &path, None).await;
    assert_eq!(unchanged["operator_id"], Value::Null, "{unchanged}");

    let (status, answer) =
        call_with_key(&app, Some(&admin), Method::PATCH, &path, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["operator_id"], operator, "{answer}");
    let fetched = call_with_key_ok(&app, Some(&read), Method::GET, &path, None).await;
    assert_eq!(fetched["operator_id"], operator, "{fetched}");
});
