//! `GET /contacts/{id}/history` (issue #6): every change of a contact's operator or status, oldest first, with
//! why it happened and which API key made it.

use crate::common;

use chrono::{DateTime, FixedOffset};
use common::{TestApp, call_with_key, create_key_with_id as create_key, field_names, id_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// GET /contacts/{id}/history, expecting 200, with every entry's shape checked and the order asserted.
async fn history(app: &TestApp, contact_id: i64) -> Vec<Value> {
    let (status, body) = app.get(&format!("/contacts/{contact_id}/history")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let entries = body
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {body}"))
        .clone();
    assert_well_formed(contact_id, &entries);
    entries
}

/// Every entry has exactly the documented fields with their types; the first is `created`; ids increase and
/// `at` never goes back.
fn assert_well_formed(contact_id: i64, entries: &[Value]) {
    assert!(!entries.is_empty(), "a contact has at least its creation");
    assert_eq!(entries[0]["event"], "created", "{entries:?}");
    let mut previous: Option<(i64, DateTime<FixedOffset>)> = None;
    for entry in entries {
        assert_eq!(
            field_names(entry),
            [
                "api_key_id",
                "at",
                "contact_id",
                "decision_id",
                "event",
                "from_operator_id",
                "from_status",
                "id",
                "reason",
                "to_operator_id",
                "to_status"
            ],
            "{entry}"
        );
        assert_eq!(entry["contact_id"], contact_id, "{entry}");
        let id = id_of(entry);
        let at = entry["at"]
            .as_str()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .unwrap_or_else(|| panic!("`at` is not RFC 3339: {entry}"));
        assert!(
            ["created", "assigned", "unassigned", "status_changed"]
                .contains(&entry["event"].as_str().unwrap_or_default()),
            "{entry}"
        );
        assert!(
            ["creation", "queue", "manual", "operator_deleted"]
                .contains(&entry["reason"].as_str().unwrap_or_default()),
            "{entry}"
        );
        assert!(entry["to_status"].is_string(), "{entry}");
        assert!(
            entry["from_status"].is_string() || entry["from_status"].is_null(),
            "{entry}"
        );
        for field in [
            "from_operator_id",
            "to_operator_id",
            "api_key_id",
            "decision_id",
        ] {
            assert!(entry[field].is_i64() || entry[field].is_null(), "{entry}");
        }
        // Routing's own entries point to the decision that made them; changes by hand to none.
        let automatic =
            ["creation", "queue"].contains(&entry["reason"].as_str().unwrap_or_default());
        assert_eq!(entry["decision_id"].is_i64(), automatic, "{entry}");
        if let Some((previous_id, previous_at)) = previous {
            assert!(id > previous_id, "ids increase: {entries:?}");
            assert!(at >= previous_at, "`at` never goes back: {entries:?}");
        }
        previous = Some((id, at));
    }
}

/// Asserts the entry has each field of `expected` with its value (other fields are not looked at).
fn assert_entry(entry: &Value, expected: Value) {
    for (field, value) in expected.as_object().unwrap() {
        assert_eq!(&entry[field], value, "{field} of {entry}");
    }
}

/// The events of the entries, in order.
fn events(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|entry| entry["event"].as_str().unwrap())
        .collect()
}

backend_test!(a_routed_contact_starts_with_its_creation, |app| {
    let (source, operator) = app.source_with_operator("Анна", 5).await;
    let contact = id_of(&app.contact(json!({ "source_id": source })).await);

    let entries = history(&app, contact).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_entry(
        &entries[0],
        json!({
            "contact_id": contact,
            "event": "created",
            "from_operator_id": null,
            "to_operator_id": operator,
            "from_status": null,
            "to_status": "active",
            "reason": "creation",
            "api_key_id": null,
        }),
    );
});

backend_test!(an_unassigned_contact_starts_with_its_creation, |app| {
    let source = app.source("Telegram Bot").await;
    let contact = id_of(&app.contact(json!({ "source_id": source })).await);

    let entries = history(&app, contact).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_entry(
        &entries[0],
        json!({
            "event": "created",
            "from_operator_id": null,
            "to_operator_id": null,
            "from_status": null,
            "to_status": "active",
            "reason": "creation",
            "api_key_id": null,
        }),
    );
});

backend_test!(each_status_change_is_recorded_once, |app| {
    let (source, operator) = app.source_with_operator("Анна", 5).await;
    let contact = id_of(&app.contact(json!({ "source_id": source })).await);

    app.set_status(contact, "closed").await;
    app.set_status(contact, "closed").await;
    let (status, _) = app
        .patch(
            &format!("/contacts/{contact}/status"),
            json!({ "status": "closed" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.set_status(contact, "won").await;

    let entries = history(&app, contact).await;
    assert_eq!(
        events(&entries),
        ["created", "status_changed", "status_changed"],
        "the same status again writes nothing: {entries:?}"
    );
    assert_entry(
        &entries[1],
        json!({
            "event": "status_changed",
            "from_status": "active",
            "to_status": "closed",
            "from_operator_id": operator,
            "to_operator_id": operator,
            "reason": "manual",
            "api_key_id": null,
        }),
    );
    assert_entry(
        &entries[2],
        json!({
            "event": "status_changed",
            "from_status": "closed",
            "to_status": "won",
            "from_operator_id": operator,
            "to_operator_id": operator,
            "reason": "manual",
        }),
    );
});

backend_test!(
    a_status_change_of_a_waiting_contact_names_no_operator,
    |app| {
        let source = app.source("Telegram Bot").await;
        let contact = id_of(&app.contact(json!({ "source_id": source })).await);
        app.set_status(contact, "spam").await;
        let entries = history(&app, contact).await;
        assert_eq!(events(&entries), ["created", "status_changed"]);
        assert_entry(
            &entries[1],
            json!({
                "from_status": "active",
                "to_status": "spam",
                "from_operator_id": null,
                "to_operator_id": null,
                "reason": "manual",
            }),
        );
    }
);

backend_test!(an_assignment_from_the_queue_is_recorded, |app| {
    let (source, operator) = app.source_with_operator("Анна", 1).await;
    let busy = id_of(&app.contact(json!({ "source_id": source })).await);
    let waiting = id_of(&app.contact(json!({ "source_id": source })).await);
    assert_eq!(events(&history(&app, waiting).await), ["created"]);

    app.set_status(busy, "closed").await;

    let entries = history(&app, waiting).await;
    assert_eq!(events(&entries), ["created", "assigned"], "{entries:?}");
    assert_entry(&entries[0], json!({ "to_operator_id": null }));
    assert_entry(
        &entries[1],
        json!({
            "event": "assigned",
            "from_operator_id": null,
            "to_operator_id": operator,
            "to_status": "active",
            "reason": "queue",
            "api_key_id": null,
        }),
    );
    // The closed one's history has only its own status change.
    assert_eq!(
        events(&history(&app, busy).await),
        ["created", "status_changed"]
    );
});

backend_test!(manual_reassignment_and_unassignment_are_recorded, |app| {
    let (source, first) = app.source_with_operator("Анна", 5).await;
    let contact = id_of(&app.contact(json!({ "source_id": source })).await);
    let second = app.operator("Борис", 5).await;

    app.assign_ok(contact, json!(second)).await;
    // The same operator again writes nothing.
    app.assign_ok(contact, json!(second)).await;
    // No capacity may remain in the source, or the queue would take the contact back at once.
    app.change_operator(first, json!({ "is_active": false }))
        .await;
    app.assign_ok(contact, Value::Null).await;
    // Capacity comes back: the queue assigns it.
    app.change_operator(first, json!({ "is_active": true }))
        .await;

    let entries = history(&app, contact).await;
    assert_eq!(
        events(&entries),
        ["created", "assigned", "unassigned", "assigned"],
        "{entries:?}"
    );
    assert_entry(
        &entries[1],
        json!({
            "event": "assigned",
            "from_operator_id": first,
            "to_operator_id": second,
            "to_status": "active",
            "reason": "manual",
            "api_key_id": null,
        }),
    );
    assert_entry(
        &entries[2],
        json!({
            "event": "unassigned",
            "from_operator_id": second,
            "to_operator_id": null,
            "to_status": "active",
            "reason": "manual",
            "api_key_id": null,
        }),
    );
    assert_entry(
        &entries[3],
        json!({
            "event": "assigned",
            "from_operator_id": null,
            "to_operator_id": first,
            "reason": "queue",
            "api_key_id": null,
        }),
    );
});

backend_test!(deleting_the_operator_is_recorded, |app| {
    let (source, operator) = app.source_with_operator("Анна", 5).await;
    let contact = id_of(&app.contact(json!({ "source_id": source })).await);

    let (status, _) = app.delete(&format!("/operators/{operator}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let entries = history(&app, contact).await;
    assert_eq!(events(&entries), ["created", "unassigned"], "{entries:?}");
    assert_entry(
        &entries[1],
        json!({
            "event": "unassigned",
            "from_operator_id": operator,
            "to_operator_id": null,
            "to_status": "active",
            "reason": "operator_deleted",
            "api_key_id": null,
        }),
    );
});

backend_test!(
    a_contact_requeued_by_a_deletion_records_its_next_operator,
    |app| {
        let (source, doomed) = app.source_with_operator("Уходит", 5).await;
        let contact = id_of(&app.contact(json!({ "source_id": source })).await);
        // Another operator joins after the contact was routed.
        let heir = app.operator("Остаётся", 5).await;
        app.link(source, heir, 1.0).await;
        assert_eq!(events(&history(&app, contact).await), ["created"]);

        let (status, _) = app.delete(&format!("/operators/{doomed}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);

        let entries = history(&app, contact).await;
        assert_eq!(
            events(&entries),
            ["created", "unassigned", "assigned"],
            "{entries:?}"
        );
        assert_entry(
            &entries[1],
            json!({ "from_operator_id": doomed, "reason": "operator_deleted" }),
        );
        assert_entry(
            &entries[2],
            json!({
                "from_operator_id": null,
                "to_operator_id": heir,
                "reason": "queue",
                "api_key_id": null,
            }),
        );
    }
);

backend_test!(entries_come_oldest_first, |app| {
    let (source, first) = app.source_with_operator("Анна", 1).await;
    let contact = id_of(&app.contact(json!({ "source_id": source })).await);
    let bystander = id_of(&app.contact(json!({ "source_id": source })).await);
    let second = app.operator("Борис", 5).await;

    app.set_status(contact, "paused").await; // bystander takes the slot from the queue
    app.set_status(bystander, "closed").await;
    app.assign_ok(contact, json!(second)).await;
    app.set_status(contact, "active").await;
    app.set_status(contact, "closed").await;
    app.assign_ok(contact, json!(first)).await;
    app.set_status(contact, "won").await;

    let entries = history(&app, contact).await;
    assert_eq!(
        events(&entries),
        [
            "created",
            "status_changed",
            "assigned",
            "status_changed",
            "status_changed",
            "assigned",
            "status_changed"
        ],
        "{entries:?}"
    );
    let statuses: Vec<&str> = entries
        .iter()
        .map(|entry| entry["to_status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "active", "paused", "paused", "active", "closed", "closed", "won"
        ]
    );
    let operators: Vec<&Value> = entries
        .iter()
        .map(|entry| &entry["to_operator_id"])
        .collect();
    assert_eq!(
        operators,
        [
            &json!(first),
            &json!(first),
            &json!(second),
            &json!(second),
            &json!(second),
            &json!(first),
            &json!(first)
        ]
    );
    // Each entry starts where the one before ended.
    for pair in entries.windows(2) {
        assert_eq!(
            pair[1]["from_operator_id"], pair[0]["to_operator_id"],
            "{pair:?}"
        );
        if pair[1]["event"] == "status_changed" {
            assert_eq!(pair[1]["from_status"], pair[0]["to_status"], "{pair:?}");
        }
    }
    // The bystander's history is its own.
    let others = history(&app, bystander).await;
    assert_eq!(
        events(&others),
        ["created", "assigned", "status_changed"],
        "{others:?}"
    );
});

backend_test!(the_history_of_an_unknown_contact_is_not_found, |app| {
    let source = app.source("Telegram Bot").await;
    let contact = id_of(&app.contact(json!({ "source_id": source })).await);
    let (status, body) = app
        .get(&format!("/contacts/{}/history", contact + 1000))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["detail"].is_string(), "{body}");
});

// --- keys ---------------------------------------------------------------------------------------------------

backend_test!(manual_changes_name_the_key_that_made_them, |app| {
    let (source, first) = app.source_with_operator("Анна", 1).await;
    let second = app.operator("Борис", 5).await;
    let contact = id_of(&app.contact(json!({ "source_id": source })).await);
    let waiting = id_of(&app.contact(json!({ "source_id": source })).await);

    let (closer, closer_token) = create_key(&app, "admin", "closer");
    let (mover, mover_token) = create_key(&app, "admin", "mover");
    let (_, reader_token) = create_key(&app, "read", "dashboard");
    assert_ne!(closer, mover);

    // The mover reassigns the contact; the first operator's freed slot goes to the waiting one.
    let (status, body) = call_with_key(
        &app,
        Some(&mover_token),
        Method::PATCH,
        &format!("/contacts/{contact}"),
        Some(json!({ "operator_id": second })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The closer closes it.
    let (status, body) = call_with_key(
        &app,
        Some(&closer_token),
        Method::PATCH,
        &format!("/contacts/{contact}/status?status=closed"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // History needs a key now; a read key will do.
    let (status, _) = app.get(&format!("/contacts/{contact}/history")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, entries) = call_with_key(
        &app,
        Some(&reader_token),
        Method::GET,
        &format!("/contacts/{contact}/history"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{entries}");
    let entries = entries.as_array().unwrap().clone();
    assert_well_formed(contact, &entries);
    assert_eq!(
        events(&entries),
        ["created", "assigned", "status_changed"],
        "{entries:?}"
    );
    assert_entry(
        &entries[0],
        json!({ "to_operator_id": first, "reason": "creation" }),
    );
    assert_entry(
        &entries[1],
        json!({
            "from_operator_id": first,
            "to_operator_id": second,
            "reason": "manual",
            "api_key_id": mover,
        }),
    );
    assert_entry(
        &entries[2],
        json!({
            "from_status": "active",
            "to_status": "closed",
            "reason": "manual",
            "api_key_id": closer,
        }),
    );

    // The assignment the mover's request set off is automatic: no key.
    let (status, entries) = call_with_key(
        &app,
        Some(&reader_token),
        Method::GET,
        &format!("/contacts/{waiting}/history"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{entries}");
    let entries = entries.as_array().unwrap().clone();
    assert_well_formed(waiting, &entries);
    assert_eq!(events(&entries), ["created", "assigned"], "{entries:?}");
    assert_entry(
        &entries[1],
        json!({
            "to_operator_id": first,
            "reason": "queue",
            "api_key_id": null,
        }),
    );
});
