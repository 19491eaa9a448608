//! Takes accepted updates out of the inbox, as many as this instance's admission has room for
//! (MAX_CONCURRENT_REQUESTS + REQUEST_QUEUE_SIZE, counting those it is answering), and runs each
//! through the update schema in order, with its receipt. Alongside, the claims on what this
//! instance is answering are renewed and the backlog is read for the reports.

use std::sync::Arc;
use std::time::Duration;

use teloxide::dispatching::UpdateHandler;
use teloxide::types::{Me, Update};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::flow::inbox::Delivery;
use crate::operate::operator::Operator;
use crate::updates::handlers::{self, HandlerError, ReceiptSlot};

/// How long an idle consumer waits before looking again (an update kept by this instance
/// wakes it at once; one kept by another is seen within this).
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// How often the backlog shown in /health and /metrics is read.
const BACKLOG_EVERY: Duration = Duration::from_secs(1);

/// Consumes until `stop`; what is not taken by then stays in the inbox. Claims are renewed
/// until `background` (after the requests in flight have finished).
pub fn spawn(
    operator: Arc<Operator>,
    me: Me,
    stop: CancellationToken,
    background: CancellationToken,
) -> JoinHandle<()> {
    spawn_renewals(&operator, background);
    let schema = handlers::schema();
    tokio::spawn(async move {
        let service = Arc::clone(operator.service());
        let inbox = Arc::clone(service.inbox());
        let config = service.config();
        let capacity = config.max_concurrent + config.queue_size;
        loop {
            if stop.is_cancelled() {
                break;
            }
            let room = capacity.saturating_sub(inbox.in_progress());
            let taken = inbox.take(room).await;
            if taken.is_empty() {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = inbox.wait(IDLE_WAIT) => {}
                }
                continue;
            }
            for delivery in taken {
                handle(&operator, &schema, &me, delivery).await;
            }
        }
    })
}

async fn handle(
    operator: &Arc<Operator>,
    schema: &UpdateHandler<HandlerError>,
    me: &Me,
    delivery: Delivery,
) {
    let service = operator.service();
    if let Some(record) = delivery.replied {
        tracing::info!(
            update_id = delivery.update_id,
            "answered before a restart: recorded, not answered again"
        );
        return service.record_answered(record, &delivery.receipt);
    }
    let update: Update = match serde_json::from_str(&delivery.update) {
        Ok(update) => update,
        Err(error) => {
            // It was readable when it was accepted; it never will be now.
            tracing::error!(%error, update_id = delivery.update_id, "an accepted update is unreadable");
            return delivery.receipt.acknowledge();
        }
    };
    let slot = ReceiptSlot::holding(delivery.receipt);
    let deps = teloxide::dptree::deps![
        update,
        service.telegram().bot.clone(),
        Arc::clone(service),
        Arc::clone(operator),
        me.clone(),
        slot.clone()
    ];
    match schema.dispatch(deps).await {
        std::ops::ControlFlow::Break(Err(error)) => tracing::error!(%error, "a handler failed"),
        std::ops::ControlFlow::Break(Ok(())) | std::ops::ControlFlow::Continue(_) => {}
    }
    // No image request took the receipt: the update is answered by its handler alone.
    if let Some(receipt) = slot.take() {
        receipt.acknowledge();
    }
}

/// Renews the claims on what this instance answers (well within the visibility timeout), and
/// reads the backlog for the reports.
fn spawn_renewals(operator: &Arc<Operator>, stop: CancellationToken) {
    let inbox = Arc::clone(operator.service().inbox());
    tokio::spawn(async move {
        let mut renew = tokio::time::interval(inbox.renew_every());
        let mut backlog = tokio::time::interval(BACKLOG_EVERY);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = renew.tick() => inbox.renew_claims().await,
                _ = backlog.tick() => inbox.refresh_backlog().await,
            }
        }
    });
}
