//! Webhook intake for one or many instances behind a load balancer. Unlike teloxide's axum
//! helper, which breaks several instances (a random secret per process, deleteWebhook when
//! any one stops, 200 before the update is handled), this endpoint:
//! - checks the shared WEBHOOK_SECRET (Telegram's `X-Telegram-Bot-Api-Secret-Token`);
//! - answers only after the update went through the handler schema (de-duplication, and
//!   the request accepted into the service's tracked tasks), so shutdown, which first stops
//!   this server and then waits for those tasks, finishes every update it acknowledged;
//! - never calls deleteWebhook: the other instances keep serving.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use teloxide::dispatching::UpdateHandler;
use teloxide::prelude::*;
use teloxide::types::Me;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::operate::operator::Operator;
use crate::updates::handlers::{self, HandlerError};

const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

struct Intake {
    operator: Arc<Operator>,
    schema: UpdateHandler<HandlerError>,
    me: Me,
    secret: String,
}

/// Serves the webhook path of `url` on `listener` until `stop` is cancelled; the returned
/// task ends when every request in progress has been answered.
pub fn serve(
    operator: Arc<Operator>,
    me: Me,
    listener: tokio::net::TcpListener,
    url: &url::Url,
    secret: String,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let intake = Arc::new(Intake {
        operator,
        schema: handlers::schema(),
        me,
        secret,
    });
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
    let deps = dptree::deps![
        update,
        intake.operator.service().telegram().bot.clone(),
        Arc::clone(intake.operator.service()),
        Arc::clone(&intake.operator),
        intake.me.clone()
    ];
    // Its own task: a client that disconnects must not cancel an update half-way through
    // (claimed by the de-duplication but not yet accepted).
    let handled = tokio::spawn(async move { intake.schema.dispatch(deps).await }).await;
    match handled {
        Ok(std::ops::ControlFlow::Break(Err(error))) => {
            tracing::error!(%error, "a handler failed");
        }
        Err(error) => tracing::error!(%error, "a handler panicked"),
        Ok(std::ops::ControlFlow::Break(Ok(())) | std::ops::ControlFlow::Continue(_)) => {}
    }
    StatusCode::OK
}

/// Compares without stopping at the first difference, so timing does not reveal the secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
