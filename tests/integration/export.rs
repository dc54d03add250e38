//! CSV downloads (`Accept: text/csv`): the contacts list with the list's filters and a creation-time window,
//! streamed in chunks, and a source's stats; each the same rows as the JSON answer.

use crate::common;

use std::collections::HashMap;

use common::{TestApp, assert_unprocessable, create_key, create_operator_key, id_of, ids};
use futures::stream::{self, StreamExt};
use reqwest::header::{ACCEPT, CONTENT_DISPOSITION, CONTENT_TYPE, VARY};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A CSV answer: its status, headers and text.
struct Download {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Download {
    /// The rows under the header row, each a map from column to cell.
    fn rows(&self) -> Vec<HashMap<String, String>> {
        self.assert_status(StatusCode::OK);
        let mut reader = csv::Reader::from_reader(self.text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        reader
            .records()
            .map(|record| {
                let record = record.expect("a well-formed CSV row");
                header
                    .iter()
                    .cloned()
                    .zip(record.iter().map(str::to_owned))
                    .collect()
            })
            .collect()
    }

    fn assert_status(&self, expected: StatusCode) {
        assert_eq!(self.status, expected, "{}", self.text);
    }

    fn header_row(&self) -> &str {
        self.text.lines().next().unwrap_or_default()
    }

    fn header(&self, name: reqwest::header::HeaderName) -> &str {
        self.headers
            .get(&name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }
}

/// `GET path` with `Accept: text/csv`, with the token as a bearer token when given.
async fn download(app: &TestApp, token: Option<&str>, path: &str) -> Download {
    let mut request = app.client.get(app.url(path)).header(ACCEPT, "text/csv");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request sent");
    Download {
        status: response.status(),
        headers: response.headers().clone(),
        text: response.text().await.expect("the whole body"),
    }
}

/// The ids of the rows, in order.
fn row_ids(rows: &[HashMap<String, String>]) -> Vec<i64> {
    rows.iter().map(|row| row["id"].parse().unwrap()).collect()
}

/// A JSON value as its CSV cell: strings as they are, numbers as written, `null` empty.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

const CONTACT_HEADER: &str = "id,created_at,source_id,source_name,lead_id,lead_name,lead_phone,lead_email,\
                              lead_external_id,operator_id,operator_name,status,assigned_at,accepted_at,message";

backend_test!(csv_rows_are_the_json_list_for_the_same_filters, |app| {
    let source = app.source("Telegram").await;
    let other_source = app.source("WhatsApp").await;
    let anna = app.operator("Anna", 2).await;
    app.link(source, anna, 1.0).await;
    app.link(other_source, anna, 1.0).await;
    let first = app
        .contact(json!({"source_id": source, "lead_phone": "+79991234567", "lead_name": "Иван",
                        "lead_email": "ivan@example.com", "lead_external_id": "u1", "message": "hello"}))
        .await;
    let second = app
        .contact(json!({"source_id": other_source, "lead_external_id": "u2"}))
        .await;
    // Anna is full: these two wait.
    app.contact_through(source).await;
    app.contact(json!({"source_id": other_source, "lead_external_id": "u1"}))
        .await;
    app.set_status(id_of(&first), "closed").await;
    app.call_ok(
        Method::POST,
        &format!("/contacts/{}/accept", id_of(&second)),
        None,
    )
    .await;

    let whole = download(&app, None, "/contacts/").await;
    assert_eq!(whole.header(CONTENT_TYPE), "text/csv; charset=utf-8");
    assert_eq!(
        whole.header(CONTENT_DISPOSITION),
        "attachment; filename=\"contacts.csv\""
    );
    assert_eq!(whole.header(VARY), "accept");
    assert_eq!(whole.header_row(), CONTACT_HEADER);

    for filters in [
        "",
        &format!("?source_id={source}"),
        &format!("?source_id={other_source}&unassigned=true"),
        &format!("?operator_id={anna}"),
        "?unassigned=false&status=active",
        "?status=closed",
        &format!("?lead_id={}", first["lead_id"]),
        "?skip=1&limit=2",
        "?skip=3",
        "?limit=1",
    ] {
        let separator = if filters.is_empty() { "?" } else { "&" };
        let json_path = if filters.contains("limit") {
            format!("/contacts/{filters}")
        } else {
            format!("/contacts/{filters}{separator}limit=1000")
        };
        let listed = app.get_ok(&json_path).await;
        let rows = download(&app, None, &format!("/contacts/{filters}"))
            .await
            .rows();
        assert_eq!(row_ids(&rows), ids(&listed), "{filters}");
        for (row, contact) in rows.iter().zip(listed.as_array().unwrap()) {
            for (column, value) in [
                ("created_at", &contact["created_at"]),
                ("source_id", &contact["source_id"]),
                ("source_name", &contact["source"]["name"]),
                ("lead_id", &contact["lead_id"]),
                ("lead_name", &contact["lead"]["name"]),
                ("lead_phone", &contact["lead"]["phone"]),
                ("lead_email", &contact["lead"]["email"]),
                ("lead_external_id", &contact["lead"]["external_id"]),
                ("operator_id", &contact["operator_id"]),
                ("operator_name", &contact["operator"]["name"]),
                ("status", &contact["status"]),
                ("assigned_at", &contact["assigned_at"]),
                ("accepted_at", &contact["accepted_at"]),
                ("message", &contact["message"]),
            ] {
                assert_eq!(row[column], cell(value), "{filters}: {column} of {contact}");
            }
        }
    }
    // Something in every column somewhere, so that the comparison compared something.
    let rows = whole.rows();
    for column in CONTACT_HEADER.split(',') {
        assert!(
            rows.iter().any(|row| !row[column].is_empty()),
            "{column} is empty in every row: {}",
            whole.text
        );
    }

    // JSON stays the default: without Accept, for */*, and when both are as welcome.
    for accept in [None, Some("*/*"), Some("application/json, text/csv")] {
        let mut request = app.client.get(app.url("/contacts/"));
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(content_type, "application/json", "Accept {accept:?}");
        assert_eq!(response.headers()[VARY], "accept");
    }
});

backend_test!(since_and_until_select_contacts_by_creation_time, |app| {
    // Contacts take their creation time from the system clock: the window is set around the real times.
    let source = app.source("Telegram").await;
    let mut created = Vec::new();
    for _ in 0..4 {
        created.push(app.contact_through(source).await);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let at = |i: usize| created[i]["created_at"].as_str().unwrap().to_owned();
    let id = |i: usize| id_of(&created[i]);
    let cases = [
        (format!("since={}", at(1)), vec![id(3), id(2), id(1)]),
        (format!("until={}", at(2)), vec![id(1), id(0)]),
        (
            format!("since={}&until={}", at(1), at(3)),
            vec![id(2), id(1)],
        ),
        (format!("since={}&until={}", at(1), at(1)), vec![]),
        (format!("since={}&until={}", at(3), at(0)), vec![]),
        (format!("since={}&limit=1", at(0)), vec![id(3)]),
        (format!("since={}&skip=1", at(0)), vec![id(2), id(1), id(0)]),
        (format!("since={}&source_id={source}", at(3)), vec![id(3)]),
    ];
    for (query, expected) in cases {
        let listed = app.get_ok(&format!("/contacts/?{query}")).await;
        assert_eq!(ids(&listed), expected, "JSON ?{query}");
        let exported = download(&app, None, &format!("/contacts/?{query}")).await;
        assert_eq!(row_ids(&exported.rows()), expected, "CSV ?{query}");
        assert_eq!(exported.header_row(), CONTACT_HEADER);
    }

    // The same instant in another offset (its `+` sent as %2B) is the same bound.
    let utc = chrono::DateTime::parse_from_rfc3339(&at(2)).unwrap();
    let offset = chrono::FixedOffset::east_opt(3 * 3600).unwrap();
    let moscow = utc
        .with_timezone(&offset)
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
        .replace('+', "%2B");
    let listed = app.get_ok(&format!("/contacts/?since={moscow}")).await;
    assert_eq!(ids(&listed), vec![id(3), id(2)]);
    let exported = download(&app, None, &format!("/contacts/?since={moscow}")).await;
    assert_eq!(row_ids(&exported.rows()), vec![id(3), id(2)]);
});

backend_test!(a_bad_time_is_422_naming_its_parameter, |app| {
    for (query, parameter) in [
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("since=2026-11-25T00:00:00Z&until=soon", "until"),
    ] {
        let path = format!("/contacts/?{query}");
        let answer = app.get(&path).await;
        assert_unprocessable(&answer, &path);
        let detail = answer.1["detail"].as_str().unwrap();
        assert!(detail.starts_with(&format!("{parameter}: ")), "{detail}");

        let exported = download(&app, None, &path).await;
        assert_eq!(exported.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(exported.header(CONTENT_TYPE), "application/json");
        let body: Value = serde_json::from_str(&exported.text).unwrap();
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{parameter}: ")),
            "{body}"
        );
    }
    let exported = download(&app, None, "/contacts/?limit=1001").await;
    exported.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
});

backend_test!(commas_quotes_and_newlines_are_quoted, |app| {
    let source = app.source("Bot, \"the\" one").await;
    let message = "Hello, \"world\"\nsecond line\r\nthird; line";
    let contact = app
        .contact(json!({"source_id": source, "lead_name": "Doe, John", "message": message}))
        .await;
    let exported = download(&app, None, "/contacts/").await;
    assert!(
        exported
            .text
            .contains("\"Hello, \"\"world\"\"\nsecond line\r\nthird; line\""),
        "{}",
        exported.text
    );
    assert!(
        exported.text.contains(",\"Doe, John\","),
        "{}",
        exported.text
    );
    let rows = exported.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(row_ids(&rows), vec![id_of(&contact)]);
    assert_eq!(rows[0]["message"], message);
    assert_eq!(rows[0]["lead_name"], "Doe, John");
    assert_eq!(rows[0]["source_name"], "Bot, \"the\" one");
    // Each row ends with a line break, the last one too.
    assert!(exported.text.ends_with('\n'));
});

backend_test!(formula_cells_get_a_leading_quote, |app| {
    let source = app.source("=cmd|' /C calc'!A0").await;
    let operator = app.operator("@admin", 10).await;
    app.link(source, operator, 1.0).await;
    let cases = [
        ("=HYPERLINK(\"http://x\")", "+1 call me"),
        ("-2+3", "@SUM(A1:A9)"),
        ("Plain name", "\tindented"),
        ("Another", "\rreturn"),
        ("Safe = fine", "no formula - here"),
    ];
    for (i, (name, message)) in cases.iter().enumerate() {
        app.contact(
            json!({"source_id": source, "lead_name": name, "message": message,
                           "lead_phone": format!("+7 999 123-45-6{i}"),
                           "lead_email": format!("=x{i}@example.com")}),
        )
        .await;
    }
    let rows = download(&app, None, "/contacts/").await.rows();
    assert_eq!(rows.len(), cases.len());
    // Newest first: the last case is the first row.
    for (i, (name, message)) in cases.iter().enumerate() {
        let row = &rows[cases.len() - 1 - i];
        let guarded = |text: &str| match text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            true => format!("'{text}"),
            false => text.to_owned(),
        };
        assert_eq!(row["lead_name"], guarded(name));
        assert_eq!(row["message"], guarded(message));
        assert_eq!(row["source_name"], "'=cmd|' /C calc'!A0");
        assert_eq!(row["operator_name"], "'@admin");
        assert_eq!(row["lead_email"], format!("'=x{i}@example.com"));
        // A phone is E.164 (`+` and digits), which no spreadsheet reads as a formula: as it is.
        assert_eq!(row["lead_phone"], format!("+7999123456{i}"));
        // Numbers and times are never text to guard.
        assert!(!row["id"].starts_with('\''));
        assert!(!row["created_at"].starts_with('\''));
    }
    assert_eq!(rows[4]["lead_name"], "'=HYPERLINK(\"http://x\")");
    assert_eq!(rows[0]["message"], "no formula - here");
});

backend_test!(an_operator_key_exports_only_its_own_contacts, |app| {
    let source = app.source("Telegram").await;
    let anna = app.operator("Anna", 100).await;
    let boris = app.operator("Boris", 100).await;
    app.link(source, anna, 1.0).await;
    app.link(source, boris, 1.0).await;
    let contacts: Vec<Value> = stream::iter(0..20)
        .then(|_| app.contact_through(source))
        .collect()
        .await;
    let annas: Vec<i64> = contacts
        .iter()
        .rev()
        .filter(|c| c["operator_id"] == anna)
        .map(id_of)
        .collect();
    assert!(
        !annas.is_empty() && annas.len() < 20,
        "both operators got some"
    );
    app.contact(json!({"source_id": app.source("Idle").await}))
        .await;

    let (_, anna_key) = create_operator_key(&app, anna, "anna-phone");
    let admin = create_key(&app, "admin", "ops");
    let read = create_key(&app, "read", "dashboard");

    let exported = download(&app, Some(&anna_key), "/contacts/").await;
    assert_eq!(row_ids(&exported.rows()), annas);
    let listed =
        common::call_with_key_ok(&app, Some(&anna_key), Method::GET, "/contacts/", None).await;
    assert_eq!(ids(&listed), annas);
    let own = download(
        &app,
        Some(&anna_key),
        &format!("/contacts/?operator_id={anna}&status=active"),
    )
    .await;
    assert_eq!(row_ids(&own.rows()), annas);

    let others = download(
        &app,
        Some(&anna_key),
        &format!("/contacts/?operator_id={boris}"),
    )
    .await;
    others.assert_status(StatusCode::FORBIDDEN);
    assert!(others.text.contains("its own operator"), "{}", others.text);
    // Nor may it read any source's stats.
    let stats = download(&app, Some(&anna_key), &format!("/stats/sources/{source}")).await;
    stats.assert_status(StatusCode::FORBIDDEN);

    // A read key and an admin key export every contact; an ingest key none.
    for token in [&read, &admin] {
        let everything = download(&app, Some(token), "/contacts/").await.rows();
        assert_eq!(everything.len(), 21);
    }
    let ingest = create_key(&app, "ingest", "bot");
    let refused = download(&app, Some(&ingest), "/contacts/").await;
    refused.assert_status(StatusCode::FORBIDDEN);
    let anonymous = download(&app, None, "/contacts/").await;
    anonymous.assert_status(StatusCode::UNAUTHORIZED);
});

backend_test!(source_stats_csv_rows_match_the_json_distribution, |app| {
    let source = app.source("Telegram").await;
    let anna = app.operator("Anna", 3).await;
    let boris = app.operator("Boris", 100).await;
    let gone = app.operator("Gone", 100).await;
    app.link(source, anna, 10.0).await;
    app.link(source, boris, 30.0).await;
    app.link(source, gone, 1.0).await;
    for _ in 0..12 {
        app.contact_through(source).await;
    }
    // A deleted operator holds no contacts any more and is linked nowhere: only the fairness names them.
    app.delete_ok(&format!("/operators/{gone}")).await;
    app.change_operator(anna, json!({"is_active": false})).await;
    app.change_operator(boris, json!({"is_active": false}))
        .await;
    app.contact_through(source).await;

    let path = format!("/stats/sources/{source}");
    let stats = app.get_ok(&path).await;
    let exported = download(&app, None, &path).await;
    assert_eq!(exported.header(CONTENT_TYPE), "text/csv; charset=utf-8");
    assert_eq!(
        exported.header(CONTENT_DISPOSITION),
        format!("attachment; filename=\"source-{source}-stats.csv\"")
    );
    assert_eq!(
        exported.header_row(),
        "operator_id,operator_name,count,active_count,weight,target_share,actual_share,\
         fairness_assignments,fairness_expected,fairness_target_share,fairness_actual_share,\
         fairness_deviation_pp"
    );
    let rows = exported.rows();
    let distribution = stats["operator_distribution"].as_array().unwrap();
    let fairness = stats["fairness"]["operators"].as_array().unwrap();
    // A row per operator of the distribution or of the fairness (the deleted one is only there), by id, then
    // the unassigned contacts' row.
    let mut operators: Vec<i64> = distribution
        .iter()
        .chain(fairness)
        .filter_map(|o| o["operator_id"].as_i64())
        .collect();
    operators.sort_unstable();
    operators.dedup();
    assert!(operators.contains(&gone), "{stats}");
    let written: Vec<String> = rows.iter().map(|row| row["operator_id"].clone()).collect();
    let expected: Vec<String> = operators
        .iter()
        .map(i64::to_string)
        .chain([String::new()])
        .collect();
    assert_eq!(written, expected, "{}", exported.text);
    for row in &rows {
        let id: Option<i64> = row["operator_id"].parse().ok();
        let share = distribution
            .iter()
            .find(|s| s["operator_id"].as_i64() == id);
        let fair = fairness
            .iter()
            .find(|f| id.is_some() && f["operator_id"].as_i64() == id);
        let name = share
            .map(|s| &s["operator_name"])
            .or(fair.map(|f| &f["operator_name"]));
        assert_eq!(row["operator_name"], name.map(cell).unwrap_or_default());
        let columns = [
            ("count", share, "count"),
            ("active_count", share, "active_count"),
            ("weight", share, "weight"),
            ("target_share", share, "target_share"),
            ("actual_share", share, "actual_share"),
            ("fairness_assignments", fair, "assignments"),
            ("fairness_expected", fair, "expected"),
            ("fairness_target_share", fair, "target_share"),
            ("fairness_actual_share", fair, "actual_share"),
            ("fairness_deviation_pp", fair, "deviation_pp"),
        ];
        for (column, source, field) in columns {
            let expected = source
                .and_then(|s| s[field].as_f64())
                .map(|n| n.to_string())
                .unwrap_or_default();
            let written = row[column]
                .parse::<f64>()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| row[column].clone());
            assert_eq!(written, expected, "{column} of operator {id:?}: {stats}");
        }
    }

    // A window after every assignment: the same distribution, and no fairness (so no row for the deleted
    // operator either).
    let later = (chrono::Utc::now() + chrono::TimeDelta::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let windowed = download(&app, None, &format!("{path}?since={later}"))
        .await
        .rows();
    let in_distribution: Vec<_> = rows.iter().filter(|row| !row["count"].is_empty()).collect();
    assert_eq!(windowed.len(), in_distribution.len());
    assert_eq!(in_distribution.len(), distribution.len());
    for (row, before) in windowed.iter().zip(in_distribution) {
        assert_eq!(row["operator_id"], before["operator_id"]);
        assert_eq!(row["count"], before["count"]);
        assert_eq!(row["fairness_assignments"], "");
    }
    let bad = download(&app, None, &format!("{path}?until=never")).await;
    bad.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("until: "), "{}", bad.text);
    let missing = download(&app, None, "/stats/sources/999").await;
    missing.assert_status(StatusCode::NOT_FOUND);
});

backend_test!(
    an_export_larger_than_a_chunk_arrives_whole_and_in_order,
    |app| {
        // Two contacts through the API, and between them 2,498 written straight into the database (posting
        // them all took half a minute): closed, so that no queue or load counter is concerned.
        let source = app.source("Telegram").await;
        let operator = app.operator("Anna", 10).await;
        app.link(source, operator, 1.0).await;
        let first = app
            .contact(json!({"source_id": source, "message": "message 0"}))
            .await;
        let lead = first["lead_id"].as_i64().unwrap();
        let bulk = 2_498;
        let (with, created_at, numbers) = if app.database.is_postgres() {
            (
                String::new(),
                "now()",
                format!("generate_series(1, {bulk}) AS i"),
            )
        } else {
            let with = format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {bulk}) "
            );
            (with, "'2026-01-01T00:00:00Z'", "n".to_owned())
        };
        app.execute_sql(&format!(
            "{with}INSERT INTO contacts (lead_id, source_id, status, message, created_at) \
             SELECT {lead}, {source}, 'closed', 'message ' || CAST(i AS TEXT), {created_at} \
             FROM {numbers}"
        ))
        .await;
        let last = app
            .contact(json!({"source_id": source, "message": format!("message {}", bulk + 1)}))
            .await;
        let count = bulk as usize + 2;
        let (low, high) = (id_of(&first), id_of(&last));
        assert_eq!(high - low + 1, count as i64, "the ids are one run");
        let expected: Vec<i64> = (low..=high).rev().collect();

        let exported = download(&app, None, "/contacts/").await;
        let rows = exported.rows();
        assert_eq!(rows.len(), count);
        assert_eq!(row_ids(&rows), expected);
        assert_eq!(exported.text.matches(CONTACT_HEADER).count(), 1);
        // Every row whole: its message is the one its contact was written with.
        for row in &rows {
            let id: i64 = row["id"].parse().unwrap();
            assert_eq!(row["message"], format!("message {}", id - low));
            assert_eq!(row["source_name"], "Telegram");
        }
        // The first page of the JSON list is the first thousand rows.
        let page = app.get_ok("/contacts/?limit=1000").await;
        assert_eq!(ids(&page), expected[..1000]);
        // skip reaches across chunks; limit stops within one.
        let skipped = download(&app, None, "/contacts/?skip=1500").await.rows();
        assert_eq!(row_ids(&skipped), expected[1500..]);
        let window = download(&app, None, "/contacts/?skip=999&limit=2")
            .await
            .rows();
        assert_eq!(row_ids(&window), expected[999..1001]);
    }
);
