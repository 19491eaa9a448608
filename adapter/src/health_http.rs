//! Optional HTTP health endpoint (HEALTH_ADDR) for load balancers and monitoring:
//! `GET /health` (200 healthy, 503 degraded) and `GET /metrics` (the /performance report).

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

async fn health(State(service): State<Arc<Service>>) -> (StatusCode, String) {
    let (healthy, report) = admin::health(&service).await;
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, report)
}

async fn metrics(State(service): State<Arc<Service>>) -> String {
    admin::performance(&service)
}
