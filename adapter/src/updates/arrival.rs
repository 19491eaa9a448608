//! What the webhook and the poller do with an update that arrives: keep it in the inbox once
//! (a second delivery of the same update is recognised), or, while the inbox is at its bound,
//! turn it away for Telegram to send again later and tell the user to try again.

use teloxide::types::{ChatId, MessageId, Update, UpdateKind};

use crate::flow::inbox::Offered;
use crate::flow::service::Service;

/// What became of an arriving update, and so what Telegram is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Kept (now or before): Telegram may forget it.
    Kept,
    /// Not kept (full, or the local queue failed): Telegram must send it again.
    TurnedAway,
}

pub async fn arrive(service: &Service, update: &Update, json: &str) -> Arrival {
    match service.inbox().offer(update.id.0, json).await {
        Ok(Offered::Kept | Offered::Duplicate) => Arrival::Kept,
        Ok(Offered::Full) => {
            tracing::warn!(
                update_id = update.id.0,
                "the inbox is full: Telegram will retry"
            );
            if let Some((chat, message)) = asked_in(update) {
                service.tell_busy(chat, message);
            }
            Arrival::TurnedAway
        }
        Err(error) => {
            tracing::error!(%error, update_id = update.id.0, "an update could not be kept");
            Arrival::TurnedAway
        }
    }
}

/// The chat and message an update asks in (messages; a button's photo message).
fn asked_in(update: &Update) -> Option<(ChatId, MessageId)> {
    match &update.kind {
        UpdateKind::Message(message) => Some((message.chat.id, message.id)),
        UpdateKind::CallbackQuery(query) => query
            .regular_message()
            .map(|message| (message.chat.id, message.id)),
        _ => None,
    }
}
