//! The update schema (dptree): commands, images, preset buttons, everything else. Handlers
//! answer quickly; image work is handed to the service, which spawns it, with the update's
//! receipt from the inbox (acknowledged once the request is recorded).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use teloxide::dispatching::{UpdateFilterExt, UpdateHandler};
use teloxide::prelude::*;
use teloxide::types::{
    InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageId, ReplyMarkup, UpdateId,
};

use crate::flow::inbox::Receipt;
use crate::flow::service::{ImageInput, ImageRequest, Service};
use crate::flow::spec::{self, KEYBOARD_PRESETS};
use crate::operate::admin;
use crate::operate::health;
use crate::operate::operator::Operator;
use crate::telegram::client::TelegramError;
use crate::updates::commands::{self, Command};

pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;
type HandlerResult = Result<(), HandlerError>;

/// Callback data of the preset buttons: this prefix plus the preset's pipeline text.
const PRESET_PREFIX: &str = "preset:";

/// The update's receipt, for the handler that turns it into an image request to carry; an
/// update that becomes none is acknowledged once its handler returns.
#[derive(Clone, Default)]
pub struct ReceiptSlot(Arc<Mutex<Option<Receipt>>>);

impl ReceiptSlot {
    pub fn holding(receipt: Receipt) -> ReceiptSlot {
        ReceiptSlot(Arc::new(Mutex::new(Some(receipt))))
    }

    pub fn take(&self) -> Option<Receipt> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Updates reach the schema from the inbox, de-duplicated when they were accepted.
pub fn schema() -> UpdateHandler<HandlerError> {
    let messages = Update::filter_message()
        .branch(teloxide::filter_command::<Command, _>().endpoint(on_command))
        .branch(
            dptree::filter(|message: Message| image_input(&message).is_some()).endpoint(on_image),
        )
        .endpoint(on_other_message);
    let callbacks = Update::filter_callback_query().endpoint(on_callback);
    dptree::entry().branch(messages).branch(callbacks)
}

/// The image in a message: the largest photo size, or a document that is an image.
pub fn image_input(message: &Message) -> Option<ImageInput> {
    let known_size = |size: u32| (size != u32::MAX).then_some(u64::from(size));
    if let Some(largest) = message.photo().and_then(|sizes| {
        sizes
            .iter()
            .max_by_key(|p| u64::from(p.width) * u64::from(p.height))
    }) {
        return Some(ImageInput {
            file_id: largest.file.id.clone(),
            unique_id: largest.file.unique_id.0.clone(),
            size: known_size(largest.file.size),
            is_document: false,
        });
    }
    let document = message.document()?;
    let is_image = document
        .mime_type
        .as_ref()
        .is_some_and(|mime| mime.type_() == "image")
        || document.file_name.as_deref().is_some_and(|name| {
            let name = name.to_ascii_lowercase();
            [
                ".jpg", ".jpeg", ".png", ".webp", ".gif", ".heic", ".heif", ".avif",
            ]
            .iter()
            .any(|ext| name.ends_with(ext))
        });
    is_image.then(|| ImageInput {
        file_id: document.file.id.clone(),
        unique_id: document.file.unique_id.0.clone(),
        size: known_size(document.file.size),
        is_document: true,
    })
}

/// The pipeline text a preset button carries in its callback data.
pub fn preset_text(query: &CallbackQuery) -> Option<&str> {
    query
        .data
        .as_deref()
        .and_then(|data| data.strip_prefix(PRESET_PREFIX))
}

/// The photo a preset keyboard was offered for: the message the keyboard replied to.
pub fn keyboard_photo(query: &CallbackQuery) -> Option<(ChatId, MessageId, ImageInput)> {
    query
        .regular_message()
        .and_then(|keyboard| keyboard.reply_to_message())
        .and_then(|original| {
            image_input(original).map(|input| (original.chat.id, original.id, input))
        })
}

async fn on_command(
    update: Update,
    message: Message,
    command: Command,
    service: Arc<Service>,
    operator: Arc<Operator>,
    receipt: ReceiptSlot,
) -> HandlerResult {
    let (chat, to) = (message.chat.id, message.id);
    let user = message.from.as_ref().map(|u| u.id);
    let is_admin = user.is_some_and(|id| service.is_admin(id));
    let text = match command {
        Command::Start => commands::start_text(),
        Command::Help => commands::help_text(),
        Command::Ops => commands::ops_text(),
        Command::Again(text) => {
            again(&message, update.id, &text, &service, receipt.take());
            return Ok(());
        }
        // A report posted in a group is read by every member.
        Command::Health | Command::Performance | Command::AdminStats
            if !message.chat.is_private() =>
        {
            "Please ask me that in a private chat.".to_string()
        }
        Command::Health | Command::Performance | Command::AdminStats if !is_admin => {
            "Sorry, that command is for the bot's admins; you're not allowed to use it.".to_string()
        }
        Command::Performance => admin::performance(&operator),
        Command::Health | Command::AdminStats => {
            // These wait on the store and Telegram: off the dispatcher.
            service.spawn(async move {
                let service = operator.service();
                let text = match command {
                    Command::Health => health::report(&operator).await.text(),
                    _ => admin::admin_stats(service).await,
                };
                service.reply_later(chat, to, text);
            });
            return Ok(());
        }
    };
    service.reply_later(chat, to, text);
    Ok(())
}

/// `/again SPEC` in reply to an image.
fn again(
    message: &Message,
    update: UpdateId,
    text: &str,
    service: &Arc<Service>,
    receipt: Option<Receipt>,
) {
    let (chat, to) = (message.chat.id, message.id);
    let Some(original) = message.reply_to_message() else {
        let hint = "Reply to a photo with /again SPEC, e.g. /again fit 800 gray.";
        return service.reply_later(chat, to, hint.into());
    };
    let Some(input) = image_input(original) else {
        let hint = "The message you replied to has no image; reply to a photo or image file.";
        return service.reply_later(chat, to, hint.into());
    };
    request_or_explain(service, message, update, input, text, receipt);
}

async fn on_image(
    update: Update,
    message: Message,
    service: Arc<Service>,
    receipt: ReceiptSlot,
) -> HandlerResult {
    let Some(input) = image_input(&message) else {
        return Ok(());
    };
    match message.caption() {
        Some(caption) if !caption.trim().is_empty() => request_or_explain(
            &service,
            &message,
            update.id,
            input,
            caption,
            receipt.take(),
        ),
        _ => {
            let buttons: Vec<Vec<InlineKeyboardButton>> = KEYBOARD_PRESETS
                .chunks(4)
                .map(|row| {
                    row.iter()
                        .map(|(label, text)| {
                            InlineKeyboardButton::callback(*label, format!("{PRESET_PREFIX}{text}"))
                        })
                        .collect()
                })
                .collect();
            let markup = ReplyMarkup::InlineKeyboard(InlineKeyboardMarkup::new(buttons));
            let text = "What should I do with it? Pick a preset, or send it again with a caption \
                        such as `fit 800 gray` (/help).";
            let worker = Arc::clone(&service);
            service.spawn(async move {
                let sent = worker
                    .telegram()
                    .reply_with_markup(message.chat.id, message.id, text, markup)
                    .await;
                match sent {
                    Err(TelegramError::Dropped(_)) => {
                        tracing::debug!("preset keyboard dropped: the chat has enough waiting")
                    }
                    Err(error) => tracing::warn!(%error, "sending the preset keyboard failed"),
                    Ok(_) => {}
                }
            });
        }
    }
    Ok(())
}

/// Parses `text` and hands the request over, or explains what is wrong with it.
fn request_or_explain(
    service: &Arc<Service>,
    message: &Message,
    update: UpdateId,
    input: ImageInput,
    text: &str,
    receipt: Option<Receipt>,
) {
    let arrived = Instant::now();
    let spec = match spec::parse(text) {
        Ok(spec) => spec,
        Err(error) => return service.reply_later(message.chat.id, message.id, error.to_string()),
    };
    // Refused before the image is fetched; the engine would refuse it too.
    let limits = &service.engine().config().limits;
    if let Err(error) = limits.check_steps(spec.pipeline.ops.len()) {
        let text = format!("I can't run that: {error}. Split it over several requests.");
        return service.reply_later(message.chat.id, message.id, text);
    }
    let Some(user) = message.from.as_ref() else {
        return; // channel posts have no sender to rate-limit or answer
    };
    service.accept(ImageRequest {
        chat: message.chat.id,
        reply_to: message.id,
        user: user.id,
        username: user.username.clone(),
        input,
        spec,
        arrived,
        sequence: u64::from(update.0),
        receipt,
    });
}

async fn on_callback(
    update: Update,
    query: CallbackQuery,
    service: Arc<Service>,
    receipt: ReceiptSlot,
) -> HandlerResult {
    let arrived = Instant::now();
    let preset = preset_text(&query);
    let keyboard = query.regular_message();
    let photo = keyboard_photo(&query);
    let parsed = preset.map(spec::parse);
    // The answer (and replacing the keyboard with the choice, which also stops a second
    // tap) go out from a task; the request itself is accepted here, in update order.
    let (answer, edit) = match (&parsed, keyboard, &photo) {
        (Some(Ok(_)), Some(keyboard), Some(_)) => {
            let label = KEYBOARD_PRESETS
                .iter()
                .find(|(_, text)| Some(*text) == preset)
                .map_or(preset.unwrap_or_default(), |(label, _)| label);
            (
                None,
                Some((keyboard.chat.id, keyboard.id, format!("{label}: on it."))),
            )
        }
        (Some(Err(error)), _, _) => (Some(error.to_string()), None),
        _ => (
            Some("That photo is no longer available; please send it again.".to_string()),
            None,
        ),
    };
    let worker = Arc::clone(&service);
    let id = query.id.clone();
    service.spawn(async move {
        if let Err(error) = worker
            .telegram()
            .answer_callback(&id, answer.as_deref())
            .await
        {
            tracing::warn!(%error, "answering a button failed");
        }
        if let Some((chat, message, text)) = edit
            && let Err(error) = worker.telegram().edit_text(chat, message, &text).await
        {
            tracing::warn!(%error, "replacing the keyboard failed");
        }
    });
    if let (Some(Ok(spec)), Some((chat, photo_id, input))) = (parsed, photo) {
        service.accept(ImageRequest {
            chat,
            reply_to: photo_id,
            user: query.from.id,
            username: query.from.username.clone(),
            input,
            spec,
            arrived,
            sequence: u64::from(update.id.0),
            receipt: receipt.take(),
        });
    }
    Ok(())
}

/// Text that is neither a known command nor an image: explained in private chats; in groups
/// (where most messages are not for the bot) nothing is said.
async fn on_other_message(message: Message, service: Arc<Service>) -> HandlerResult {
    let text = match message.text() {
        _ if !message.chat.is_private() => return Ok(()),
        Some(text) if text.starts_with('/') => {
            let name = text.split_whitespace().next().unwrap_or(text);
            format!("Unknown command {name}. /help lists what I understand.")
        }
        // Telegram turns a GIF sent as such into an MP4 video (an "animation").
        _ if message.animation().is_some()
            || message.video().is_some()
            || message.video_note().is_some() =>
        {
            "That's a video (Telegram sends GIFs as MP4 videos), and I don't process video. \
             Send a photo, or the GIF as a file (its first frame is processed)."
                .to_string()
        }
        _ if message.document().is_some() => {
            "That file isn't an image I can read. Send a JPEG, PNG, WebP, GIF, HEIC or AVIF."
                .to_string()
        }
        _ => "Send me a photo (with a caption like `fit 800`), or /help.".to_string(),
    };
    service.tell_once_a_minute(message.chat.id, message.id, text);
    Ok(())
}
