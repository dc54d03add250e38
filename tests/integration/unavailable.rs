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

/// Ends every connection the instance holds, as a restart of PostgreSQL or an administrator does; returns how
/// many were ended.
async fn end_connections_of(database: &TestDatabase) -> i64 {
    let mut admin = sqlx::PgConnection::connect(&database.url).await.unwrap();
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = current_setting('application_name') AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    ended.len() as i64
}

#[tokio::test]
async fn connections_ended_by_postgres_cost_at_most_one_503_each_and_never_a_500() {
    let pool_size: u32 = 3;
    let Some(app) = common::TestApp::spawn_backend_with(Backend::Postgres, |config| {
        config.db_max_connections = pool_size;
    })
    .await
    else {
        return common::postgres_not_configured();
    };
    let source = app.source("bot").await;
    let operator = app.operator("Ann", 100).await;
    app.link(source, operator, 1.0).await;
    // Every pooled connection in use at once, so that all of them are open when they are ended.
    futures::future::join_all(
        (0..8).map(|_| app.post("/contacts/", json!({ "source_id": source }))),
    )
    .await;

    let ended = end_connections_of(&app.database).await;
    assert!(ended >= 1, "the instance held connections");
    let mut unavailable: u32 = 0;
    let mut created: u32 = 0;
    for _ in 0..pool_size * 2 + 5 {
        let (status, body) = app.post("/contacts/", json!({ "source_id": source })).await;
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(body["detail"].is_string(), "{body}");
                unavailable += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }

    assert!(
        unavailable <= pool_size,
        "{unavailable} answers 503 for {pool_size} connections"
    );
    assert_eq!(created + unavailable, pool_size * 2 + 5);
    let stats = app.get_ok(&format!("/stats/sources/{source}")).await;
    assert_eq!(
        stats["total_contacts"],
        u64::from(8 + created),
        "every 201 stored, nothing of a 503: {stats}"
    );
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
    let mut admin = sqlx::PgConnection::connect(&app.database.url)
        .await
        .unwrap();
    let mut locking = sqlx::Connection::begin(&mut admin).await.unwrap();
    sqlx::query("LOCK TABLE operators IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *locking)
        .await
        .unwrap();

    let (status, body) = app.get("/operators/").await;

    locking.rollback().await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    let (status, _) = app.get("/operators/").await;
    assert_eq!(status, StatusCode::OK);
}
