//! Long polling that Prism owns: getUpdates, keep each update in the inbox, and only then
//! confirm it (the next call's offset moves past it). A library loop that confirms updates as
//! it hands them out would lose, in a crash, every update it had handed out; here an update
//! not yet kept is simply delivered again. Polling serves one instance: a 409 Conflict
//! (another process polls with this token) stops it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use teloxide::prelude::*;
use teloxide::{ApiError, RequestError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::flow::service::Service;
use crate::telegram::client::ALLOWED_UPDATES;
use crate::updates::arrival::{self, Arrival};

/// After a failed call, or while the inbox is full, the next call waits this long.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A running poller.
pub struct Poller {
    pub stop: CancellationToken,
    pub task: JoinHandle<()>,
    /// Set when another process polls with the same token.
    pub conflict: Arc<AtomicBool>,
}

/// Removes any webhook (Telegram serves updates one way at a time) and polls until stopped.
pub async fn start(service: Arc<Service>) -> Poller {
    if let Err(error) = service.telegram().bot.delete_webhook().send().await {
        tracing::warn!(%error, "could not remove the webhook before polling");
    }
    let stop = CancellationToken::new();
    let conflict = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(poll(service, stop.clone(), Arc::clone(&conflict)));
    Poller {
        stop,
        task,
        conflict,
    }
}

async fn poll(service: Arc<Service>, stop: CancellationToken, conflict: Arc<AtomicBool>) {
    let timeout = u32::try_from(service.config().polling_timeout.as_secs()).unwrap_or(10);
    // 0: from the oldest update Telegram has not seen confirmed.
    let mut offset: i32 = 0;
    loop {
        let call = service
            .telegram()
            .bot
            .get_updates()
            .offset(offset)
            .timeout(timeout)
            .allowed_updates(ALLOWED_UPDATES)
            .send();
        let updates = tokio::select! {
            _ = stop.cancelled() => break,
            result = call => result,
        };
        let pause = match updates {
            Ok(updates) => keep_all(&service, updates, &mut offset).await,
            Err(RequestError::Api(ApiError::TerminatedByOtherGetUpdates)) => {
                conflict.store(true, Ordering::Relaxed);
                tracing::error!(
                    "another instance is polling Telegram with this token (409 Conflict); long \
                     polling serves one instance only: stopping. Run several instances with \
                     WEBHOOK_URL behind a load balancer"
                );
                break;
            }
            Err(error) => {
                tracing::error!(%error, "receiving updates failed");
                true
            }
        };
        if pause {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(RETRY_AFTER) => {}
            }
        }
    }
}

/// Keeps the updates in order, moving `offset` past each one kept. True when one could not be
/// kept: the next call starts from it, after a pause.
async fn keep_all(service: &Service, updates: Vec<Update>, offset: &mut i32) -> bool {
    for update in updates {
        let json = match serde_json::to_string(&update) {
            Ok(json) => json,
            Err(error) => {
                tracing::warn!(%error, update_id = update.id.0, "an update could not be kept");
                *offset = next_offset(&update);
                continue;
            }
        };
        match arrival::arrive(service, &update, &json).await {
            Arrival::Kept => *offset = next_offset(&update),
            Arrival::TurnedAway => return true,
        }
    }
    false
}

fn next_offset(update: &Update) -> i32 {
    i32::try_from(update.id.0).map_or(i32::MAX, |id| id.saturating_add(1))
}
