//! A webhook receiver for tests: an HTTP server on 127.0.0.1:0 that records every request it gets and answers
//! 500 to the first N of them (adjustable while it runs), a 302 when told to redirect, and 200 otherwise —
//! after a delay, when told to be slow.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long [`Receiver::wait_for`] waits, unless told otherwise.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// The path and query the request was sent to.
    pub path: String,
    /// Header names in lower case; a repeated header keeps its last value.
    pub headers: HashMap<String, String>,
    /// The body exactly as it arrived (what a signature covers).
    pub body: Vec<u8>,
    /// The body parsed as JSON; `Value::Null` when it is not JSON.
    pub json: Value,
    /// The status the receiver answered with.
    pub status: u16,
}

impl Received {
    /// Whether the receiver answered 2xx (the delivery succeeded).
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The event id of the body (`id`), if any.
    pub fn event_id(&self) -> Option<i64> {
        self.json["id"].as_i64()
    }

    /// The event type of the body (`type`), if any.
    pub fn event_type(&self) -> Option<&str> {
        self.json["type"].as_str()
    }

    /// The id of the contact the event is about (`data.contact.id`), if any.
    pub fn contact_id(&self) -> Option<i64> {
        self.json["data"]["contact"]["id"].as_i64()
    }

    /// Whether this is the event `event_type` about the contact `contact_id`.
    pub fn is(&self, event_type: &str, contact_id: i64) -> bool {
        self.event_type() == Some(event_type) && self.contact_id() == Some(contact_id)
    }
}

#[derive(Default)]
struct Behaviour {
    /// Requests still to be answered 500.
    fail_next: usize,
    /// Answer 500 to everything while set.
    failing: bool,
    /// Answer 302 with this Location while set (before any failing rule).
    redirect_to: Option<String>,
    /// How long to wait before answering.
    delay: Duration,
}

#[derive(Default)]
struct Shared {
    behaviour: Mutex<Behaviour>,
    received: Mutex<Vec<Received>>,
}

/// The running receiver; stops its server when dropped.
pub struct Receiver {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Receiver {
    /// Starts a receiver that answers 500 to its first `fail_first` requests and 200 afterwards.
    pub async fn start(fail_first: usize) -> Receiver {
        let shared = Arc::new(Shared::default());
        shared.behaviour.lock().unwrap().fail_next = fail_first;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the receiver binds");
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .fallback(record)
            .with_state(Arc::clone(&shared));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Receiver {
            addr,
            shared,
            shutdown: Some(shutdown),
            task,
        }
    }

    /// The URL to configure a webhook with: `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers 500 to the next `n` requests (replacing any count still pending).
    pub fn fail_next(&self, n: usize) {
        self.shared.behaviour.lock().unwrap().fail_next = n;
    }

    /// Answers 500 to everything while `failing`; when turned off, the receiver answers 200 again (any
    /// `fail_next` count still pending is dropped too).
    pub fn set_failing(&self, failing: bool) {
        let mut behaviour = self.shared.behaviour.lock().unwrap();
        behaviour.failing = failing;
        if !failing {
            behaviour.fail_next = 0;
        }
    }

    /// Answers `302 Found` with `Location: location` to everything while set; `None` turns it off.
    pub fn redirect_to(&self, location: Option<String>) {
        self.shared.behaviour.lock().unwrap().redirect_to = location;
    }

    /// Waits this long before answering each request (it is recorded at once, when it arrives).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.behaviour.lock().unwrap().delay = delay;
    }

    /// Every request received so far, in arrival order, the failed ones included.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Polls every 50 ms until `done` holds for what was received, or `deadline` passes; returns what was
    /// received then (the caller asserts).
    pub async fn wait_for(
        &self,
        done: impl Fn(&[Received]) -> bool,
        deadline: Duration,
    ) -> Vec<Received> {
        super::poll_until(
            deadline,
            Duration::from_millis(50),
            async || self.received(),
            |received| done(received),
        )
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Graceful shutdown would wait for open connections (a client's keep-alive); nothing is owed to them.
        self.task.abort();
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (status, location, delay) = {
        let mut behaviour = shared.behaviour.lock().unwrap();
        let delay = behaviour.delay;
        let (status, location) = if let Some(location) = behaviour.redirect_to.clone() {
            (StatusCode::FOUND, Some(location))
        } else if behaviour.failing {
            (StatusCode::INTERNAL_SERVER_ERROR, None)
        } else if behaviour.fail_next > 0 {
            behaviour.fail_next -= 1;
            (StatusCode::INTERNAL_SERVER_ERROR, None)
        } else {
            (StatusCode::OK, None)
        };
        (status, location, delay)
    };
    let mut names = HashMap::new();
    for (name, value) in &headers {
        names.insert(
            name.as_str().to_ascii_lowercase(),
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        );
    }
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.received.lock().unwrap().push(Received {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers: names,
        body: body.to_vec(),
        json,
        status: status.as_u16(),
    });
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match location {
        Some(location) => (status, [(header::LOCATION, location)], "").into_response(),
        None => (status, "").into_response(),
    }
}

/// The `sha256=<lowercase hex>` HMAC-SHA256 signature of `body` with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

/// Whether `header` is the `sha256=<lowercase hex>` HMAC-SHA256 of `body` with `secret`.
pub fn signature_valid(secret: &str, body: &[u8], header: &str) -> bool {
    signature(secret, body) == header
}
