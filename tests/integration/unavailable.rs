//! While PostgreSQL is unreachable, requests are answered 503 with a detail and nothing is half-written; once
//! it is back, the same instance serves again without a restart. The database is cut off by a TCP proxy
//! between leadrouter and PostgreSQL. (PostgreSQL only: an embedded SQLite file cannot become unreachable.)

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Backend, TestDatabase};
use leadrouter::{Config, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// Forwards TCP connections to `target` until cut; while cut, closes new connections at once.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (accept_up, accept_links) = (up.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accept_up.load(Ordering::SeqCst) {
                    continue; // dropping the socket closes it
                }
                let target = target.clone();
                accept_links.lock().await.push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        Self { addr, up, links }
    }

    async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().await.drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `host:port` of a `postgres://user@host:port/db…` URL.
fn host_port(url: &str) -> &str {
    let authority = &url[url.find('@').unwrap() + 1..];
    &authority[..authority.find('/').unwrap()]
}

#[tokio::test]
async fn requests_get_503_while_postgres_is_unreachable_and_succeed_once_it_is_back() {
    let Some(database) = TestDatabase::new(Backend::Postgres).await else {
        return common::postgres_not_configured();
    };
    let target = host_port(&database.url).to_owned();
    let proxy = Proxy::start(target.clone()).await;
    let mut config =
        Config::with_database_url(database.url.replacen(&target, &proxy.addr.to_string(), 1));
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.db_acquire_timeout_secs = 1;
    let server = Server::start(&config).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = client.request(method, format!("{base}{path}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            (
                response.status(),
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, source) = call(
        reqwest::Method::POST,
        "/sources/",
        Some(json!({ "name": "bot" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let contact = json!({ "source_id": source["id"], "lead_external_id": "during-outage" });

    proxy.cut().await;
    let (status, body) = call(reqwest::Method::POST, "/contacts/", Some(contact.clone())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    let (status, _) = call(reqwest::Method::GET, "/operators/", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    proxy.restore();
    // The pool reconnects on its own; allow it a bounded number of tries.
    let recovered = common::poll_until(
        std::time::Duration::from_secs(60),
        std::time::Duration::from_millis(100),
        async || call(reqwest::Method::GET, "/operators/", None).await.0 == StatusCode::OK,
        |recovered| *recovered,
    )
    .await;
    assert!(recovered, "the instance did not recover");
    let (status, leads) = call(
        reqwest::Method::GET,
        "/leads/?external_id=during-outage",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{leads}");
    assert_eq!(leads, json!([]), "the refused contact left nothing behind");
    let (status, _) = call(reqwest::Method::POST, "/contacts/", Some(contact)).await;
    assert_eq!(status, StatusCode::CREATED);

    server.stop().await.unwrap();
}

/// Takes `table`'s strongest lock in a transaction of its own, as a migration or an administrator may: every
/// statement of the server on it waits until the transaction ends.
async fn lock_table(database: &TestDatabase, table: &str) -> sqlx::PgConnection {
    let mut admin = sqlx::PgConnection::connect(&database.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut admin).await.unwrap();
    sqlx::query(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        .execute(&mut admin)
        .await
        .unwrap();
    admin
}

#[tokio::test]
async fn a_request_whose_connection_postgres_ends_is_answered_503_and_the_next_succeeds() {
    let Some(app) = common::TestApp::spawn_backend(Backend::Postgres).await else {
        return common::postgres_not_configured();
    };
    let source = app.source("bot").await;
    let operator = app.operator("Ann", 10).await;
    app.link(source, operator, 1.0).await;
    // The leads, which no background task of the server reads while no contact waits: only the request
    // below waits on this lock.
    let mut locking = lock_table(&app.database, "leads").await;

    // The request waits on the lock; its backend is then ended, as a restart or an administrator would.
    let mut watching = sqlx::PgConnection::connect(&app.database.url)
        .await
        .unwrap();
    let ending = async {
        common::poll_until(
            std::time::Duration::from_secs(30),
            std::time::Duration::from_millis(20),
            async || {
                sqlx::query_scalar::<_, bool>(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = current_setting('application_name') \
                     AND wait_event_type = 'Lock' AND query ILIKE '%leads%' \
                     AND pid <> pg_backend_pid()",
                )
                .fetch_all(&mut watching)
                .await
                .unwrap()
                .len()
            },
            |ended| *ended > 0,
        )
        .await
    };
    let ((status, body), ended) = tokio::join!(app.get("/leads/?external_id=x"), ending);

    assert!(ended >= 1, "the waiting backend was ended");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    sqlx::query("ROLLBACK").execute(&mut locking).await.unwrap();
    let (status, leads) = app.get("/leads/?external_id=x").await;
    assert_eq!(status, StatusCode::OK, "{leads}");
    let contact = app.contact(json!({ "source_id": source })).await;
    assert_eq!(contact["operator_id"], operator);
}

/// Migrations run outside the requests' statement timeout: one waiting longer than that for a lock (here an
/// administrator's; in production the migration lock another instance holds while it upgrades, or a large
/// table rewritten) still completes, and the server starts.
#[tokio::test]
async fn a_migration_may_take_longer_than_the_statement_timeout() {
    let Some(database) = TestDatabase::new(Backend::Postgres).await else {
        return common::postgres_not_configured();
    };
    database.migrate_before("0011").await;
    let mut locking = lock_table(&database, "leads").await;
    let unlocking = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        sqlx::query("ROLLBACK").execute(&mut locking).await.unwrap();
    });

    let app = common::TestApp::spawn_on_with(database, |config| {
        config.db_statement_timeout_secs = 1;
    })
    .await;

    unlocking.await.unwrap();
    let source = app.source("bot").await;
    let contact = app
        .contact(json!({ "source_id": source, "lead_external_id": "after-upgrade" }))
        .await;
    assert!(contact["lead_id"].is_i64(), "{contact}");
}

#[tokio::test]
async fn a_statement_cut_off_by_the_statement_timeout_is_answered_503() {
    let Some(app) = common::TestApp::spawn_backend_with(Backend::Postgres, |config| {
        config.db_statement_timeout_secs = 1;
    })
    .await
    else {
        return common::postgres_not_configured();
    };
    app.operator("Ann", 10).await;
    let mut locking = lock_table(&app.database, "operators").await;

    let (status, body) = app.get("/operators/").await;

    sqlx::query("ROLLBACK").execute(&mut locking).await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("statement timeout"), "{body}");
    let (status, _) = app.get("/operators/").await;
    assert_eq!(status, StatusCode::OK);
}
