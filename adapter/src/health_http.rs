//! Optional HTTP health endpoint (HEALTH_ADDR) for load balancers and monitoring:
//! `GET /health` (200 healthy or degraded, 503 failing) and `GET /metrics` (the /performance report).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::admin;
use crate::service::Service;

pub async fn serve(
    service: Arc<Service>,
    address: SocketAddr,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(service);
    tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
        if let Err(error) = server.await {
            tracing::error!(%error, "health endpoint failed");
        }
    });
    Ok(())
}

/// 200 while the instance answers requests (healthy or degraded: a load balancer should
/// keep sending it work), 503 when it cannot.
async fn health(State(service): State<Arc<Service>>) -> (StatusCode, String) {
    let report = admin::health(&service).await;
    let status = match report.status {
        admin::Status::Healthy | admin::Status::Degraded => StatusCode::OK,
        admin::Status::Failing => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, report.text)
}

async fn metrics(State(service): State<Arc<Service>>) -> String {
    admin::performance(&service)
}
