//! What the people who run leadrouter need: liveness, readiness and metrics.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Json;
use crate::AppState;
use crate::error::{AppError, ErrorBody};

/// A per-operator gauge: its name, its help text, and its value from (id, active load, max_load).
type Gauge = (&'static str, &'static str, fn(&(i64, i64, i64)) -> i64);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_health))
        .routes(routes!(get_readiness))
        .routes(routes!(get_metrics))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process is up and serving HTTP. Touches nothing else.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health))
)]
async fn get_health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers reads and writes. A load balancer should send traffic only while this is
/// 200.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The database does not answer", body = ErrorBody),
    )
)]
async fn get_readiness(State(state): State<AppState>) -> Result<Json<Health>, AppError> {
    state.store.check_ready().await?;
    Ok(Json(Health { status: "ready" }))
}

/// Prometheus metrics: `http_requests_total{method,route,status}`, `http_request_duration_seconds{method,route}`
/// (histogram), `leadrouter_contacts_created_total{source_id}` and its `…_assigned_total` and
/// `…_unassigned_total` parts (this instance's), and `leadrouter_operator_active_contacts{operator_id}` with
/// `leadrouter_operator_max_load{operator_id}` (read from the database, the same on every instance).
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"),
        (status = 503, description = "The database does not answer", body = ErrorBody),
    )
)]
async fn get_metrics(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let mut text = crate::telemetry::prometheus().render();
    let loads = state.store.operator_loads().await?;
    // Written here rather than kept in the registry, so that a deleted operator's series disappears at once.
    let gauges: [Gauge; 2] = [
        (
            "leadrouter_operator_active_contacts",
            "Contacts in status active assigned to the operator.",
            |l| l.1,
        ),
        (
            "leadrouter_operator_max_load",
            "The operator's max_load.",
            |l| l.2,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} gauge");
        for load in &loads {
            let _ = writeln!(text, "{name}{{operator_id=\"{}\"}} {}", load.0, value(load));
        }
    }
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    ))
}
