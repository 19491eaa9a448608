//! The operators' HTTP endpoint on HEALTH_ADDR: `GET /health/live` (the process answers;
//! never depends on Redis, PostgreSQL or Telegram, so their outage restarts nothing),
//! `GET /health/ready` and `GET /health` (the health report as JSON: 200 ok or degraded,
//! 503 down, for load balancers; the same report for a second; each part's details only
//! with the operator token), `GET /metrics` (Prometheus) and `POST /cleanup`. The operator
//! token is CLEANUP_TOKEN, sent as `Authorization: Bearer <token>`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::operate::cleanup;
use crate::operate::health::{RecentReport, Status};
use crate::operate::metrics::CleanupTrigger;
use crate::operate::operator::Operator;
use crate::serving::{self, Bounds};

/// OpenMetrics text, which Prometheus scrapes natively.
const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the endpoint's handlers share.
struct Endpoint {
    operator: Arc<Operator>,
    /// The health report readiness probes share.
    recent_health: RecentReport,
}

/// Probes and scrapes are short: few connections, little patience.
const BOUNDS: Bounds = Bounds {
    max_connections: 64,
    header_read_timeout: Duration::from_secs(5),
    shutdown_grace: Duration::from_secs(2),
};

/// Binds `address` and serves until `stop`; answers the address bound (port 0 picks one).
pub async fn serve(
    operator: Arc<Operator>,
    address: SocketAddr,
    stop: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/health", get(ready))
        .route("/metrics", get(metrics))
        .route("/cleanup", post(cleanup))
        .with_state(Arc::new(Endpoint {
            operator,
            recent_health: RecentReport::default(),
        }));
    serving::serve("operator", listener, app, BOUNDS, stop);
    Ok(bound)
}

async fn live(State(endpoint): State<Arc<Endpoint>>) -> Response {
    let operator = &endpoint.operator;
    axum::Json(json!({
        "status": "alive",
        "uptime_seconds": operator.metrics().uptime().as_secs_f64(),
    }))
    .into_response()
}

async fn ready(State(endpoint): State<Arc<Endpoint>>, headers: HeaderMap) -> Response {
    let operator = &endpoint.operator;
    let report = endpoint.recent_health.get(operator).await;
    let code = match report.status {
        Status::Ok | Status::Degraded => StatusCode::OK,
        Status::Down => StatusCode::SERVICE_UNAVAILABLE,
    };
    if is_operator(operator, &headers) {
        (code, axum::Json(report)).into_response()
    } else {
        (code, axum::Json(report.without_details())).into_response()
    }
}

/// The request carries the operator token (CLEANUP_TOKEN) as a bearer token.
fn is_operator(operator: &Operator, headers: &HeaderMap) -> bool {
    let Some(token) = &operator.config().cleanup_token else {
        return false;
    };
    // The scheme name is case-insensitive (RFC 9110).
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .is_some_and(|(_, offered)| config::same_secret(offered.trim(), token))
}

async fn metrics(State(endpoint): State<Arc<Endpoint>>) -> Response {
    let operator = &endpoint.operator;
    match operator.metrics().render(&operator.figures()) {
        Ok(text) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn cleanup(State(endpoint): State<Arc<Endpoint>>, headers: HeaderMap) -> Response {
    let operator = &endpoint.operator;
    if operator.config().cleanup_token.is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    if !is_operator(operator, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(json!({"error": "a valid CLEANUP_TOKEN bearer token is required"})),
        )
            .into_response();
    }
    match cleanup::run_blocking(Arc::clone(operator), CleanupTrigger::endpoint).await {
        Some(report) => axum::Json(report).into_response(),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
