//! The test harness: the real server on 127.0.0.1:0 over a fresh database, and an HTTP client for it.
//!
//! Each test is written once with [`backend_test!`] and runs twice: `name::sqlite` on a fresh SQLite file, and
//! `name::postgres` on a fresh schema of the PostgreSQL database named by `LEADROUTER_TEST_POSTGRES_URL`
//! (skipped, with a line on stderr, when that is not set; failed when it is not set under CI: see
//! [`postgres_not_configured`]).
#![allow(dead_code)]

pub mod receiver;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use leadrouter::domain::Clock;
use leadrouter::{Config, Server};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

pub const POSTGRES_URL_VAR: &str = "LEADROUTER_TEST_POSTGRES_URL";

/// Defines a test that runs on both backends: `backend_test!(name, |app| { … })` makes the tests
/// `name::sqlite` and `name::postgres`, each handing a fresh [`TestApp`] to the body.
/// `backend_test!(name, config = |c| { … }, |app| { … })` first changes the server's configuration.
/// `backend_test!(name, clock = START, |app, clock| { … })` gives the server a manual clock showing `START`
/// (a `DateTime<Utc>`), which the body moves (`clock.set(…)`, `clock.advance(…)`).
#[macro_export]
macro_rules! backend_test {
    ($name:ident, clock = $start:expr, |$app:ident, $clock:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: common::TestApp, $clock: leadrouter::domain::Clock) $body

            async fn spawn(backend: common::Backend) -> Option<(common::TestApp, leadrouter::domain::Clock)> {
                let clock = leadrouter::domain::Clock::manual($start);
                let app = common::TestApp::spawn_backend_with_clock(backend, clock.clone()).await?;
                Some((app, clock))
            }

            #[tokio::test]
            async fn sqlite() {
                let (app, clock) = spawn(common::Backend::Sqlite).await.unwrap();
                run(app, clock).await
            }

            #[tokio::test]
            async fn postgres() {
                match spawn(common::Backend::Postgres).await {
                    Some((app, clock)) => run(app, clock).await,
                    None => common::postgres_not_configured(),
                }
            }
        }
    };
    ($name:ident, |$app:ident| $body:block) => {
        backend_test!($name, config = |_: &mut leadrouter::Config| {}, |$app| $body);
    };
    ($name:ident, config = $adjust:expr, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: common::TestApp) $body

            #[tokio::test]
            async fn sqlite() {
                let app = common::TestApp::spawn_backend_with(common::Backend::Sqlite, $adjust).await;
                run(app.unwrap()).await
            }

            #[tokio::test]
            async fn postgres() {
                match common::TestApp::spawn_backend_with(common::Backend::Postgres, $adjust).await {
                    Some(app) => run(app).await,
                    None => common::postgres_not_configured(),
                }
            }
        }
    };
}

/// A test that fills its database before any server starts on it (an upgrade from an older schema, say):
/// `$body` gets a fresh, empty [`TestDatabase`] of each backend, and starts the server itself.
#[allow(unused_macros)] // the integration tests' only
macro_rules! database_test {
    ($name:ident, |$database:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($database: common::TestDatabase) $body

            #[tokio::test]
            async fn sqlite() {
                run(common::TestDatabase::new(common::Backend::Sqlite).await.unwrap()).await
            }

            #[tokio::test]
            async fn postgres() {
                match common::TestDatabase::new(common::Backend::Postgres).await {
                    Some(database) => run(database).await,
                    None => common::postgres_not_configured(),
                }
            }
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the tests may use, if any.
pub fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|url| !url.is_empty())
}

/// Whether this is a CI run: `CI` is set (CI services set `CI=true`; `.ci/run` runs with it), and not to
/// `false` or `0`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.trim(), "" | "false" | "0"))
}

/// What a PostgreSQL test does when `LEADROUTER_TEST_POSTGRES_URL` is not set: locally it is skipped, with a
/// line on stderr; under CI it fails, so that a CI run that lost its database cannot pass on SQLite alone.
pub fn postgres_not_configured() {
    if in_ci() {
        panic!(
            "{POSTGRES_URL_VAR} is not set, and CI is: the PostgreSQL half of the tests must run under CI \
             (set {POSTGRES_URL_VAR}=postgres://postgres@127.0.0.1:5432/test, as .ci/run does)"
        );
    }
    eprintln!("skipped: {POSTGRES_URL_VAR} is not set");
}

/// Runs `$body` with `$connection` open on the test database, of whichever backend, and closes it after.
macro_rules! on_connection {
    ($database:expr, |$connection:ident| $body:block) => {
        if $database.is_postgres() {
            let mut $connection = sqlx::PgConnection::connect(&$database.url)
                .await
                .expect("connecting to the test schema");
            let value = $body;
            let _ = $connection.close().await;
            value
        } else {
            let mut $connection = sqlx::SqliteConnection::connect(&$database.url)
                .await
                .expect("opening the test database");
            let value = $body;
            let _ = $connection.close().await;
            value
        }
    };
}

/// A fresh, empty database for one test; the PostgreSQL schema is dropped when it goes.
pub struct TestDatabase {
    pub url: String,
    _dir: tempfile::TempDir,
    postgres_schema: Option<(String, String)>,
}

impl TestDatabase {
    /// A fresh database of the backend; `None` for PostgreSQL when no server is configured.
    pub async fn new(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temporary directory");
        match backend {
            Backend::Postgres => {
                let base = postgres_url()?;
                static NEXT: AtomicU64 = AtomicU64::new(0);
                let schema = format!(
                    "lr_test_{}_{}_{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed),
                    rand::random::<u32>()
                );
                let mut admin = sqlx::PgConnection::connect(&base)
                    .await
                    .expect("connecting to LEADROUTER_TEST_POSTGRES_URL");
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&mut admin)
                    .await
                    .expect("creating the test schema");
                let separator = if base.contains('?') { '&' } else { '?' };
                // Named after the schema, so that dropping it can end the sessions still on it.
                let url = format!(
                    "{base}{separator}options[search_path]={schema}&application_name={schema}"
                );
                Some(Self {
                    url,
                    _dir: dir,
                    postgres_schema: Some((base, schema)),
                })
            }
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Some(Self {
                    url,
                    _dir: dir,
                    postgres_schema: None,
                })
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres_schema.is_some()
    }

    /// Applies the migrations numbered below `version` (e.g. "0008"), as a database made by an earlier
    /// leadrouter would have them, so that a test can fill it and then start a server that upgrades it.
    pub async fn migrate_before(&self, version: &str) {
        let dialect = if self.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        };
        let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dialect);
        let earlier = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(&all).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if name.as_str() < version {
                std::fs::copy(&path, earlier.path().join(name)).unwrap();
            }
        }
        let migrator = sqlx::migrate::Migrator::new(earlier.path()).await.unwrap();
        if self.is_postgres() {
            let mut connection = sqlx::PgConnection::connect(&self.url).await.unwrap();
            migrator.run(&mut connection).await.unwrap();
        } else {
            let options: sqlx::sqlite::SqliteConnectOptions = self.url.parse().unwrap();
            let mut connection = sqlx::ConnectOptions::connect(&options.create_if_missing(true))
                .await
                .unwrap();
            migrator.run(&mut connection).await.unwrap();
        }
    }

    /// Runs one SQL statement on the database directly, behind the server's back (no trigger of the server's
    /// fires).
    pub async fn execute_sql(&self, statement: &str) {
        on_connection!(self, |connection| {
            sqlx::query(statement)
                .execute(&mut connection)
                .await
                .unwrap_or_else(|error| panic!("{statement}: {error}"));
        })
    }

    /// [`Self::execute_sql`] for a statement that may be refused: the database's error, as text.
    pub async fn try_execute_sql(&self, statement: &str) -> Result<(), String> {
        on_connection!(self, |connection| {
            sqlx::query(statement)
                .execute(&mut connection)
                .await
                .map(drop)
                .map_err(|error| error.to_string())
        })
    }

    /// Runs a query on the database directly, behind the server's back, and returns the first column of the
    /// first row it gives, if any.
    pub async fn sql_number(&self, statement: &str) -> Option<i64> {
        on_connection!(self, |connection| {
            sqlx::query_scalar(statement)
                .fetch_optional(&mut connection)
                .await
                .unwrap_or_else(|error| panic!("{statement}: {error}"))
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((base, schema)) = self.postgres_schema.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread of its own can.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&base).await.ok()?;
                // A server still running on the schema (this drop blocks its runtime) may be inside a
                // transaction that would never end, and DROP SCHEMA would wait for it forever.
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&schema)
                .execute(&mut admin)
                .await
                .ok()?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&mut admin)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// A running leadrouter and a client for it.
pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    pub database: TestDatabase,
    server: Option<Server>,
}

impl TestApp {
    pub async fn spawn_backend(backend: Backend) -> Option<Self> {
        Some(Self::spawn_on(TestDatabase::new(backend).await?).await)
    }

    pub async fn spawn_on(database: TestDatabase) -> Self {
        Self::spawn_on_with(database, |_| {}).await
    }

    /// A fresh database of the backend, and a server whose configuration `adjust` changes first; `None` for
    /// PostgreSQL when no server is configured.
    pub async fn spawn_backend_with(
        backend: Backend,
        adjust: impl FnOnce(&mut Config),
    ) -> Option<Self> {
        Some(Self::spawn_on_with(TestDatabase::new(backend).await?, adjust).await)
    }

    pub async fn spawn_on_with(database: TestDatabase, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_on_with_clock(database, adjust, Clock::System).await
    }

    /// A fresh database of the backend, and a server that takes every decision by time from `clock` (a
    /// [`Clock::manual`] the test moves).
    pub async fn spawn_backend_with_clock(backend: Backend, clock: Clock) -> Option<Self> {
        let database = TestDatabase::new(backend).await?;
        Some(Self::spawn_on_with_clock(database, |_| {}, clock).await)
    }

    pub async fn spawn_on_with_clock(
        database: TestDatabase,
        adjust: impl FnOnce(&mut Config),
        clock: Clock,
    ) -> Self {
        let mut config = test_config(&database.url);
        adjust(&mut config);
        let server = Server::start_with_clock(&config, clock)
            .await
            .expect("server starts");
        let base_url = format!("http://{}", server.local_addr());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        Self {
            base_url,
            client,
            database,
            server: Some(server),
        }
    }

    /// Stops the server gracefully (as SIGTERM would) and gives the database back, to start another on it.
    pub async fn stop(mut self) -> TestDatabase {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("graceful stop");
        }
        self.database
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Sends a request (with a JSON body when given) and returns the status and the parsed JSON body
    /// (`Value::Null` for an empty body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let bytes = response.bytes().await.expect("response body");
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "{status} body is not JSON: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// Sends a request, asserts that it succeeded (2xx) and returns the body.
    pub async fn call_ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(method.clone(), path, body).await;
        assert!(
            status.is_success(),
            "{method} {path}: expected a 2xx, got {status}: {answer}"
        );
        answer
    }

    /// `GET path`, expecting 200; returns the body.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, answer) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {answer}");
        answer
    }

    /// `POST path` with the body, expecting a 2xx (201 for what it creates); returns the answer.
    pub async fn post_ok(&self, path: &str, body: Value) -> Value {
        self.call_ok(Method::POST, path, Some(body)).await
    }

    /// `PATCH path` with the body, expecting a 2xx; returns the answer.
    pub async fn patch_ok(&self, path: &str, body: Value) -> Value {
        self.call_ok(Method::PATCH, path, Some(body)).await
    }

    /// `DELETE path`, expecting a 2xx (204).
    pub async fn delete_ok(&self, path: &str) {
        self.call_ok(Method::DELETE, path, None).await;
    }

    /// Runs one SQL statement on the app's database directly, behind the server's back.
    pub async fn execute_sql(&self, statement: &str) {
        self.database.execute_sql(statement).await
    }

    pub async fn try_execute_sql(&self, statement: &str) -> Result<(), String> {
        self.database.try_execute_sql(statement).await
    }

    /// The first column of the first row a query on the app's database gives, if any, behind the server's back.
    pub async fn sql_number(&self, statement: &str) -> Option<i64> {
        self.database.sql_number(statement).await
    }

    /// Creates an operator and returns its id.
    pub async fn operator(&self, name: &str, max_load: i64) -> i64 {
        let (status, body) = self
            .post("/operators/", json!({ "name": name, "max_load": max_load }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_i64().unwrap()
    }

    /// Creates a source and returns its id.
    pub async fn source(&self, name: &str) -> i64 {
        let (status, body) = self.post("/sources/", json!({ "name": name })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_i64().unwrap()
    }

    /// Creates a source with these fields besides its name (work rules, strategy) and returns its id.
    pub async fn source_with(&self, name: &str, fields: Value) -> i64 {
        let mut body = json!({ "name": name });
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let (status, source) = self.post("/sources/", body).await;
        assert_eq!(status, StatusCode::CREATED, "{source}");
        id_of(&source)
    }

    /// Links an operator to a source with a weight.
    pub async fn link(&self, source_id: i64, operator_id: i64, weight: f64) {
        let (status, body) = self
            .post(
                &format!("/sources/{source_id}/operators"),
                json!({ "operator_id": operator_id, "weight": weight }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// A source named "Telegram Bot" with one operator linked to it (weight 1): (source_id, operator_id).
    pub async fn source_with_operator(&self, operator_name: &str, max_load: i64) -> (i64, i64) {
        let source = self.source("Telegram Bot").await;
        let operator = self.operator(operator_name, max_load).await;
        self.link(source, operator, 1.0).await;
        (source, operator)
    }

    /// Posts a contact, expects 201, and returns the contact.
    pub async fn contact(&self, body: Value) -> Value {
        let (status, body) = self.post("/contacts/", body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Posts an anonymous contact through the source, expects 201, and returns the contact.
    pub async fn contact_through(&self, source_id: i64) -> Value {
        self.contact(json!({ "source_id": source_id })).await
    }

    /// An operator created inactive: its id.
    pub async fn inactive_operator(&self, name: &str, max_load: i64) -> i64 {
        let (status, body) = self
            .post(
                "/operators/",
                json!({ "name": name, "is_active": false, "max_load": max_load }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["is_active"], false);
        id_of(&body)
    }

    /// `PATCH /operators/{id}` with the body, expecting 200.
    pub async fn change_operator(&self, operator_id: i64, body: Value) {
        let (status, answer) = self.patch(&format!("/operators/{operator_id}"), body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }

    /// `GET /operators/{id}/stats`, expecting 200.
    pub async fn operator_stats(&self, operator_id: i64) -> Value {
        let (status, body) = self.get(&format!("/operators/{operator_id}/stats")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// The operator's `active` contacts, as listed.
    pub async fn active_contacts(&self, operator_id: i64) -> Vec<i64> {
        let (status, list) = self
            .get(&format!(
                "/contacts/?operator_id={operator_id}&status=active&limit=1000"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        ids(&list)
    }

    /// The operator's load as listed (`active` contacts), checked against the load in its stats.
    pub async fn load_of(&self, operator_id: i64) -> i64 {
        let counted = self.active_contacts(operator_id).await.len() as i64;
        let stats = self.operator_stats(operator_id).await;
        assert_eq!(stats["active_contacts_count"], counted, "{stats}");
        counted
    }

    /// `PATCH /contacts/{id}` `{"operator_id": operator}` (a manual assignment), expecting 200; returns the
    /// contact answered.
    pub async fn assign_ok(&self, contact_id: i64, operator: Value) -> Value {
        let (status, contact) = self
            .patch(
                &format!("/contacts/{contact_id}"),
                json!({ "operator_id": operator }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{contact}");
        assert_eq!(id_of(&contact), contact_id);
        contact
    }

    /// The length of the JSON array `GET path` answers, expecting 200.
    pub async fn count_of(&self, path: &str) -> usize {
        let list = self.get_ok(path).await;
        list.as_array()
            .unwrap_or_else(|| panic!("GET {path}: not an array: {list}"))
            .len()
    }

    /// Polls `GET path` (expecting 200 each time) until `done` holds of the body, for at most `deadline`;
    /// returns the last body (the caller asserts).
    pub async fn poll_get(
        &self,
        path: &str,
        deadline: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        poll_until(
            deadline,
            Duration::from_millis(100),
            async || self.get_ok(path).await,
            done,
        )
        .await
    }

    /// `GET /contacts/{id}`, expecting 200.
    pub async fn fetch_contact(&self, contact_id: i64) -> Value {
        let (status, contact) = self.get(&format!("/contacts/{contact_id}")).await;
        assert_eq!(status, StatusCode::OK, "{contact}");
        contact
    }

    /// Sets a contact's status through the query parameter, expects 200.
    pub async fn set_status(&self, contact_id: i64, status: &str) -> Value {
        let (code, body) = self
            .call(
                Method::PATCH,
                &format!("/contacts/{contact_id}/status?status={status}"),
                None,
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        body
    }
}

/// Asserts the status and an error body `{"detail": string}` with a non-empty detail.
pub fn assert_error(answer: &(StatusCode, Value), expected: StatusCode, what: &str) {
    let (status, body) = answer;
    assert_eq!(*status, expected, "{what}: {body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{what}: {body}"
    );
}

/// Asserts a 422 with a `detail`.
pub fn assert_unprocessable(answer: &(StatusCode, Value), what: &str) {
    assert_error(answer, StatusCode::UNPROCESSABLE_ENTITY, what);
}

/// Calls `probe` every `every` until `done` holds of what it returns, or until `deadline` has passed; returns
/// the last value either way (the caller asserts on it).
pub async fn poll_until<T>(
    deadline: Duration,
    every: Duration,
    mut probe: impl AsyncFnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let until = Instant::now() + deadline;
    loop {
        let value = probe().await;
        if done(&value) || Instant::now() >= until {
            return value;
        }
        tokio::time::sleep(every).await;
    }
}

/// Monday 2026-06-01, 10:00 UTC: where the manual clocks of the tests of working hours start.
pub fn monday_10am() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-06-01T10:00:00Z")
        .unwrap()
        .to_utc()
}

/// A record's id.
pub fn id_of(record: &Value) -> i64 {
    record["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id: {record}"))
}

/// The sorted field names of a JSON object.
pub fn field_names(object: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = object
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {object}"))
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names
}

/// The ids of a JSON array of records, in order.
pub fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .expect("an array")
        .iter()
        .map(|item| item["id"].as_i64().expect("an id"))
        .collect()
}

pub async fn start_server(database_url: &str) -> Server {
    Server::start(&test_config(database_url))
        .await
        .expect("server starts")
}

/// The configuration tests run with: an ephemeral port; the queue sweep off, so that a test sees only what
/// the triggers do (a sweep test turns it on); webhook retries 100 ms apart at first, checked every 50 ms.
pub fn test_config(database_url: &str) -> Config {
    let mut config = Config::with_database_url(database_url);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.default_region = "RU".to_owned();
    config.queue_sweep_secs = 0;
    config.webhook_retry_base_ms = 100;
    config.webhook_poll_ms = 50;
    config
}

/// Spawns the `leadrouter` command (already given its environment) with `RUST_LOG=leadrouter=info` and the
/// OS's choice of port, and waits, at most a minute, for the address it logs: the child and its base URL. A
/// thread keeps draining its log, so that the server never blocks on a full pipe.
pub fn spawn_logging_address(command: &mut Command) -> (Child, String) {
    let mut child = command
        .env("LEADROUTER_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "leadrouter=info")
        .stdout(Stdio::piped())
        .spawn()
        .expect("leadrouter starts");
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sender = Some(sender);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("address=").nth(1)
                && let Some(sender) = sender.take()
            {
                let address = rest.split_whitespace().next().unwrap_or("").to_owned();
                let _ = sender.send(address);
            }
        }
    });
    match receiver.recv_timeout(Duration::from_secs(60)) {
        Ok(address) => (child, format!("http://{address}")),
        Err(error) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("leadrouter did not log its address ({error})");
        }
    }
}

/// Sends the signal (`TERM`, `KILL`…) to the process with `kill`.
pub fn send_signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} failed");
}

/// Runs `leadrouter keys …` on the app's database, however it ends.
pub fn keys_output(app: &TestApp, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_leadrouter"))
        .arg("keys")
        .args(args)
        .env("DATABASE_URL", &app.database.url)
        .env("RUST_LOG", "off")
        .output()
        .expect("leadrouter keys runs")
}

/// Runs `leadrouter keys …` on the app's database and returns its standard output.
pub fn keys_command(app: &TestApp, args: &[&str]) -> String {
    let output = keys_output(app, args);
    assert!(
        output.status.success(),
        "keys {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Creates a key with `leadrouter keys create`: (key id, token).
pub fn create_key_with_id(app: &TestApp, scope: &str, name: &str) -> (i64, String) {
    created_key(&keys_command(
        app,
        &["create", "--scope", scope, "--name", name],
    ))
}

/// Creates an `operator` key for the operator: (key id, token).
pub fn create_operator_key(app: &TestApp, operator_id: i64, name: &str) -> (i64, String) {
    let operator = operator_id.to_string();
    let printed = keys_command(
        app,
        &[
            "create",
            "--scope",
            "operator",
            "--operator",
            &operator,
            "--name",
            name,
        ],
    );
    created_key(&printed)
}

/// The id and token `leadrouter keys create` printed.
fn created_key(printed: &str) -> (i64, String) {
    // "Created key 3 (name, scope admin). Its token, shown this once:" then the token.
    let id = printed
        .split_whitespace()
        .nth(2)
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no key id in {printed:?}"));
    let token = printed.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("lr_"), "{printed}");
    (id, token)
}

/// Creates a key and returns its token.
pub fn create_key(app: &TestApp, scope: &str, name: &str) -> String {
    create_key_with_id(app, scope, name).1
}

/// Sends a request with the token as a bearer token (none when `None`); a body that is not JSON comes back as
/// a JSON string.
pub async fn call_with_key(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// [`call_with_key`], asserting that the request succeeded (2xx); returns the body.
pub async fn call_with_key_ok(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (status, answer) = call_with_key(app, token, method.clone(), path, body).await;
    assert!(
        status.is_success(),
        "{method} {path}: expected a 2xx, got {status}: {answer}"
    );
    answer
}
