//! Webhook intake for one or many instances behind a load balancer. Unlike teloxide's axum
//! helper, which breaks several instances (a random secret per process, deleteWebhook when
//! any one stops, 200 before the update is safe), this endpoint:
//! - checks the shared WEBHOOK_SECRET (Telegram's `X-Telegram-Bot-Api-Secret-Token`) before
//!   it reads the body, and reads at most [`MAX_UPDATE_BYTES`] of it, in bounded time;
//! - answers 200 only once the update is kept in the inbox (the deployment's Redis stream, or
//!   the local queue), from which any instance answers it; at the inbox's bound, or when it
//!   cannot be kept, it answers 429 so that Telegram sends it again later;
//! - never calls deleteWebhook: the other instances keep serving;
//! - cannot be held open (see `serving.rs`): a stalled client neither blocks shutdown nor
//!   takes every connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::post;
use teloxide::prelude::*;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::flow::service::Service;
use crate::serving::{self, Bounds};
use crate::updates::arrival::{self, Arrival};

const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";
/// An update is a few kilobytes of JSON; anything near this is not from Telegram.
pub const MAX_UPDATE_BYTES: usize = 1 << 20;
/// Time a client has to send an update's body once its head was accepted.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Telegram opens up to 40 connections by default (setWebhook's max_connections); the cap
/// leaves room beyond them and still bounds what a flood of clients can hold.
const BOUNDS: Bounds = Bounds {
    max_connections: 256,
    header_read_timeout: Duration::from_secs(10),
    shutdown_grace: Duration::from_secs(5),
};

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
    serving::serve("webhook", listener, app, BOUNDS, stop)
}

pub async fn bind(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address).await
}

async fn receive(State(intake): State<Arc<Intake>>, request: Request) -> StatusCode {
    let secret_matches = request
        .headers()
        .get(SECRET_HEADER)
        .is_some_and(|given| config::same_secret(given.as_bytes(), intake.secret.as_bytes()));
    if !secret_matches {
        return StatusCode::UNAUTHORIZED;
    }
    let reading = axum::body::to_bytes(request.into_body(), MAX_UPDATE_BYTES);
    let body = match tokio::time::timeout(BODY_READ_TIMEOUT, reading).await {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => {
            tracing::warn!(%error, "webhook body refused (over {MAX_UPDATE_BYTES} bytes or broken)");
            return StatusCode::PAYLOAD_TOO_LARGE;
        }
        Err(_) => return StatusCode::REQUEST_TIMEOUT,
    };
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
