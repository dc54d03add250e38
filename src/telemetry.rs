//! Logs and metrics: how the service can be watched from outside.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use clap::ValueEnum;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Sets up logging to stdout, filtered by `RUST_LOG`.
pub fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("leadrouter=info,tower_http=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stdout().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// Request latency buckets, in seconds: from a cached read to a slow commit.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The process-wide Prometheus recorder (installed on first use; every server in the process shares it).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets(&LATENCY_BUCKETS)
            .expect("the bucket list is not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
}

/// Counts every request by route and status, and times it by route. The route is the matched pattern
/// (`/operators/{id}`), never the raw path, so that the number of series stays bounded.
pub async fn record_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Only the standard methods get a label of their own, so that nobody can grow the series without bound.
    let method = match request.method().as_str() {
        known @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => known,
        _ => "other",
    }
    .to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A contact was created through this instance (replays of an idempotent request are not counted).
pub fn contact_created(source_id: i64, assigned: bool) {
    let source = source_id.to_string();
    metrics::counter!("leadrouter_contacts_created_total", "source_id" => source.clone())
        .increment(1);
    if assigned {
        metrics::counter!("leadrouter_contacts_assigned_total", "source_id" => source).increment(1);
    } else {
        metrics::counter!("leadrouter_contacts_unassigned_total", "source_id" => source)
            .increment(1);
    }
}

/// Contacts assigned from the queues (by a change that freed capacity, or by the sweep).
pub fn queue_assigned(count: usize) {
    if count > 0 {
        metrics::counter!("leadrouter_queue_assigned_total").increment(count as u64);
    }
}

/// An attempt at a webhook delivery: `delivered`, `retrying` or `failed` (for good).
pub fn webhook_attempt(outcome: &'static str) {
    metrics::counter!("leadrouter_webhook_attempts_total", "outcome" => outcome).increment(1);
}
