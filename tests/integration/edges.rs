//! No rough edges for any client: a 413 that a client sending its whole body first can read, explicit nulls
//! refused by name, numbers read exactly, rate limits answered 429 with `Retry-After`, and an OpenAPI document
//! that says whether keys are required.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{TestApp, assert_unprocessable, call_with_key, create_key};
use reqwest::header::RETRY_AFTER;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const FIVE_MIB: usize = 5 * 1024 * 1024;

/// Writes `head` and then `body` on a fresh connection, all of it before reading anything (as Python's
/// `requests` and `urllib` do), then reads the answer until the server closes or `Content-Length` is read.
fn send_whole_then_read(address: &str, head: &str, body: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(head.as_bytes()).expect("head sent");
    stream
        .write_all(body)
        .expect("the whole body is sent: the server reads it rather than resetting the connection");
    read_answer(&mut stream)
}

/// Reads one HTTP answer: its head, and as much body as its `Content-Length` says.
fn read_answer(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).expect("the answer is read");
        if read == 0 {
            break;
        }
        received.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&received);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// Runs blocking socket code off the test's runtime, which also runs the server.
async fn blocking<T: Send + 'static>(
    address: String,
    run: impl FnOnce(String) -> T + Send + 'static,
) -> T {
    tokio::task::spawn_blocking(move || run(address))
        .await
        .expect("the blocking client finished")
}

fn address(app: &TestApp) -> String {
    app.url("").trim_start_matches("http://").to_owned()
}

fn post_head(path: &str, length: usize, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: leadrouter\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n{extra}\r\n"
    )
}

/// A JSON object of about `size` bytes.
fn big_operator(size: usize) -> Vec<u8> {
    json!({ "name": "x".repeat(size) }).to_string().into_bytes()
}

backend_test!(
    a_client_that_sends_5_mib_before_reading_reads_the_413,
    |app| {
        let body = big_operator(FIVE_MIB);
        let head = post_head("/operators/", body.len(), "");
        let answer = blocking(address(&app), move |address| {
            send_whole_then_read(&address, &head, &body)
        })
        .await;
        println!("5 MiB POST /operators/ without Expect, whole body sent first:\n{answer}");
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        let detail: Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(
            detail["detail"],
            "The request body is larger than the limit of 1048576 bytes"
        );

        // reqwest, which does not wait for `100 Continue` either, reads it too.
        let response = app
            .client
            .post(app.url("/contacts/"))
            .header("content-type", "application/json")
            .body(big_operator(FIVE_MIB))
            .send()
            .await
            .expect("the 413 is read, not a broken pipe");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let detail: Value = response.json().await.unwrap();
        assert!(detail["detail"].as_str().unwrap().contains("larger than"));
        assert_eq!(
            app.get_ok("/operators/").await,
            json!([]),
            "nothing created"
        );
    }
);

backend_test!(a_connection_serves_again_after_a_413, |app| {
    blocking(address(&app), same_connection_after_a_413).await;
});

fn same_connection_after_a_413(address: String) {
    let body = big_operator(2 * 1024 * 1024);
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
        .write_all(post_head("/operators/", body.len(), "").as_bytes())
        .unwrap();
    stream.write_all(&body).unwrap();
    let first = read_answer(&mut stream);
    assert!(first.starts_with("HTTP/1.1 413"), "{first}");
    // The body was read to its end, so the same connection takes the next request.
    stream
        .write_all(b"GET /operators/ HTTP/1.1\r\nHost: leadrouter\r\n\r\n")
        .unwrap();
    let second = read_answer(&mut stream);
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert!(second.ends_with("[]"), "{second}");
}

backend_test!(
    a_client_that_waits_for_100_continue_is_answered_before_sending,
    |app| {
        blocking(address(&app), answered_before_sending).await;
    }
);

fn answered_before_sending(address: String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let head = post_head("/operators/", FIVE_MIB, "Expect: 100-continue\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let answer = read_answer(&mut stream);
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "no 100 Continue: {answer}"
    );
    assert!(answer.contains("larger than the limit"), "{answer}");
}

backend_test!(an_explicit_null_is_refused_naming_the_field, |app| {
    for (body, field) in [
        (json!({ "name": "Анна", "max_load": null }), "max_load"),
        (json!({ "name": "Анна", "is_active": null }), "is_active"),
    ] {
        let answer = app.post("/operators/", body.clone()).await;
        assert_unprocessable(&answer, &body.to_string());
        let detail = answer.1["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("{field}: may not be null")),
            "{detail}"
        );
    }
    assert_eq!(
        app.get_ok("/operators/").await,
        json!([]),
        "nothing created"
    );

    let source = app.source("Telegram Bot").await;
    let operator = app.operator("Анна", 5).await;
    let answer = app
        .post(
            &format!("/sources/{source}/operators"),
            json!({ "operator_id": operator, "weight": null }),
        )
        .await;
    assert_unprocessable(&answer, "weight null");
    assert!(
        answer.1["detail"]
            .as_str()
            .unwrap()
            .contains("weight: may not be null")
    );
    let detail = app.get_ok(&format!("/sources/{source}")).await;
    assert_eq!(
        detail["operator_weights"],
        json!([]),
        "no link made: {detail}"
    );

    let contact = app.contact_through(source).await;
    let answer = app
        .patch(
            &format!("/contacts/{}", contact["id"]),
            json!({ "operator_id": operator, "force": null }),
        )
        .await;
    assert_unprocessable(&answer, "force null");
    assert!(answer.1["detail"].as_str().unwrap().contains("force:"));

    // Where PATCH gives null a meaning (keep the value), it still has it.
    let kept = app
        .patch_ok(
            &format!("/operators/{operator}"),
            json!({ "max_load": null }),
        )
        .await;
    assert_eq!(kept["max_load"], 5);
});

backend_test!(whole_numbers_written_as_floats_are_read_exactly, |app| {
    let source = app.source("Telegram Bot").await;
    // Read as a nearby double without `float_roundtrip`: -2251799813685247.2, not a whole number (422).
    let answer = app
        .post(
            &format!("/sources/{source}/operators"),
            json!({ "operator_id": -2251799813685247.0 }),
        )
        .await;
    assert_eq!(answer.0, StatusCode::NOT_FOUND, "{}", answer.1);
    let operator = app
        .post_ok("/operators/", json!({ "name": "Анна", "max_load": 3.0 }))
        .await;
    assert_eq!(operator["max_load"], 3);
});

backend_test!(
    ingest_is_limited_per_key,
    config = |config: &mut leadrouter::Config| {
        // One request an hour after a burst of two: no token comes back while the test runs.
        config.ingest_rate = 1.0 / 3600.0;
        config.ingest_burst = Some(2);
    },
    |app| {
        let (source, _) = app.source_with_operator("Анна", 10).await;
        let before = rate_limited_count(&app, "ingest").await;
        let bot = create_key(&app, "ingest", "telegram-bot");
        let other_bot = create_key(&app, "ingest", "whatsapp-bot");
        let admin = create_key(&app, "admin", "admin");
        let contact = json!({ "source_id": source, "lead_external_id": "ivan" });
        for _ in 0..2 {
            let (status, body) = call_with_key(
                &app,
                Some(&bot),
                Method::POST,
                "/contacts/",
                Some(contact.clone()),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let response = app
            .client
            .post(app.url("/contacts/"))
            .bearer_auth(&bot)
            .json(&contact)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = response.headers()[RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=3600).contains(&retry_after), "{retry_after}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains("rate limit"),
            "{body}"
        );

        // Another key has a budget of its own, and the other requests are not ingest's.
        let (status, _) = call_with_key(
            &app,
            Some(&other_bot),
            Method::POST,
            "/contacts/",
            Some(contact),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, contacts) =
            call_with_key(&app, Some(&admin), Method::GET, "/contacts/", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            contacts.as_array().unwrap().len(),
            3,
            "the refused one is not stored"
        );

        let after = rate_limited_count(&app, "ingest").await;
        assert!(after > before, "counted in /metrics: {before} → {after}");
    }
);

backend_test!(
    the_open_api_is_limited_per_client_address,
    config = |config: &mut leadrouter::Config| {
        config.api_rate = 1.0 / 3600.0;
        config.api_burst = Some(3);
    },
    |app| {
        for _ in 0..3 {
            assert_eq!(app.get("/operators/").await.0, StatusCode::OK);
        }
        let (status, body) = app.get("/sources/").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert!(body["detail"].is_string());
        // Health and readiness are never limited: load balancers poll them.
        for _ in 0..5 {
            assert_eq!(app.get("/healthz").await.0, StatusCode::OK);
            assert_eq!(app.get("/readyz").await.0, StatusCode::OK);
        }
    }
);

/// `leadrouter_rate_limited_total{class}` as `/metrics` shows it now (0 before the first refusal), read with
/// a key of its own (the caller limits ingest only).
async fn rate_limited_count(app: &TestApp, class: &str) -> f64 {
    let admin = create_key(app, "admin", "metrics");
    let (status, text) = call_with_key(app, Some(&admin), Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap().to_owned();
    let series = format!("leadrouter_rate_limited_total{{class=\"{class}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

backend_test!(the_document_requires_keys_only_once_one_exists, |app| {
    let open = app.get_ok("/openapi.json").await;
    assert!(open.get("security").is_none(), "open API, open document");
    let operations = open["paths"]["/operators"].as_object().unwrap();
    assert!(
        operations
            .values()
            .all(|operation| operation.get("security").is_none())
    );
    // The links from a created resource to the operations on it.
    let links = &open["paths"]["/operators"]["post"]["responses"]["201"]["links"];
    assert_eq!(links["get_operator"]["operationId"], "get_operator");
    assert_eq!(
        links["get_operator"]["parameters"]["id"],
        "$response.body#/id"
    );
    assert_eq!(
        open["paths"]["/sources/{id}/operators"]["post"]["responses"]["201"]["links"]["update_weight"]
            ["parameters"],
        json!({ "id": "$request.path.id", "operator_id": "$response.body#/operator_id" })
    );

    create_key(&app, "read", "dashboard");
    let secured = app.get_ok("/openapi.json").await;
    assert_eq!(
        secured["security"],
        json!([{ "bearer": [] }, { "api_key": [] }])
    );
    assert_eq!(
        secured["paths"]["/healthz"]["get"]["security"],
        json!([{}]),
        "health stays public"
    );
    assert!(secured["components"]["securitySchemes"]["bearer"].is_object());
    assert!(
        secured["paths"]["/operators"]["get"]["responses"]["429"].is_object(),
        "rate limits are documented"
    );
});

backend_test!(
    a_body_without_a_declared_length_is_held_to_the_same_limit,
    |app| {
        blocking(address(&app), chunked_bodies).await;
        let operators = app.get_ok("/operators/").await;
        assert_eq!(
            operators.as_array().unwrap().len(),
            1,
            "the small one only: {operators}"
        );
    }
);

/// Sends `body` chunked, 64 KiB a chunk, and reads the answer.
fn send_chunked(address: &str, body: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let head = "POST /operators/ HTTP/1.1\r\nHost: leadrouter\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).unwrap();
    for chunk in body.chunks(64 * 1024) {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .unwrap();
        stream.write_all(chunk).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    read_answer(&mut stream)
}

fn chunked_bodies(address: String) {
    let answer = send_chunked(&address, &big_operator(2 * 1024 * 1024));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("larger than the limit"), "{answer}");
    let answer = send_chunked(&address, br#"{"name": "Anna"}"#);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
}
