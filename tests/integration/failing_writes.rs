//! A write that fails in the database fails alone: on SQLite the writer rolls back only its savepoint (or,
//! for the first write of a batch, which has none, the transaction that holds nothing else yet) and commits
//! the rest of the batch; on PostgreSQL the error is not mistaken for a conflict worth retrying.
//! Both answer it 500, and every other write sent alongside it is committed and answered 201. The fault is a
//! real database error, raised by a trigger the test installs behind the server's back.

use crate::common;

use common::{Backend, TestApp, id_of};
use futures::stream::{self, StreamExt};
use reqwest::StatusCode;
use serde_json::json;

const FAULTY_MESSAGE: &str = "trip the fault";

/// A trigger that refuses to insert a contact with [`FAULTY_MESSAGE`]. On PostgreSQL it raises a unique
/// violation that no concurrent transaction caused (no constraint of ours): a deterministic error that once
/// was retried eight times and answered 503.
async fn install_fault(app: &TestApp) {
    if app.database.is_postgres() {
        app.execute_sql(&format!(
            "CREATE FUNCTION injected_fault() RETURNS trigger AS $$ BEGIN \
             IF NEW.message = '{FAULTY_MESSAGE}' THEN RAISE EXCEPTION 'injected fault' USING ERRCODE = 'unique_violation'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql"
        ))
        .await;
        app.execute_sql(
            "CREATE TRIGGER injected_fault BEFORE INSERT ON contacts \
             FOR EACH ROW EXECUTE FUNCTION injected_fault()",
        )
        .await;
    } else {
        app.execute_sql(&format!(
            "CREATE TRIGGER injected_fault BEFORE INSERT ON contacts \
             WHEN NEW.message = '{FAULTY_MESSAGE}' BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
        ))
        .await;
    }
}

/// Posts `count` contacts to the source, `concurrency` at a time, those that `faulty` picks with
/// [`FAULTY_MESSAGE`]; answers each number with its status and body.
async fn post_contacts(
    app: &TestApp,
    source: i64,
    count: usize,
    concurrency: usize,
    faulty: impl Fn(usize) -> bool,
) -> Vec<(usize, StatusCode, serde_json::Value)> {
    stream::iter(0..count)
        .map(|n| {
            let message = if faulty(n) {
                FAULTY_MESSAGE.to_owned()
            } else {
                format!("hello {n}")
            };
            async move {
                let body = json!({ "source_id": source, "lead_external_id": format!("lead-{n}"), "message": message });
                let (status, answer) = app.post("/contacts/", body).await;
                (n, status, answer)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

backend_test!(a_failing_write_fails_alone_and_its_batch_commits, |app| {
    let (source, operator) = app.source_with_operator("Ann", 1000).await;
    install_fault(&app).await;

    // 200 contacts at 64 at a time: the SQLite writer takes them in batches, the faulty one among the rest.
    let faulty = 100;
    let answers = post_contacts(&app, source, 200, 64, |n| n == faulty).await;

    for (n, status, answer) in &answers {
        if *n == faulty {
            assert_eq!(*status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
            assert_eq!(answer["detail"], "Internal server error");
        } else {
            assert_eq!(*status, StatusCode::CREATED, "contact {n}: {answer}");
            assert_eq!(answer["operator_id"], operator);
        }
    }
    // Every acknowledged contact is there, with its history and its unit of load; nothing of the faulty one.
    let contacts = app
        .get_ok(&format!("/contacts/?source_id={source}&limit=1000"))
        .await;
    let stored = contacts.as_array().unwrap();
    assert_eq!(stored.len(), 199);
    assert!(stored.iter().all(|c| c["message"] != FAULTY_MESSAGE));
    for (_, _, answer) in answers.iter().filter(|(n, ..)| *n != faulty) {
        assert!(stored.iter().any(|c| id_of(c) == id_of(answer)));
    }
    assert_eq!(
        app.sql_number("SELECT COUNT(*) FROM contact_history").await,
        Some(199)
    );
    assert_eq!(
        app.sql_number(&format!(
            "SELECT active_load FROM operators WHERE id = {operator}"
        ))
        .await,
        Some(199)
    );
    assert_eq!(
        app.sql_number("SELECT COUNT(*) FROM leads WHERE external_id = 'lead-100'")
            .await,
        Some(0),
        "the faulty write's lead went with it"
    );
});

backend_test!(
    a_failing_write_is_answered_500_every_time_it_is_sent,
    |app| {
        let (source, _) = app.source_with_operator("Ann", 10).await;
        install_fault(&app).await;
        for _ in 0..3 {
            let (status, answer) = app
                .post(
                    "/contacts/",
                    json!({ "source_id": source, "message": FAULTY_MESSAGE }),
                )
                .await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
        }
        let (status, _) = app
            .post(
                "/contacts/",
                json!({ "source_id": source, "message": "fine" }),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "the writer goes on after a failure"
        );
        assert_eq!(
            app.sql_number("SELECT COUNT(*) FROM contacts").await,
            Some(1)
        );
    }
);

// Every other write fails: on SQLite many batches begin with one, which runs without a savepoint and is undone
// by rolling back the whole transaction, and the writes after it in the batch begin a new one.
backend_test!(
    failing_writes_first_in_their_batch_take_nothing_else_with_them,
    |app| {
        let (source, operator) = app.source_with_operator("Ann", 1000).await;
        install_fault(&app).await;
        let answers = post_contacts(&app, source, 128, 32, |n| n % 2 == 0).await;
        for (n, status, answer) in &answers {
            let expected = if n % 2 == 0 {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::CREATED
            };
            assert_eq!(*status, expected, "contact {n}: {answer}");
        }
        for (table, rows) in [("contacts", 64), ("contact_history", 64), ("leads", 64)] {
            let count = app
                .sql_number(&format!("SELECT COUNT(*) FROM {table}"))
                .await;
            assert_eq!(count, Some(rows), "{table}");
        }
        let load = format!("SELECT active_load FROM operators WHERE id = {operator}");
        assert_eq!(app.sql_number(&load).await, Some(64));
        let stats = app.get_ok(&format!("/stats/sources/{source}")).await;
        assert_eq!(stats["total_contacts"], 64, "{stats}");
    }
);

/// The operator each of `contacts` new contacts goes to, on a fresh database whose routing draws from `seed`.
async fn assignments(backend: Backend, seed: u64, contacts: usize) -> Option<Vec<i64>> {
    let app =
        TestApp::spawn_backend_with(backend, |config| config.routing_seed = Some(seed)).await?;
    let source = app.source("bot").await;
    for (name, weight) in [("Ann", 1.0), ("Bob", 2.0), ("Eve", 3.0)] {
        let operator = app.operator(name, 1000).await;
        app.link(source, operator, weight).await;
    }
    let mut chosen = Vec::with_capacity(contacts);
    for _ in 0..contacts {
        let contact = app.contact(json!({ "source_id": source })).await;
        chosen.push(
            contact["operator_id"]
                .as_i64()
                .expect("an operator is free"),
        );
    }
    Some(chosen)
}

async fn seeded_routing_repeats(backend: Backend) {
    let Some(first) = assignments(backend, 42, 60).await else {
        return common::postgres_not_configured();
    };
    let again = assignments(backend, 42, 60).await.unwrap();
    assert_eq!(first, again, "the same seed, the same assignments");
    let mut operators = first.clone();
    operators.sort_unstable();
    operators.dedup();
    assert_eq!(operators.len(), 3, "every operator is drawn: {first:?}");
    let other = assignments(backend, 43, 60).await.unwrap();
    assert_ne!(first, other, "another seed, other draws");
}

#[tokio::test]
async fn seeded_routing_gives_the_same_assignments_every_run_sqlite() {
    seeded_routing_repeats(Backend::Sqlite).await;
}

#[tokio::test]
async fn seeded_routing_gives_the_same_assignments_every_run_postgres() {
    seeded_routing_repeats(Backend::Postgres).await;
}
