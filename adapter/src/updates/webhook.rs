//! Webhook intake for one or many instances behind a load balancer. Unlike teloxide's axum
//! helper, which breaks several instances (a random secret per process, deleteWebhook when
//! any one stops, 200 before the update is safe), this endpoint:
//! - checks the shared WEBHOOK_SECRET (Telegram's `X-Telegram-Bot-Api-Secret-Token`);
//! - answers 200 only once the update is kept in the inbox (the deployment's Redis stream, or
//!   the local queue), from which any instance answers it; at the inbox's bound, or when it
//!   cannot be kept, it answers 429 so that Telegram sends it again later;
//! - never calls deleteWebhook: the other instances keep serving.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use teloxide::prelude::*;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::flow::service::Service;
use crate::updates::arrival::{self, Arrival};

const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

struct Intake {
    service: Arc<Service>,
    secret: String,
}

/// Serves the webhook path of `url` on `listener` until `stop` is cancelled; the returned
/// task ends when every request in progress has been answered.
pub fn serve(
    service: Arc<Service>,
    listener: tokio::net::TcpListener,
    url: &url::Url,
    secret: String,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let intake = Arc::new(Intake { service, secret });
    let path = match url.path() {
        "" => "/",
        path => path,
    };
    let app = Router::new().route(path, post(receive)).with_state(intake);
    tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
        if let Err(error) = server.await {
            tracing::error!(%error, "webhook server failed");
        }
    })
}

pub async fn bind(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address).await
}

async fn receive(State(intake): State<Arc<Intake>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let secret_matches = headers
        .get(SECRET_HEADER)
        .is_some_and(|given| constant_time_eq(given.as_bytes(), intake.secret.as_bytes()));
    if !secret_matches {
        return StatusCode::UNAUTHORIZED;
    }
    let update: Update = match serde_json::from_slice(&body) {
        Ok(update) => update,
        Err(error) => {
            // Sending it again would not make it readable: acknowledge and log.
            tracing::warn!(%error, "unreadable update from the webhook");
            return StatusCode::OK;
        }
    };
    let Ok(json) = std::str::from_utf8(&body) else {
        return StatusCode::OK; // parsed above, so UTF-8
    };
    // Its own task: a client that disconnects must not cancel the write half-way.
    let service = Arc::clone(&intake.service);
    let arrival = tokio::spawn({
        let json = json.to_string();
        async move { arrival::arrive(&service, &update, &json).await }
    })
    .await;
    match arrival {
        Ok(Arrival::Kept) => StatusCode::OK,
        Ok(Arrival::TurnedAway) => StatusCode::TOO_MANY_REQUESTS,
        Err(error) => {
            tracing::error!(%error, "keeping an update panicked");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// Compares without stopping at the first difference, so timing does not reveal the secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
