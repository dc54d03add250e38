//! Backups and the consistency check, through the `leadrouter` binary: `leadrouter backup PATH` copies a
//! SQLite database while a server writes to it, and `leadrouter check` verifies a database's invariants —
//! passing on a healthy one (after every kind of change), failing and naming the invariant on a corrupted
//! one.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Backend, TestApp, id_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_leadrouter");

/// Concurrent clients writing while the backups run.
const CLIENTS: usize = 16;
/// Backups taken one after the other during the writes.
const BACKUPS: usize = 4;
/// Contacts acknowledged before the first backup starts.
const WRITTEN_BEFORE_FIRST_BACKUP: usize = 300;
/// The most contacts one client posts, so that a client can never loop forever.
const MAX_CONTACTS_PER_CLIENT: usize = 5_000;

/// Runs `leadrouter ARGS` on the database and waits for it.
fn leadrouter(args: &[&str], database_url: &str) -> Output {
    Command::new(BINARY)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "off")
        .output()
        .expect("leadrouter runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `leadrouter check` on the database, expected to pass: its report.
fn check_passes(database_url: &str) -> String {
    let output = leadrouter(&["check"], database_url);
    let report = stdout(&output);
    assert!(
        output.status.success(),
        "check failed ({:?}):\n{report}{}",
        output.status,
        stderr(&output)
    );
    assert!(!report.contains("MISMATCH"), "{report}");
    report
}

/// `leadrouter check` on the database, expected to find exactly one broken invariant, `invariant`, with a
/// violation that mentions `detail`: its report.
fn check_finds(database_url: &str, invariant: &str, detail: &str) -> String {
    let output = leadrouter(&["check"], database_url);
    let report = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "check should exit 1:\n{report}{}",
        stderr(&output)
    );
    let mismatches: Vec<&str> = report
        .lines()
        .filter(|line| line.starts_with("MISMATCH"))
        .collect();
    assert_eq!(mismatches.len(), 1, "{report}");
    assert!(
        mismatches[0].starts_with(&format!("MISMATCH {invariant}: ")),
        "{report}"
    );
    assert!(report.contains(detail), "no {detail:?} in:\n{report}");
    report
}

/// The number after `what` in `text` ("…, contacts 123.").
fn number_after(text: &str, what: &str) -> i64 {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .find(|pair| pair[0] == what)
        .and_then(|pair| pair[1].trim_end_matches(['.', ',']).parse().ok())
        .unwrap_or_else(|| panic!("no number of {what} in {text:?}"))
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// The message every contact carries, so that the database has some size to copy.
fn message(client_no: usize, n: usize) -> String {
    format!(
        "contact {n} of client {client_no}: {}",
        "lorem ipsum ".repeat(200)
    )
}

/// Posts contacts (a lead phone shared with other clients now and then) and closes every third, until `stop`.
async fn write_until_stopped(
    client: reqwest::Client,
    base: String,
    source: i64,
    client_no: usize,
    acknowledged: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    for n in 0..MAX_CONTACTS_PER_CLIENT {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let mut body = json!({
            "source_id": source,
            "lead_external_id": format!("backup-{client_no}-{n}"),
            "message": message(client_no, n),
        });
        if n % 4 == 0 {
            body["lead_phone"] = json!(format!("+7999200{:04}", (client_no * 31 + n) % 97));
        }
        let response = client
            .post(format!("{base}/contacts/"))
            .json(&body)
            .send()
            .await
            .expect("POST /contacts/");
        assert_eq!(response.status(), StatusCode::CREATED);
        let contact: Value = response.json().await.expect("a contact");
        acknowledged.fetch_add(1, Ordering::SeqCst);
        if n % 3 == 0 {
            let response = client
                .patch(format!("{base}/contacts/{}/status", id_of(&contact)))
                .json(&json!({ "status": "closed" }))
                .send()
                .await
                .expect("PATCH /contacts/{id}/status");
            assert_eq!(response.status(), StatusCode::OK);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_taken_under_concurrent_writes_are_consistent_databases() {
    let app = TestApp::spawn_backend(Backend::Sqlite).await.unwrap();
    let source = app.source("load").await;
    let mut operators = Vec::new();
    for (name, max_load, weight) in [("a", 40, 1.0), ("b", 80, 2.0), ("c", 120, 3.0)] {
        let operator = app.operator(name, max_load).await;
        app.link(source, operator, weight).await;
        operators.push(operator);
    }
    let dir = tempfile::tempdir().unwrap();

    let acknowledged = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..CLIENTS)
        .map(|client_no| {
            tokio::spawn(write_until_stopped(
                app.client.clone(),
                app.base_url.clone(),
                source,
                client_no,
                acknowledged.clone(),
                stop.clone(),
            ))
        })
        .collect();
    while acknowledged.load(Ordering::SeqCst) < WRITTEN_BEFORE_FIRST_BACKUP {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // (path, acknowledged when the backup started, when it ended, what it printed)
    let mut backups = Vec::new();
    for n in 0..BACKUPS {
        let path = dir.path().join(format!("backup-{n}.db"));
        let before = acknowledged.load(Ordering::SeqCst);
        let (url, target) = (app.database.url.clone(), path.clone());
        let output = tokio::task::spawn_blocking(move || {
            leadrouter(&["backup", target.to_str().unwrap()], &url)
        })
        .await
        .unwrap();
        let after = acknowledged.load(Ordering::SeqCst);
        assert!(
            output.status.success(),
            "backup {n}: {}{}",
            stdout(&output),
            stderr(&output)
        );
        backups.push((path, before, after, stdout(&output)));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.expect("a writer panicked");
    }
    let stats = app.get_ok(&format!("/stats/sources/{source}")).await;
    let total = stats["total_contacts"].as_i64().unwrap();
    println!("{total} contacts written in all, by {CLIENTS} clients");

    let mut written_during_backups = 0;
    let mut previous_copy = 0;
    for (n, (path, before, after, printed)) in backups.iter().enumerate() {
        let copied = number_after(printed, "contacts");
        written_during_backups += after - before;
        println!(
            "backup {n}: {before} contacts acknowledged when it started, {after} when it ended ({} written \
             during it); the copy holds {copied} contacts",
            after - before
        );
        // Everything acknowledged before the backup started is in the copy; nothing the server had not yet
        // committed when the backup ended is (a client has at most one contact under way).
        assert!(*before as i64 <= copied, "{printed}");
        assert!(copied <= (*after + CLIENTS) as i64, "{printed}");
        assert!(copied <= total, "{printed}");
        assert!(copied >= previous_copy, "the copies go forward in time");
        previous_copy = copied;
        assert_eq!(number_after(printed, "operators"), 3, "{printed}");
        assert_eq!(number_after(printed, "sources"), 1, "{printed}");

        let url = sqlite_url(path);
        let report = check_passes(&url);
        assert!(
            report.contains(&format!("ok history current: {copied} contacts")),
            "{report}"
        );

        // The copy is a leadrouter database: a server starts on it and answers from it.
        let server = common::start_server(&url).await;
        let base = format!("http://{}", server.local_addr());
        let listed: Value = reqwest::get(format!("{base}/operators/"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let listed: Vec<i64> = listed.as_array().unwrap().iter().map(id_of).collect();
        assert_eq!(listed, operators);
        let copy_stats: Value = reqwest::get(format!("{base}/stats/sources/{source}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(copy_stats["total_contacts"], copied, "{copy_stats}");
        server.stop().await.unwrap();
    }
    assert!(
        written_during_backups > 0,
        "no write was acknowledged while a backup ran"
    );

    // The live database passes too, with its server still running.
    let report = check_passes(&app.database.url);
    println!("check of the live database:\n{report}");
    assert!(report.contains(&format!("ok history current: {total} contacts")));
}

#[tokio::test]
async fn backup_refuses_an_existing_path_and_a_missing_database() {
    let app = TestApp::spawn_backend(Backend::Sqlite).await.unwrap();
    app.source("bot").await;
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("taken.db");
    std::fs::write(&existing, "keep me").unwrap();

    let output = leadrouter(&["backup", existing.to_str().unwrap()], &app.database.url);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("already exists"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");

    let missing = dir.path().join("missing.db");
    let copy = dir.path().join("copy.db");
    let output = leadrouter(&["backup", copy.to_str().unwrap()], &sqlite_url(&missing));
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no database"),
        "{}",
        stderr(&output)
    );
    assert!(
        !missing.exists(),
        "the backup created the database it was to copy"
    );
    assert!(!copy.exists());

    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(left, ["taken.db"], "only the file that was there is left");
}

#[test]
fn backup_of_a_postgres_database_says_to_use_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.dump");
    let url =
        common::postgres_url().unwrap_or("postgres://postgres@127.0.0.1:5432/test".to_owned());

    let output = leadrouter(&["backup", path.to_str().unwrap()], &url);

    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("pg_dump --format=custom --file="),
        "{message}"
    );
    assert!(message.contains("pg_restore"), "{message}");
    assert!(!path.exists());
}

#[test]
fn check_of_a_missing_database_fails_without_creating_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");

    let output = leadrouter(&["check"], &sqlite_url(&missing));

    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no database"),
        "{}",
        stderr(&output)
    );
    assert!(!missing.exists());
}

backend_test!(
    check_passes_after_every_kind_of_change_the_api_makes,
    |app| {
        let source = app.source("bot").await;
        let a = app.operator("a", 2).await;
        app.link(source, a, 1.0).await;
        // One lead, written two ways: c0 and c1 go to a, c2 and c3 wait.
        let mut c = Vec::new();
        for n in 0..4 {
            let phone = ["8 999 111-22-33", "+7 (999) 111-22-33"][n % 2];
            let body = json!({ "source_id": source, "lead_phone": phone, "lead_email": "Ivan@Example.com" });
            c.push(id_of(&app.contact(body).await));
        }
        // Closing c0 hands its slot to c2 (from the queue); reopened, c0 takes a past max_load.
        app.set_status(c[0], "closed").await;
        app.set_status(c[0], "active").await;
        // A new operator takes c3 from the queue, then c1 by force, past their max_load.
        let b = app.operator("b", 1).await;
        app.link(source, b, 1.0).await;
        let (status, answer) = app
            .patch(
                &format!("/contacts/{}", c[1]),
                json!({ "operator_id": b, "force": true }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        // c2 taken from a by hand waits, and is drained back to a.
        app.assign_ok(c[2], Value::Null).await;
        app.set_status(c[3], "spam").await;
        // A second source, retired with a contact waiting in it.
        let retired = app.source("retired").await;
        app.link(retired, b, 2.0).await;
        app.contact_through(retired).await;
        app.delete_ok(&format!("/sources/{retired}")).await;
        // a deleted: c0 and c2 wait again, until a new operator takes them; whose max_load is then lowered.
        app.delete_ok(&format!("/operators/{a}")).await;
        let late = app.operator("late", 5).await;
        app.link(source, late, 1.0).await;
        assert_eq!(app.active_contacts(late).await.len(), 2);
        app.change_operator(late, json!({ "max_load": 1 })).await;
        // An idempotent replay creates nothing; the contact waits (everybody is full).
        for _ in 0..2 {
            let response = app
                .client
                .post(app.url("/contacts/"))
                .header("Idempotency-Key", "once")
                .json(&json!({ "source_id": source }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
        }

        let report = check_passes(&app.database.url);

        println!("{report}");
        for invariant in [
            "schema",
            "operator load",
            "contact counts",
            "lead identity",
            "history chain",
            "history current",
            "retired sources",
            "queue",
        ] {
            assert!(
                report
                    .lines()
                    .any(|line| line.starts_with(&format!("ok {invariant}: "))),
                "{invariant} is not ok:\n{report}"
            );
        }
        assert!(
            report.contains("ok retired sources: 1 retired sources"),
            "{report}"
        );
        assert!(
            report.contains("note max_load: 1 of 2 operators"),
            "{report}"
        );
        if !app.database.is_postgres() {
            assert!(report.contains("ok sqlite integrity: "), "{report}");
            assert!(report.contains("ok references: "), "{report}");
        }
    }
);

backend_test!(
    check_exits_1_and_names_the_invariant_a_corruption_breaks,
    |app| {
        let (source, operator) = app.source_with_operator("o", 10).await;
        let mut contacts = Vec::new();
        for _ in 0..3 {
            contacts.push(id_of(&app.contact_through(source).await));
        }
        let closed = contacts[2];
        app.set_status(closed, "closed").await;
        let retired = app.source("retired").await;
        app.delete_ok(&format!("/sources/{retired}")).await;
        let url = app.database.url.clone();
        check_passes(&url);

        let latest = format!("(SELECT MAX(id) FROM contact_history WHERE contact_id = {closed})");
        // (corruption, its undoing, the invariant it breaks, what the violation says)
        let corruptions = [
            (
                format!("UPDATE operators SET active_load = active_load + 1 WHERE id = {operator}"),
                format!("UPDATE operators SET active_load = active_load - 1 WHERE id = {operator}"),
                "operator load",
                format!("operator {operator}: active_load 3, active contacts 2"),
            ),
            (
                format!(
                    "UPDATE contact_counts SET contacts = contacts + 5 \
                     WHERE source_id = {source} AND operator_id = {operator} AND status = 'closed'"
                ),
                format!(
                    "UPDATE contact_counts SET contacts = contacts - 5 \
                     WHERE source_id = {source} AND operator_id = {operator} AND status = 'closed'"
                ),
                "contact counts",
                format!(
                    "source {source}, operator {operator}, status closed: contact_counts says 6, contacts 1"
                ),
            ),
            (
                format!("UPDATE contact_history SET to_status = 'lost' WHERE id = {latest}"),
                format!("UPDATE contact_history SET to_status = 'closed' WHERE id = {latest}"),
                "history current",
                format!(
                    "contact {closed}: has operator {operator}, closed, but its latest history entry"
                ),
            ),
            (
                format!("UPDATE contact_history SET from_operator_id = NULL WHERE id = {latest}"),
                format!(
                    "UPDATE contact_history SET from_operator_id = {operator} WHERE id = {latest}"
                ),
                "history chain",
                format!(
                    "of contact {closed}: starts from no operator, active \
                     where the entry before left operator {operator}, active"
                ),
            ),
            (
                format!(
                    "INSERT INTO source_operator_weights (source_id, operator_id, weight) \
                     VALUES ({retired}, {operator}, 1)"
                ),
                format!("DELETE FROM source_operator_weights WHERE source_id = {retired}"),
                "retired sources",
                format!("source {retired} is retired but still weighs operator {operator}"),
            ),
            (
                "UPDATE _sqlx_migrations SET version = 99 WHERE version = 4".to_owned(),
                "UPDATE _sqlx_migrations SET version = 4 WHERE version = 99".to_owned(),
                "schema",
                "migration 4 is not applied".to_owned(),
            ),
        ];
        for (corruption, undoing, invariant, detail) in corruptions {
            app.execute_sql(&corruption).await;
            let report = check_finds(&url, invariant, &detail);
            println!("after {corruption}:\n{report}");
            app.execute_sql(&undoing).await;
        }
        if !app.database.is_postgres() {
            // Written with foreign keys off, as the sqlite3 shell writes.
            let orphan = "PRAGMA foreign_keys = OFF; INSERT INTO contact_history \
                 (id, contact_id, at, event, to_status, reason) \
                 VALUES (1000000, 999999, '2026-01-01T00:00:00Z', 'created', 'active', 'creation')";
            app.execute_sql(orphan).await;
            check_finds(
                &url,
                "references",
                "contact_history row 1000000 refers to a missing row of contacts",
            );
            app.execute_sql("DELETE FROM contact_history WHERE id = 1000000")
                .await;
        }
        check_passes(&url);

        // The load counter is also changed by the API afterwards: the check still agrees with it.
        let (status, _) = app
            .call(
                Method::PATCH,
                &format!("/contacts/{}/status?status=closed", contacts[0]),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        check_passes(&url);
    }
);
