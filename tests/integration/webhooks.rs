//! Webhooks: subscriptions (admin only), and the events they deliver — signed, retried until a receiver takes
//! them, given up after the configured attempts, recorded as deliveries with their attempts, and sent at least
//! once across instances. Receivers are [`common::receiver::Receiver`]s: HTTP servers of the test.

use crate::common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use common::receiver::{DEADLINE, Received, Receiver, signature_valid};
use common::{
    TestApp, assert_unprocessable, call_with_key as call_with, create_key, field_names, id_of,
    poll_until,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ALL_EVENTS: [&str; 4] = [
    "contact.created",
    "contact.assigned",
    "contact.unassigned",
    "contact.status_changed",
];

fn is_timestamp(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

/// A webhook's body for POST /webhooks.
fn webhook_body(url: &str, events: &[&str], secret: Option<&str>) -> Value {
    let mut body = json!({ "url": url, "events": events });
    if let Some(secret) = secret {
        body["secret"] = json!(secret);
    }
    body
}

/// Creates a webhook, expects 201, and returns it.
async fn create_webhook(app: &TestApp, url: &str, events: &[&str], secret: Option<&str>) -> Value {
    let (status, webhook) = app
        .post("/webhooks", webhook_body(url, events, secret))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{webhook}");
    webhook
}

/// The sorted event types of a webhook.
fn events_of(webhook: &Value) -> BTreeSet<String> {
    webhook["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events array: {webhook}"))
        .iter()
        .map(|event| event.as_str().expect("an event type").to_owned())
        .collect()
}

fn set_of(events: &[&str]) -> BTreeSet<String> {
    events.iter().map(|event| (*event).to_owned()).collect()
}

/// GET /webhooks/{id}/deliveries (all of them, newest first).
async fn deliveries(app: &TestApp, webhook_id: i64) -> Vec<Value> {
    let (status, list) = app
        .get(&format!("/webhooks/{webhook_id}/deliveries?limit=1000"))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .clone()
}

/// GET /webhooks/{id}/deliveries/{delivery_id}.
async fn delivery(app: &TestApp, webhook_id: i64, delivery_id: i64) -> Value {
    let (status, delivery) = app
        .get(&format!("/webhooks/{webhook_id}/deliveries/{delivery_id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{delivery}");
    delivery
}

/// Polls the webhook's deliveries every 50 ms until `done` holds for them; panics with them at the deadline.
async fn deliveries_until(
    app: &TestApp,
    webhook_id: i64,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let list = poll_until(
        DEADLINE,
        Duration::from_millis(50),
        async || deliveries(app, webhook_id).await,
        |list| done(list),
    )
    .await;
    assert!(
        done(&list),
        "gave up waiting for {what}; the deliveries of webhook {webhook_id}: {list:#?}"
    );
    list
}

/// What a receiver got, one line per request, for a failure message.
fn summary(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| {
            format!(
                "{} {} event {:?} {:?} contact {:?} -> {}",
                r.method,
                r.path,
                r.event_id(),
                r.event_type(),
                r.contact_id(),
                r.status
            )
        })
        .collect()
}

/// Waits until `done` holds for what the receiver got; panics with what it got at the deadline.
async fn received_until(
    receiver: &Receiver,
    what: &str,
    done: impl Fn(&[Received]) -> bool,
) -> Vec<Received> {
    let received = receiver.wait_for(&done, DEADLINE).await;
    assert!(
        done(&received),
        "gave up waiting for {what}; received: {:#?}",
        summary(&received)
    );
    received
}

/// Whether the event `event_type` about the contact was received and answered 2xx.
fn got(received: &[Received], event_type: &str, contact_id: i64) -> bool {
    received
        .iter()
        .any(|r| r.ok() && r.is(event_type, contact_id))
}

/// Whether every (event type, contact) was received and answered 2xx.
fn got_all(received: &[Received], expected: &[(&str, i64)]) -> bool {
    expected
        .iter()
        .all(|(event_type, contact)| got(received, event_type, *contact))
}

/// The distinct event ids received, each with the (type, contact) it is about; panics if one id is seen
/// about two different things.
fn events_by_id(received: &[Received]) -> HashMap<i64, (String, i64)> {
    let mut events = HashMap::new();
    for r in received {
        let id = r
            .event_id()
            .unwrap_or_else(|| panic!("no event id: {:?}", r.json));
        let about = (
            r.event_type().expect("an event type").to_owned(),
            r.contact_id().expect("a contact id"),
        );
        let before = events.insert(id, about.clone());
        assert!(
            before.is_none() || before.as_ref() == Some(&about),
            "event id {id} is {before:?} and {about:?}"
        );
    }
    events
}

/// The first 2xx-answered request for the event `event_type` about the contact.
fn first<'a>(received: &'a [Received], event_type: &str, contact_id: i64) -> &'a Received {
    received
        .iter()
        .find(|r| r.ok() && r.is(event_type, contact_id))
        .unwrap_or_else(|| panic!("no {event_type} for contact {contact_id} received"))
}

/// A delivery that failed its `attempts` attempts without an answer (no status code, an error each time).
fn assert_failed_unanswered(detail: &Value, attempts: usize) {
    assert_eq!(detail["attempt_count"], attempts, "{detail}");
    assert!(detail["last_status_code"].is_null(), "{detail}");
    assert!(
        detail["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{detail}"
    );
    let logged = detail["attempts"].as_array().expect("attempts");
    assert_eq!(logged.len(), attempts, "{detail}");
    for attempt in logged {
        assert!(attempt["status_code"].is_null(), "{detail}");
        assert!(
            attempt["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{detail}"
        );
    }
}

/// A URL nothing listens on: a port the system just gave out and took back.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/hook")
}

// ---------------------------------------------------------------------------------------------------------------
// Subscriptions

backend_test!(a_webhook_is_created_listed_fetched_and_deleted, |app| {
    let secret = "a-secret-of-this-test-0123";
    let (status, created) = app
        .post(
            "/webhooks",
            webhook_body(
                "https://crm.example.com/hooks/leadrouter?token=abc",
                &["contact.created", "contact.assigned"],
                Some(secret),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        field_names(&created),
        ["created_at", "events", "id", "secret", "url"]
    );
    assert!(created["id"].is_i64(), "{created}");
    assert_eq!(
        created["url"],
        "https://crm.example.com/hooks/leadrouter?token=abc"
    );
    assert_eq!(
        events_of(&created),
        set_of(&["contact.created", "contact.assigned"])
    );
    assert!(is_timestamp(&created["created_at"]), "{created}");
    assert_eq!(created["secret"], secret, "a given secret is echoed");

    // Without a secret, one is generated: whsec_ and 64 hex digits, different every time.
    let generated = create_webhook(&app, "http://127.0.0.1:9/hook", &ALL_EVENTS, None).await;
    let other = create_webhook(
        &app,
        "http://127.0.0.1:9/other",
        &["contact.status_changed"],
        None,
    )
    .await;
    for webhook in [&generated, &other] {
        let secret = webhook["secret"]
            .as_str()
            .unwrap_or_else(|| panic!("no secret: {webhook}"));
        let hex = secret
            .strip_prefix("whsec_")
            .unwrap_or_else(|| panic!("{secret}"));
        assert!(
            hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "{secret}"
        );
    }
    assert_ne!(generated["secret"], other["secret"]);
    assert_eq!(events_of(&generated), set_of(&ALL_EVENTS));

    // The secret is never shown again.
    let without_secret = |webhook: &Value| {
        let mut webhook = webhook.clone();
        webhook.as_object_mut().unwrap().remove("secret");
        webhook
    };
    let (status, list) = app.get("/webhooks").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let list = list.as_array().expect("an array").clone();
    assert_eq!(
        list.iter().map(id_of).collect::<BTreeSet<_>>(),
        [&created, &generated, &other]
            .into_iter()
            .map(id_of)
            .collect::<BTreeSet<_>>()
    );
    for listed in &list {
        assert_eq!(
            field_names(listed),
            ["created_at", "events", "id", "url"],
            "{listed}"
        );
    }
    for webhook in [&created, &generated, &other] {
        let id = id_of(webhook);
        let (status, fetched) = app.get(&format!("/webhooks/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{fetched}");
        assert_eq!(field_names(&fetched), ["created_at", "events", "id", "url"]);
        assert_eq!(fetched["id"], webhook["id"]);
        assert_eq!(fetched["url"], webhook["url"]);
        assert_eq!(fetched["created_at"], webhook["created_at"]);
        assert_eq!(events_of(&fetched), events_of(webhook));
        let listed = list.iter().find(|w| id_of(w) == id).unwrap();
        assert_eq!(without_secret(listed), without_secret(&fetched));
        assert!(
            !fetched
                .to_string()
                .contains(webhook["secret"].as_str().unwrap()),
            "the secret leaks: {fetched}"
        );
    }

    // Deleted: 204, then gone.
    let id = id_of(&generated);
    let (status, body) = app.delete(&format!("/webhooks/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = app.get(&format!("/webhooks/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    let (status, _) = app.delete(&format!("/webhooks/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app.get(&format!("/webhooks/{id}/deliveries")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let list = app.get_ok("/webhooks").await;
    assert_eq!(
        common::ids(&list).into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([id_of(&created), id_of(&other)])
    );

    // Unknown ids.
    for path in ["/webhooks/999999", "/webhooks/999999/deliveries"] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (status, _) = app.delete("/webhooks/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
});

backend_test!(duplicate_event_types_are_collapsed, |app| {
    let webhook = create_webhook(
        &app,
        "http://127.0.0.1:9/hook",
        &[
            "contact.created",
            "contact.status_changed",
            "contact.created",
            "contact.created",
        ],
        None,
    )
    .await;
    let events: Vec<&str> = webhook["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{webhook}");
    assert_eq!(
        events_of(&webhook),
        set_of(&["contact.created", "contact.status_changed"])
    );
    let fetched = app.get_ok(&format!("/webhooks/{}", id_of(&webhook))).await;
    assert_eq!(fetched["events"].as_array().unwrap().len(), 2, "{fetched}");
    assert_eq!(events_of(&fetched), events_of(&webhook));
});

backend_test!(an_invalid_webhook_is_refused_with_422, |app| {
    let events = json!(["contact.created"]);
    let long_url = format!("http://example.com/{}", "a".repeat(2049 - 19));
    assert_eq!(long_url.len(), 2049);
    let cases = [
        ("ftp url", json!({ "url": "ftp://x", "events": events })),
        (
            "a NUL in the url",
            json!({ "url": "http://example.com/a\u{0}b", "events": events }),
        ),
        (
            "credentials in the url",
            json!({ "url": "https://user:secret@example.com/hook", "events": events }),
        ),
        ("not a url", json!({ "url": "not a url", "events": events })),
        ("relative url", json!({ "url": "/hook", "events": events })),
        ("no host", json!({ "url": "http://", "events": events })),
        ("url not a string", json!({ "url": 42, "events": events })),
        ("missing url", json!({ "events": events })),
        (
            "url over 2048",
            json!({ "url": long_url, "events": events }),
        ),
        (
            "no events",
            json!({ "url": "http://example.com/h", "events": [] }),
        ),
        (
            "unknown event",
            json!({ "url": "http://example.com/h", "events": ["contact.nope"] }),
        ),
        (
            "a known and an unknown event",
            json!({ "url": "http://example.com/h", "events": ["contact.created", "contact.nope"] }),
        ),
        (
            "events not an array",
            json!({ "url": "http://example.com/h", "events": "contact.created" }),
        ),
        ("missing events", json!({ "url": "http://example.com/h" })),
        (
            "events of numbers",
            json!({ "url": "http://example.com/h", "events": [1] }),
        ),
        (
            "events null",
            json!({ "url": "http://example.com/h", "events": null }),
        ),
        (
            "secret a number",
            json!({ "url": "http://example.com/h", "events": events, "secret": 1234567890123456789_i64 }),
        ),
        (
            "secret of 5",
            json!({ "url": "http://example.com/h", "events": events, "secret": "abcde" }),
        ),
        (
            "secret of 15",
            json!({ "url": "http://example.com/h", "events": events, "secret": "a".repeat(15) }),
        ),
        (
            "a NUL in the secret",
            json!({ "url": "http://example.com/h", "events": events, "secret": "0123456789abcdef\u{0}" }),
        ),
        (
            "secret of 257",
            json!({ "url": "http://example.com/h", "events": events, "secret": "a".repeat(257) }),
        ),
        (
            "secret of 300",
            json!({ "url": "http://example.com/h", "events": events, "secret": "a".repeat(300) }),
        ),
        ("body not an object", json!(["http://example.com/h"])),
    ];
    for (what, body) in cases {
        let answer = app.post("/webhooks", body).await;
        assert_unprocessable(&answer, what);
    }
    let list = app.get_ok("/webhooks").await;
    assert_eq!(list, json!([]), "nothing was created");

    // The limits themselves are allowed.
    let at_limit = format!("https://example.com/{}", "a".repeat(2048 - 20));
    assert_eq!(at_limit.len(), 2048);
    for body in [
        json!({ "url": at_limit, "events": events }),
        json!({ "url": "http://example.com/h", "events": events, "secret": "a".repeat(16) }),
        json!({ "url": "http://example.com/h", "events": events, "secret": "b".repeat(256) }),
    ] {
        let (status, created) = app.post("/webhooks", body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}: {created}");
        assert_eq!(created["url"], body["url"]);
        if let Some(secret) = body.get("secret") {
            assert_eq!(&created["secret"], secret);
        }
    }
});

// ---------------------------------------------------------------------------------------------------------------
// Admin only

backend_test!(webhooks_are_for_admin_keys_only, |app| {
    let receiver = Receiver::start(0).await;
    let admin = create_key(&app, "admin", "ops");
    let read = create_key(&app, "read", "dashboard");
    let ingest = create_key(&app, "ingest", "bot");

    let (status, webhook) = call_with(
        &app,
        Some(&admin),
        Method::POST,
        "/webhooks",
        Some(webhook_body(&receiver.url(), &["contact.created"], None)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{webhook}");
    let webhook_id = id_of(&webhook);
    let (status, source) = call_with(
        &app,
        Some(&admin),
        Method::POST,
        "/sources/",
        Some(json!({ "name": "bot" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    let (status, contact) = call_with(
        &app,
        Some(&ingest),
        Method::POST,
        "/contacts/",
        Some(json!({ "source_id": id_of(&source) })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{contact}");
    let contact_id = id_of(&contact);
    received_until(&receiver, "the contact.created", |r| {
        got(r, "contact.created", contact_id)
    })
    .await;
    let (status, list) = call_with(
        &app,
        Some(&admin),
        Method::GET,
        &format!("/webhooks/{webhook_id}/deliveries"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let delivery_id = id_of(&list[0]);

    let body = webhook_body(&receiver.url(), &["contact.assigned"], None);
    let routes = [
        (Method::POST, "/webhooks".to_owned(), Some(body.clone())),
        (Method::GET, "/webhooks".to_owned(), None),
        (Method::GET, format!("/webhooks/{webhook_id}"), None),
        (
            Method::GET,
            format!("/webhooks/{webhook_id}/deliveries"),
            None,
        ),
        (
            Method::GET,
            format!("/webhooks/{webhook_id}/deliveries/{delivery_id}"),
            None,
        ),
        (
            Method::POST,
            format!("/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"),
            None,
        ),
        (Method::DELETE, format!("/webhooks/{webhook_id}"), None),
    ];
    for (method, path, body) in &routes {
        for (who, token, expected) in [
            ("no key", None, StatusCode::UNAUTHORIZED),
            ("read", Some(read.as_str()), StatusCode::FORBIDDEN),
            ("ingest", Some(ingest.as_str()), StatusCode::FORBIDDEN),
        ] {
            let (status, answer) = call_with(&app, token, method.clone(), path, body.clone()).await;
            assert_eq!(status, expected, "{who}: {method} {path}: {answer}");
            assert!(
                !answer.to_string().contains("whsec_"),
                "{who}: {method} {path}: {answer}"
            );
        }
    }

    // Nothing the refused requests asked for happened; admin does everything.
    let (status, list) = call_with(&app, Some(&admin), Method::GET, "/webhooks", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(common::ids(&list), [webhook_id]);
    let expected = [
        StatusCode::CREATED,
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::ACCEPTED,
        StatusCode::NO_CONTENT,
    ];
    for ((method, path, body), expected) in routes.iter().zip(expected) {
        let (status, answer) =
            call_with(&app, Some(&admin), method.clone(), path, body.clone()).await;
        if path.ends_with("/retry") {
            // Retrying a delivery that was delivered is not specified; it is allowed to admin keys all the same.
            assert!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                "admin: {method} {path}: {status} {answer}"
            );
        } else {
            assert_eq!(status, expected, "admin: {method} {path}: {answer}");
        }
    }
});

// ---------------------------------------------------------------------------------------------------------------
// Events

backend_test!(events_are_delivered_signed_and_recorded, |app| {
    // Another webhook gets every event first: delivery ids are then not event ids, and each webhook signs
    // with its own secret.
    let other = Receiver::start(0).await;
    let other_secret = "the-other-webhook-secret-0123";
    create_webhook(&app, &other.url(), &ALL_EVENTS, Some(other_secret)).await;
    let receiver = Receiver::start(0).await;
    let secret = "the-secret-of-this-test-0123456789";
    let webhook = create_webhook(&app, &receiver.url(), &ALL_EVENTS, Some(secret)).await;
    let webhook_id = id_of(&webhook);
    let (source, operator) = app.source_with_operator("Анна", 1).await;

    // A is routed; B waits; closing A frees the slot for B.
    let a = app
        .contact(json!({ "source_id": source, "lead_external_id": "lead-a" }))
        .await;
    assert_eq!(a["operator_id"], operator, "{a}");
    let b = app
        .contact(json!({ "source_id": source, "lead_external_id": "lead-b" }))
        .await;
    assert!(b["operator_id"].is_null(), "{b}");
    let (a, b) = (id_of(&a), id_of(&b));
    app.set_status(a, "closed").await;

    let expected = [
        ("contact.created", a),
        ("contact.assigned", a),
        ("contact.created", b),
        ("contact.status_changed", a),
        ("contact.assigned", b),
    ];
    let received = received_until(&receiver, "the five events", |r| got_all(r, &expected)).await;
    let received_by_other =
        received_until(&other, "the five events", |r| got_all(r, &expected)).await;
    for r in &received_by_other {
        let signature = r.header("x-leadrouter-signature").unwrap_or_default();
        assert!(
            signature_valid(other_secret, &r.body, signature),
            "{:?}",
            r.json
        );
        assert!(!signature_valid(secret, &r.body, signature), "{:?}", r.json);
    }

    // Every request: a POST of the event, signed, its headers naming it.
    for r in &received {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/hook");
        let content_type = r.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        let signature = r
            .header("x-leadrouter-signature")
            .unwrap_or_else(|| panic!("no signature: {:?}", r.headers));
        assert!(
            signature_valid(secret, &r.body, signature),
            "bad signature {signature} of {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            !signature_valid("some-other-secret-0123", &r.body, signature),
            "the signature does not depend on the secret"
        );
        assert_eq!(
            r.header("x-leadrouter-event"),
            r.event_type(),
            "{:?}",
            r.json
        );
        assert_eq!(
            r.header("x-leadrouter-event-id"),
            Some(r.event_id().expect("an event id").to_string().as_str()),
            "{:?}",
            r.json
        );
        assert!(
            r.header("x-leadrouter-delivery")
                .is_some_and(|d| d.parse::<i64>().is_ok()),
            "{:?}",
            r.headers
        );
        assert_eq!(
            field_names(&r.json),
            ["created_at", "data", "id", "type"],
            "{:?}",
            r.json
        );
        assert!(is_timestamp(&r.json["created_at"]), "{:?}", r.json);
        let contact = &r.json["data"]["contact"];
        assert!(
            contact.get("queue_position").is_some(),
            "the contact has queue_position: {contact}"
        );
        assert_eq!(
            r.json["data"]["change"]["contact_id"], contact["id"],
            "{:?}",
            r.json
        );
    }

    // Exactly these five events, each with an id of its own, the same for both webhooks.
    let events = events_by_id(&received);
    assert_eq!(events_by_id(&received_by_other), events);
    let about: HashSet<(String, i64)> = events.values().cloned().collect();
    let expected_about: HashSet<(String, i64)> = expected
        .iter()
        .map(|(event_type, contact)| ((*event_type).to_owned(), *contact))
        .collect();
    assert_eq!(about, expected_about, "{events:?}");
    assert_eq!(events.len(), 5, "one event id per event: {events:?}");

    // The contact as of each event, and the change.
    let history = |contact: i64| {
        let app = &app;
        async move {
            let (status, history) = app.get(&format!("/contacts/{contact}/history")).await;
            assert_eq!(status, StatusCode::OK, "{history}");
            history.as_array().expect("an array").clone()
        }
    };
    let (history_a, history_b) = (history(a).await, history(b).await);

    let event = &first(&received, "contact.created", a).json["data"];
    assert_eq!(event["contact"]["id"], a);
    assert_eq!(event["contact"]["status"], "active");
    assert_eq!(event["change"]["event"], "created");
    assert_eq!(event["change"]["reason"], "creation");
    assert_eq!(event["change"]["to_operator_id"], operator);
    assert_eq!(
        event["change"], history_a[0],
        "the change is A's first entry"
    );

    let event = &first(&received, "contact.assigned", a).json["data"];
    assert_eq!(event["contact"]["id"], a);
    assert_eq!(event["contact"]["operator_id"], operator);
    assert_eq!(event["contact"]["status"], "active");
    assert!(event["contact"]["queue_position"].is_null(), "{event}");
    assert_eq!(event["change"]["to_operator_id"], operator);

    let event = &first(&received, "contact.created", b).json["data"];
    assert_eq!(event["contact"]["id"], b);
    assert!(event["contact"]["operator_id"].is_null(), "{event}");
    assert_eq!(event["contact"]["queue_position"], 1, "{event}");
    assert_eq!(event["change"]["event"], "created");
    assert!(event["change"]["to_operator_id"].is_null(), "{event}");
    assert_eq!(
        event["change"], history_b[0],
        "the change is B's first entry"
    );

    let event = &first(&received, "contact.status_changed", a).json["data"];
    assert_eq!(event["contact"]["id"], a);
    assert_eq!(event["contact"]["status"], "closed");
    assert_eq!(event["contact"]["operator_id"], operator);
    assert_eq!(event["change"]["event"], "status_changed");
    assert_eq!(event["change"]["from_status"], "active");
    assert_eq!(event["change"]["to_status"], "closed");
    assert_eq!(event["change"]["reason"], "manual");
    assert!(
        history_a.contains(&event["change"]),
        "the change is in A's history: {} not in {history_a:?}",
        event["change"]
    );
    let now = app.get_ok(&format!("/contacts/{a}")).await;
    assert_eq!(event["contact"], now, "A has not changed since");

    let event = &first(&received, "contact.assigned", b).json["data"];
    assert_eq!(event["contact"]["id"], b);
    assert_eq!(event["contact"]["operator_id"], operator);
    assert!(event["contact"]["queue_position"].is_null(), "{event}");
    assert_eq!(event["change"]["event"], "assigned");
    assert_eq!(event["change"]["reason"], "queue");
    assert!(event["change"]["from_operator_id"].is_null(), "{event}");
    assert_eq!(event["change"]["to_operator_id"], operator);
    assert!(
        history_b.contains(&event["change"]),
        "the change is in B's history: {} not in {history_b:?}",
        event["change"]
    );
    let now = app.get_ok(&format!("/contacts/{b}")).await;
    assert_eq!(event["contact"], now, "B has not changed since");

    // The deliveries: one per event, newest first, all delivered.
    let list = deliveries_until(&app, webhook_id, "five delivered deliveries", |list| {
        list.len() >= 5 && list.iter().all(|d| d["state"] == "delivered")
    })
    .await;
    assert_eq!(list.len(), 5, "{list:#?}");
    let delivery_ids: Vec<i64> = list.iter().map(id_of).collect();
    assert!(
        delivery_ids.windows(2).all(|pair| pair[0] > pair[1]),
        "newest first: {delivery_ids:?}"
    );
    let delivered_events: HashSet<i64> = list
        .iter()
        .map(|d| d["event_id"].as_i64().expect("an event id"))
        .collect();
    assert_eq!(
        delivered_events,
        events.keys().copied().collect::<HashSet<_>>()
    );
    for listed in &list {
        assert_eq!(
            field_names(listed),
            [
                "attempt_count",
                "created_at",
                "delivered_at",
                "event_id",
                "event_type",
                "id",
                "last_error",
                "last_status_code",
                "next_attempt_at",
                "state",
                "webhook_id"
            ],
            "{listed}"
        );
        let event_id = listed["event_id"].as_i64().unwrap();
        assert_eq!(listed["webhook_id"], webhook_id);
        assert_eq!(listed["event_type"], events[&event_id].0.as_str());
        assert!(listed["attempt_count"].as_i64().unwrap() >= 1, "{listed}");
        assert!(is_timestamp(&listed["delivered_at"]), "{listed}");
        assert!(is_timestamp(&listed["created_at"]), "{listed}");
        assert_eq!(listed["last_status_code"], 200, "{listed}");

        // Every request for this event said which delivery it was.
        for r in received.iter().filter(|r| r.event_id() == Some(event_id)) {
            assert_eq!(
                r.header("x-leadrouter-delivery"),
                Some(id_of(listed).to_string().as_str())
            );
        }

        let detail = delivery(&app, webhook_id, id_of(listed)).await;
        for (key, value) in listed.as_object().unwrap() {
            assert_eq!(&detail[key], value, "{key}: {detail}");
        }
        let sent = received
            .iter()
            .find(|r| r.ok() && r.event_id() == Some(event_id))
            .unwrap();
        assert_eq!(detail["payload"], sent.json, "the payload is what was sent");
        let attempts = detail["attempts"].as_array().expect("attempts");
        assert_eq!(
            attempts.len() as i64,
            listed["attempt_count"].as_i64().unwrap(),
            "{detail}"
        );
        for (n, attempt) in attempts.iter().enumerate() {
            assert_eq!(attempt["attempt"], n as i64 + 1, "{detail}");
            assert!(is_timestamp(&attempt["at"]), "{detail}");
            assert!(
                attempt["duration_ms"].as_i64().is_some_and(|ms| ms >= 0),
                "{detail}"
            );
        }
        let last = attempts.last().unwrap();
        assert_eq!(last["status_code"], 200, "{detail}");
        assert!(last["error"].is_null(), "{detail}");
    }

    // Paging.
    let page = |query: &'static str| {
        let app = &app;
        async move {
            let (status, page) = app
                .get(&format!("/webhooks/{webhook_id}/deliveries?{query}"))
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {page}");
            common::ids(&page)
        }
    };
    assert_eq!(page("limit=2").await, delivery_ids[..2]);
    assert_eq!(page("skip=2&limit=2").await, delivery_ids[2..4]);
    assert_eq!(page("skip=4").await, delivery_ids[4..]);
    assert_eq!(page("skip=5").await, Vec::<i64>::new());

    // Unknown deliveries.
    let (status, _) = app
        .get(&format!("/webhooks/{webhook_id}/deliveries/999999"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/webhooks/{webhook_id}/deliveries/999999/retry"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
});

backend_test!(unassignment_and_manual_assignment_are_sent, |app| {
    let receiver = Receiver::start(0).await;
    create_webhook(&app, &receiver.url(), &ALL_EVENTS, None).await;
    let (source, first_operator) = app.source_with_operator("Анна", 1).await;
    let second_operator = app.operator("Борис", 5).await;
    let contact = id_of(&app.contact(json!({ "source_id": source })).await);

    // With the only linked operator inactive, an unassigned contact stays unassigned.
    app.change_operator(first_operator, json!({ "is_active": false }))
        .await;
    let (status, body) = app
        .patch(
            &format!("/contacts/{contact}"),
            json!({ "operator_id": null }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["operator_id"].is_null(), "{body}");
    let received = received_until(&receiver, "the manual unassignment", |r| {
        got(r, "contact.unassigned", contact)
    })
    .await;
    let event = &first(&received, "contact.unassigned", contact).json["data"];
    assert!(event["contact"]["operator_id"].is_null(), "{event}");
    assert_eq!(event["contact"]["queue_position"], 1, "{event}");
    assert_eq!(event["change"]["event"], "unassigned");
    assert_eq!(event["change"]["reason"], "manual");
    assert_eq!(event["change"]["from_operator_id"], first_operator);
    assert!(event["change"]["to_operator_id"].is_null(), "{event}");

    // Assigned by hand to an operator of no link, who is then deleted.
    let (status, body) = app
        .patch(
            &format!("/contacts/{contact}"),
            json!({ "operator_id": second_operator }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let received = received_until(&receiver, "the manual assignment", |r| {
        r.iter().any(|r| {
            r.ok()
                && r.is("contact.assigned", contact)
                && r.json["data"]["change"]["reason"] == "manual"
        })
    })
    .await;
    let event = &received
        .iter()
        .find(|r| {
            r.is("contact.assigned", contact) && r.json["data"]["change"]["reason"] == "manual"
        })
        .unwrap()
        .json["data"];
    assert_eq!(event["contact"]["operator_id"], second_operator, "{event}");
    assert!(event["change"]["from_operator_id"].is_null(), "{event}");
    assert_eq!(event["change"]["to_operator_id"], second_operator);

    let (status, body) = app.delete(&format!("/operators/{second_operator}")).await;
    assert!(status.is_success(), "{status}: {body}");
    let received = received_until(&receiver, "the unassignment by deletion", |r| {
        r.iter().any(|r| {
            r.ok()
                && r.is("contact.unassigned", contact)
                && r.json["data"]["change"]["reason"] == "operator_deleted"
        })
    })
    .await;
    let event = &received
        .iter()
        .find(|r| {
            r.is("contact.unassigned", contact)
                && r.json["data"]["change"]["reason"] == "operator_deleted"
        })
        .unwrap()
        .json["data"];
    assert!(event["contact"]["operator_id"].is_null(), "{event}");
    assert_eq!(event["change"]["from_operator_id"], second_operator);

    // Five events in all, each once.
    let events = events_by_id(&received);
    let mut kinds: Vec<&str> = events.values().map(|(t, _)| t.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "contact.assigned",
            "contact.assigned",
            "contact.created",
            "contact.unassigned",
            "contact.unassigned"
        ],
        "{events:?}"
    );
});

backend_test!(only_subscribed_events_are_sent, |app| {
    let filtered = Receiver::start(0).await;
    let witness = Receiver::start(0).await;
    let filtered_webhook =
        create_webhook(&app, &filtered.url(), &["contact.status_changed"], None).await;
    let witness_webhook = create_webhook(&app, &witness.url(), &ALL_EVENTS, None).await;
    let (source, _) = app.source_with_operator("Анна", 5).await;
    let contact = id_of(&app.contact(json!({ "source_id": source })).await);
    received_until(&witness, "the creation events", |r| {
        got_all(
            r,
            &[("contact.created", contact), ("contact.assigned", contact)],
        )
    })
    .await;

    app.set_status(contact, "closed").await;
    received_until(&filtered, "the status change", |r| {
        got(r, "contact.status_changed", contact)
    })
    .await;
    received_until(&witness, "the status change", |r| {
        got(r, "contact.status_changed", contact)
    })
    .await;

    let received = filtered.received();
    assert!(
        received
            .iter()
            .all(|r| r.event_type() == Some("contact.status_changed")),
        "{:#?}",
        summary(&received)
    );
    let list = deliveries(&app, id_of(&filtered_webhook)).await;
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0]["event_type"], "contact.status_changed");

    // A delivery is found only under its own webhook.
    let witness_list = deliveries(&app, id_of(&witness_webhook)).await;
    assert_eq!(witness_list.len(), 3, "{witness_list:#?}");
    let (status, body) = app
        .get(&format!(
            "/webhooks/{}/deliveries/{}",
            id_of(&filtered_webhook),
            id_of(&witness_list[0])
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
});

backend_test!(an_idempotent_replay_sends_no_second_creation, |app| {
    let receiver = Receiver::start(0).await;
    create_webhook(&app, &receiver.url(), &["contact.created"], None).await;
    let source = app.source("bot").await;
    let post = |key: &'static str| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(app.url("/contacts/"))
                .header("Idempotency-Key", key)
                .json(&json!({ "source_id": source, "lead_external_id": "same" }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
            id_of(&response.json::<Value>().await.unwrap())
        }
    };
    let first_id = post("retry-1").await;
    assert_eq!(post("retry-1").await, first_id, "a replay");
    // A later contact's event: the replay's would be sent by then.
    let marker = id_of(&app.contact(json!({ "source_id": source })).await);
    let received = received_until(&receiver, "both creations", |r| {
        got(r, "contact.created", first_id) && got(r, "contact.created", marker)
    })
    .await;
    let ids: HashSet<i64> = received
        .iter()
        .filter(|r| r.is("contact.created", first_id))
        .filter_map(Received::event_id)
        .collect();
    assert_eq!(ids.len(), 1, "{:#?}", summary(&received));
});

// ---------------------------------------------------------------------------------------------------------------
// Failures and retries

backend_test!(a_failing_receiver_gets_everything_once_it_recovers, |app| {
    let receiver = Receiver::start(3).await;
    let webhook = create_webhook(&app, &receiver.url(), &["contact.created"], None).await;
    let webhook_id = id_of(&webhook);
    let source = app.source("bot").await;
    let first_contact = id_of(&app.contact(json!({ "source_id": source })).await);
    let second_contact = id_of(&app.contact(json!({ "source_id": source })).await);

    let received = received_until(&receiver, "both creations, answered 200", |r| {
        got_all(
            r,
            &[
                ("contact.created", first_contact),
                ("contact.created", second_contact),
            ],
        )
    })
    .await;
    assert_eq!(
        received.iter().filter(|r| !r.ok()).count(),
        3,
        "the receiver failed its first three requests"
    );

    let list = deliveries_until(&app, webhook_id, "both delivered", |list| {
        list.len() == 2 && list.iter().all(|d| d["state"] == "delivered")
    })
    .await;
    assert!(
        list.iter()
            .any(|d| d["attempt_count"].as_i64().unwrap() >= 2),
        "{list:#?}"
    );
    let mut failures_logged = 0;
    for listed in &list {
        let detail = delivery(&app, webhook_id, id_of(listed)).await;
        let attempts = detail["attempts"].as_array().expect("attempts");
        assert_eq!(
            attempts.len() as i64,
            detail["attempt_count"].as_i64().unwrap(),
            "{detail}"
        );
        let (last, before) = attempts.split_last().expect("an attempt");
        assert_eq!(last["status_code"], 200, "{detail}");
        for attempt in before {
            assert_eq!(attempt["status_code"], 500, "{detail}");
        }
        assert_eq!(detail["last_status_code"], 200, "{detail}");
        failures_logged += before.len();
    }
    assert_eq!(
        failures_logged, 3,
        "every failed attempt is in the log: {list:#?}"
    );
});

async fn gives_up_after_max_attempts(app: TestApp) {
    let receiver = Receiver::start(0).await;
    receiver.set_failing(true);
    let failing = id_of(&create_webhook(&app, &receiver.url(), &["contact.created"], None).await);
    let unreachable =
        id_of(&create_webhook(&app, &closed_port_url(), &["contact.created"], None).await);
    let source = app.source("bot").await;
    let contact = id_of(&app.contact(json!({ "source_id": source })).await);

    let failed = |list: &[Value]| list.len() == 1 && list[0]["state"] == "failed";
    let listed = deliveries_until(&app, failing, "the delivery to fail", failed).await;
    let delivery_id = id_of(&listed[0]);
    let detail = delivery(&app, failing, delivery_id).await;
    assert_eq!(detail["attempt_count"], 2, "{detail}");
    assert_eq!(detail["last_status_code"], 500, "{detail}");
    assert!(detail["delivered_at"].is_null(), "{detail}");
    let attempts = detail["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2, "{detail}");
    assert!(attempts.iter().all(|a| a["status_code"] == 500), "{detail}");
    assert_eq!(
        receiver.received().len(),
        2,
        "{:#?}",
        summary(&receiver.received())
    );
    assert!(
        receiver
            .received()
            .iter()
            .all(|r| r.is("contact.created", contact))
    );

    let listed = deliveries_until(&app, unreachable, "the unreachable one to fail", failed).await;
    let detail = delivery(&app, unreachable, id_of(&listed[0])).await;
    assert_failed_unanswered(&detail, 2);

    // Retried by hand once the receiver is fixed.
    receiver.set_failing(false);
    let (status, retried) = app
        .call(
            Method::POST,
            &format!("/webhooks/{failing}/deliveries/{delivery_id}/retry"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{retried}");
    assert_eq!(id_of(&retried), delivery_id);
    assert_eq!(retried["state"], "pending", "{retried}");
    let listed = deliveries_until(&app, failing, "the retried delivery", |list| {
        list.len() == 1 && list[0]["state"] == "delivered"
    })
    .await;
    assert!(is_timestamp(&listed[0]["delivered_at"]), "{listed:?}");
    let detail = delivery(&app, failing, delivery_id).await;
    let attempts = detail["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 3, "{detail}");
    assert_eq!(detail["attempt_count"], 3, "{detail}");
    assert_eq!(attempts[2]["status_code"], 200, "{detail}");
    assert!(got(&receiver.received(), "contact.created", contact));
}

backend_test!(
    gives_up_after_the_configured_attempts_and_can_be_retried,
    config = |c| c.webhook_max_attempts = 2,
    |app| { gives_up_after_max_attempts(app).await }
);

async fn a_slow_receiver_times_out(app: TestApp) {
    let receiver = Receiver::start(0).await;
    receiver.set_delay(Duration::from_secs(30));
    let webhook = id_of(&create_webhook(&app, &receiver.url(), &["contact.created"], None).await);
    let source = app.source("bot").await;
    let contact = id_of(&app.contact(json!({ "source_id": source })).await);

    let listed = deliveries_until(&app, webhook, "the delivery to fail", |list| {
        list.len() == 1 && list[0]["state"] == "failed"
    })
    .await;
    let detail = delivery(&app, webhook, id_of(&listed[0])).await;
    assert_failed_unanswered(&detail, 2);
    let received = receiver.received();
    assert_eq!(received.len(), 2, "{:#?}", summary(&received));
    assert!(received.iter().all(|r| r.is("contact.created", contact)));
}

backend_test!(
    a_receiver_that_does_not_answer_in_time_fails_the_attempt,
    config = |c| {
        c.webhook_timeout_secs = 1;
        c.webhook_max_attempts = 2;
    },
    |app| { a_slow_receiver_times_out(app).await }
);

backend_test!(a_deleted_webhook_gets_nothing_more, |app| {
    let deleted = Receiver::start(0).await;
    let witness = Receiver::start(0).await;
    deleted.set_failing(true);
    witness.set_failing(true);
    let deleted_webhook = id_of(&create_webhook(&app, &deleted.url(), &ALL_EVENTS, None).await);
    create_webhook(&app, &witness.url(), &ALL_EVENTS, None).await;
    let source = app.source("bot").await;

    // Both keep failing at the first contact's event, which is pending for both when one is deleted.
    let first_contact = id_of(&app.contact(json!({ "source_id": source })).await);
    let tried_twice = |r: &[Received]| {
        r.iter()
            .filter(|r| r.is("contact.created", first_contact))
            .count()
            >= 2
    };
    received_until(&deleted, "two attempts", tried_twice).await;
    received_until(&witness, "two attempts", tried_twice).await;
    let (status, body) = app.delete(&format!("/webhooks/{deleted_webhook}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let at_deletion = deleted.received().len();

    // The witness is retried twice more; the deleted one's pending delivery was dropped (one attempt may have
    // been under way when it was deleted).
    let witness_before = witness.received().len();
    received_until(&witness, "two more attempts", |r| {
        r.len() >= witness_before + 2
    })
    .await;
    witness.set_failing(false);

    // A new contact's event goes to the witness only.
    let second_contact = id_of(&app.contact(json!({ "source_id": source })).await);
    received_until(&witness, "both events, delivered", |r| {
        got_all(
            r,
            &[
                ("contact.created", first_contact),
                ("contact.created", second_contact),
            ],
        )
    })
    .await;
    let received = deleted.received();
    assert!(
        received
            .iter()
            .all(|r| r.contact_id() == Some(first_contact)),
        "the deleted webhook got a later event: {:#?}",
        summary(&received)
    );
    assert!(
        received.len() <= at_deletion + 1,
        "the deleted webhook's pending delivery went on: {} requests at deletion, then {:#?}",
        at_deletion,
        summary(&received)
    );
});

backend_test!(a_redirect_is_not_followed, |app| {
    let elsewhere = Receiver::start(0).await;
    let redirecting = Receiver::start(0).await;
    redirecting.redirect_to(Some(elsewhere.url()));
    let webhook =
        id_of(&create_webhook(&app, &redirecting.url(), &["contact.created"], None).await);
    let source = app.source("bot").await;
    app.contact(json!({ "source_id": source })).await;

    let list = deliveries_until(&app, webhook, "two attempts", |list| {
        list.len() == 1 && list[0]["attempt_count"].as_i64().unwrap_or(0) >= 2
    })
    .await;
    assert_ne!(list[0]["state"], "delivered", "{list:?}");
    assert_eq!(list[0]["last_status_code"], 302, "{list:?}");
    let detail = delivery(&app, webhook, id_of(&list[0])).await;
    let attempts = detail["attempts"].as_array().expect("attempts");
    assert!(attempts.len() >= 2, "{detail}");
    assert!(attempts.iter().all(|a| a["status_code"] == 302), "{detail}");
    assert!(redirecting.received().len() >= 2);
    assert!(
        elsewhere.received().is_empty(),
        "the redirect was followed: {:#?}",
        summary(&elsewhere.received())
    );
});

// ---------------------------------------------------------------------------------------------------------------
// Several instances

/// Two instances on one PostgreSQL database: every event reaches the receiver, and every delivery ends
/// delivered, whichever instance wrote or sent it (duplicates allowed).
#[tokio::test]
async fn every_event_is_delivered_across_instances_postgres() {
    let Some(app) = TestApp::spawn_backend(common::Backend::Postgres).await else {
        return common::postgres_not_configured();
    };
    let (source, _) = app.source_with_operator("Анна", 100).await;
    // The second instance starts before any webhook exists, and the webhook is created through it.
    let second = common::start_server(&app.database.url).await;
    let instances = [
        app.base_url.clone(),
        format!("http://{}", second.local_addr()),
    ];
    let receiver = Receiver::start(0).await;
    let secret = "multi-instance-secret-0123";
    let response = app
        .client
        .post(format!("{}/webhooks", instances[1]))
        .json(&webhook_body(&receiver.url(), &ALL_EVENTS, Some(secret)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let webhook = id_of(&response.json::<Value>().await.unwrap());

    let mut contacts = Vec::new();
    for i in 0..20 {
        let response = app
            .client
            .post(format!("{}/contacts/", instances[i % 2]))
            .json(&json!({ "source_id": source, "lead_external_id": format!("lead-{i}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        contacts.push(id_of(&response.json::<Value>().await.unwrap()));
    }
    let expected: Vec<(&str, i64)> = contacts
        .iter()
        .flat_map(|&c| [("contact.created", c), ("contact.assigned", c)])
        .collect();
    let received = received_until(&receiver, "every event", |r| got_all(r, &expected)).await;
    for r in &received {
        assert!(
            signature_valid(
                secret,
                &r.body,
                r.header("x-leadrouter-signature").unwrap_or_default()
            ),
            "{:?}",
            r.json
        );
    }
    let events = events_by_id(&received);
    assert_eq!(events.len(), 40, "one event id per event: {events:?}");

    let list = deliveries_until(&app, webhook, "every delivery delivered", |list| {
        list.len() >= 40 && list.iter().all(|d| d["state"] == "delivered")
    })
    .await;
    assert_eq!(list.len(), 40, "one delivery per event");
    assert_eq!(
        list.iter()
            .map(|d| d["event_id"].as_i64().unwrap())
            .collect::<HashSet<_>>(),
        events.keys().copied().collect::<HashSet<_>>()
    );
    second.stop().await.expect("graceful stop");
}

// ---------------------------------------------------------------------------------------------------------------
// The test receiver itself

#[test]
fn the_signature_checker_is_hmac_sha256_in_lowercase_hex() {
    // RFC 4231, test case 2.
    let expected = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    assert!(signature_valid(
        "Jefe",
        b"what do ya want for nothing?",
        expected
    ));
    assert!(!signature_valid(
        "Jefe",
        b"what do ya want for nothing?",
        &expected.to_uppercase()
    ));
    assert!(!signature_valid(
        "Jefe",
        b"what do ya want for nothing!",
        expected
    ));
}

#[tokio::test]
async fn the_receiver_records_everything_and_fails_as_told() {
    let receiver = Receiver::start(2).await;
    let target = Receiver::start(0).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let send = |n: i64| {
        client
            .post(receiver.url())
            .header("X-Leadrouter-Event", "contact.created")
            .json(
                &json!({ "id": n, "type": "contact.created", "data": { "contact": { "id": 7 } } }),
            )
            .send()
    };
    let mut statuses = Vec::new();
    for n in 0..3 {
        statuses.push(send(n).await.unwrap().status().as_u16());
    }
    receiver.set_failing(true);
    statuses.push(send(3).await.unwrap().status().as_u16());
    receiver.set_failing(false);
    receiver.fail_next(1);
    statuses.push(send(4).await.unwrap().status().as_u16());
    statuses.push(send(5).await.unwrap().status().as_u16());
    receiver.redirect_to(Some(target.url()));
    let redirected = send(6).await.unwrap();
    assert_eq!(redirected.headers()["location"], target.url().as_str());
    statuses.push(redirected.status().as_u16());
    assert_eq!(statuses, [500, 500, 200, 500, 500, 200, 302]);

    let received = receiver
        .wait_for(|r| r.len() == 7, Duration::from_secs(1))
        .await;
    assert_eq!(
        received.iter().map(|r| r.status).collect::<Vec<_>>(),
        statuses
    );
    assert_eq!(
        received.iter().map(Received::ok).collect::<Vec<_>>(),
        [false, false, true, false, false, true, false]
    );
    let r = &received[2];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hook");
    assert_eq!(r.header("X-LEADROUTER-EVENT"), Some("contact.created"));
    assert_eq!(r.headers["x-leadrouter-event"], "contact.created");
    assert_eq!(r.event_id(), Some(2));
    assert!(r.is("contact.created", 7));
    assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap(), r.json);
    assert!(target.received().is_empty());
}
