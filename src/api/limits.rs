//! What one client may send: bodies up to a size (and an answer it can read when it sends more), and requests
//! up to a rate.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http_body_util::BodyExt;

use super::MAX_BODY_BYTES;
use crate::config::Config;
use crate::error::AppError;

/// After a body has passed the limit, at most this much more of it is read and thrown away (or for at most
/// [`DISCARD_TIME`]), so that a client that sends its whole body before reading the answer (most do, without
/// `Expect: 100-continue`) reads the 413 rather than a connection reset.
const DISCARD_BYTES: usize = 16 * 1024 * 1024;
const DISCARD_TIME: Duration = Duration::from_secs(5);

/// Answers a body over [`MAX_BODY_BYTES`] 413, once it is read (or at once, to a client that waits for
/// `100 Continue`). A body of a declared length within the limit passes untouched; one without a declared
/// length is read into memory here, within the limit.
pub async fn limit_body(request: Request, next: Next) -> Response {
    let declared = declared_length(request.headers());
    match declared {
        // hyper ends the body at its declared length: the extractors' own limit (the same) never fires.
        Some(length) if length <= MAX_BODY_BYTES as u64 => return next.run(request).await,
        // The client waits for `100 Continue` before it sends the body, which hyper sends only once the body
        // is read: answered now, it sends nothing.
        Some(_) if expects_continue(request.headers()) => return too_large(false),
        _ => {}
    }
    let (parts, mut body) = request.into_parts();
    let mut buffered = Vec::new();
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue; // trailers
                };
                if buffered.len() + data.len() > MAX_BODY_BYTES {
                    let read_all = discard(body, buffered.len() + data.len()).await;
                    return too_large(read_all);
                }
                buffered.extend_from_slice(&data);
            }
            Some(Err(error)) => {
                return AppError::Rejected {
                    status: StatusCode::BAD_REQUEST,
                    message: format!("Failed to read the request body: {error}"),
                }
                .into_response();
            }
        }
    }
    let request = Request::from_parts(parts, Body::from(Bytes::from(buffered)));
    next.run(request).await
}

/// Reads and drops the rest of `body`, within [`DISCARD_BYTES`] and [`DISCARD_TIME`]. Whether it was read to
/// its end (so that the connection can serve the next request).
async fn discard(mut body: Body, already: usize) -> bool {
    let mut read = already;
    let drained = async {
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    read += frame.data_ref().map_or(0, Bytes::len);
                    if read > DISCARD_BYTES {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
        true
    };
    tokio::time::timeout(DISCARD_TIME, drained)
        .await
        .unwrap_or(false)
}

fn too_large(read_all: bool) -> Response {
    let mut response = AppError::Rejected {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!("The request body is larger than the limit of {MAX_BODY_BYTES} bytes"),
    }
    .into_response();
    if !read_all {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(EXPECT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("100-continue"))
}

/// Who a rate limit counts requests of: the API key, or (while the API is open) the client's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Client {
    Key(i64),
    Address(IpAddr),
    /// A connection without an address (none in a served app).
    Unknown,
}

impl Client {
    pub fn of(key_id: Option<i64>, request: &Request) -> Self {
        match key_id {
            Some(id) => Client::Key(id),
            None => request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(Client::Unknown, |ConnectInfo(address)| {
                    Client::Address(address.ip())
                }),
        }
    }
}

/// Which budget a request spends: posting contacts, or everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateClass {
    Ingest,
    Other,
}

impl RateClass {
    fn as_str(self) -> &'static str {
        match self {
            RateClass::Ingest => "ingest",
            RateClass::Other => "other",
        }
    }
}

/// The configured rate limits, each counted per client on this instance (a token bucket: `rate` requests a
/// second on average, up to `burst` at once).
pub struct RateLimits {
    ingest: Option<DefaultKeyedRateLimiter<Client>>,
    other: Option<DefaultKeyedRateLimiter<Client>>,
    /// Requests checked, so that the clients not seen for a while are forgotten now and then.
    checked: AtomicU64,
}

/// How often (in requests checked) the buckets of clients who are back to a full burst are dropped.
const FORGET_EVERY: u64 = 4096;

impl RateLimits {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            ingest: limiter(
                "LEADROUTER_INGEST_RATE",
                config.ingest_rate,
                config.ingest_burst,
            )?,
            other: limiter("LEADROUTER_API_RATE", config.api_rate, config.api_burst)?,
            checked: AtomicU64::new(0),
        })
    }

    /// The answer to send instead (429 with `Retry-After`) when the client has spent its budget.
    pub fn refusal(&self, class: RateClass, client: impl FnOnce() -> Client) -> Option<Response> {
        let limiter = match class {
            RateClass::Ingest => &self.ingest,
            RateClass::Other => &self.other,
        };
        let limiter = limiter.as_ref()?;
        if self.checked.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let not_until = limiter.check_key(&client()).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        // Whole seconds, rounded up: a client that waits as told finds a token.
        let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let retry_after = retry_after.max(1);
        metrics::counter!("leadrouter_rate_limited_total", "class" => class.as_str()).increment(1);
        let mut response = AppError::Rejected {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!(
                "Too many requests: this client's {} rate limit is spent; retry in {retry_after} s",
                class.as_str()
            ),
        }
        .into_response();
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry_after));
        Some(response)
    }
}

fn limiter(
    setting: &str,
    rate: f64,
    burst: Option<u32>,
) -> anyhow::Result<Option<DefaultKeyedRateLimiter<Client>>> {
    if rate == 0.0 {
        return Ok(None);
    }
    if !rate.is_finite() || rate < 0.0 {
        anyhow::bail!("{setting}: {rate} is not a rate (requests a second, 0 for no limit)");
    }
    let period = Duration::try_from_secs_f64(1.0 / rate)
        .ok()
        .filter(|period| !period.is_zero())
        .ok_or_else(|| anyhow::anyhow!("{setting}: {rate} requests a second is out of range"))?;
    // The default burst: one second's worth of requests, and at least one.
    let burst = burst.unwrap_or_else(|| rate.ceil().min(f64::from(u32::MAX)) as u32);
    let burst = NonZeroU32::new(burst)
        .ok_or_else(|| anyhow::anyhow!("{setting}'s burst must be at least 1"))?;
    let quota = Quota::with_period(period)
        .ok_or_else(|| anyhow::anyhow!("{setting}: {rate} requests a second is out of range"))?
        .allow_burst(burst);
    Ok(Some(RateLimiter::keyed(quota)))
}
