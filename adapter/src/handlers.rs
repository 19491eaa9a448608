//! The update schema (dptree): commands, images, preset buttons, everything else. Handlers
//! answer quickly; image work is handed to the service, which spawns it.

use std::sync::Arc;
use std::time::Instant;

use teloxide::dispatching::{UpdateFilterExt, UpdateHandler};
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, Message, ReplyMarkup};

use crate::admin;
use crate::commands::{self, Command};
use crate::service::{ImageInput, ImageRequest, Service};
use crate::spec::{self, KEYBOARD_PRESETS};

pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;
type HandlerResult = Result<(), HandlerError>;

/// Callback data of the preset buttons: this prefix plus the preset's pipeline text.
const PRESET_PREFIX: &str = "preset:";

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
            [".jpg", ".jpeg", ".png", ".webp", ".gif"]
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

async fn on_command(message: Message, command: Command, service: Arc<Service>) -> HandlerResult {
    let chat = message.chat.id;
    let user = message.from.as_ref().map(|u| u.id);
    let is_admin = user.is_some_and(|id| service.config.is_admin(id));
    let text = match command {
        Command::Start => commands::start_text(),
        Command::Help => commands::help_text(),
        Command::Ops => commands::ops_text(),
        Command::Again(text) => return again(&message, &text, &service).await,
        Command::Health | Command::Performance | Command::AdminStats if !is_admin => {
            "Sorry, that command is for the bot's admins; you're not allowed to use it.".to_string()
        }
        Command::Health => admin::health(&service).await.1,
        Command::Performance => admin::performance(&service),
        Command::AdminStats => admin::admin_stats(&service).await,
    };
    service
        .telegram
        .reply(chat, Some(message.id), &text)
        .await?;
    Ok(())
}

/// `/again SPEC` in reply to an image.
async fn again(message: &Message, text: &str, service: &Arc<Service>) -> HandlerResult {
    let Some(original) = message.reply_to_message() else {
        let hint = "Reply to a photo with /again SPEC, e.g. /again fit 800 gray.";
        service
            .telegram
            .reply(message.chat.id, Some(message.id), hint)
            .await?;
        return Ok(());
    };
    let Some(input) = image_input(original) else {
        let hint = "The message you replied to has no image; reply to a photo or image file.";
        service
            .telegram
            .reply(message.chat.id, Some(message.id), hint)
            .await?;
        return Ok(());
    };
    request_or_explain(service, message, input, text).await
}

async fn on_image(message: Message, service: Arc<Service>) -> HandlerResult {
    let Some(input) = image_input(&message) else {
        return Ok(());
    };
    match message.caption() {
        Some(caption) if !caption.trim().is_empty() => {
            request_or_explain(&service, &message, input, caption).await
        }
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
            service
                .telegram
                .reply_with_markup(message.chat.id, message.id, text, markup)
                .await?;
            Ok(())
        }
    }
}

/// Parses `text` and hands the request over, or explains what is wrong with it.
async fn request_or_explain(
    service: &Arc<Service>,
    message: &Message,
    input: ImageInput,
    text: &str,
) -> HandlerResult {
    let arrived = Instant::now();
    let spec = match spec::parse(text) {
        Ok(spec) => spec,
        Err(error) => {
            service
                .telegram
                .reply(message.chat.id, Some(message.id), &error.to_string())
                .await?;
            return Ok(());
        }
    };
    let Some(user) = message.from.as_ref() else {
        return Ok(()); // channel posts have no sender to rate-limit or answer
    };
    service
        .accept(ImageRequest {
            chat: message.chat.id,
            reply_to: message.id,
            user: user.id,
            username: user.username.clone(),
            input,
            spec,
            arrived,
        })
        .await;
    Ok(())
}

async fn on_callback(query: CallbackQuery, service: Arc<Service>) -> HandlerResult {
    let arrived = Instant::now();
    let preset = query
        .data
        .as_deref()
        .and_then(|data| data.strip_prefix(PRESET_PREFIX));
    let keyboard = query.regular_message();
    let photo = keyboard
        .and_then(|m| m.reply_to_message())
        .and_then(|original| {
            image_input(original).map(|input| (original.chat.id, original.id, input))
        });
    let (Some(preset), Some(keyboard), Some((chat, photo_id, input))) = (preset, keyboard, photo)
    else {
        let text = "That photo is no longer available; please send it again.";
        service
            .telegram
            .answer_callback(&query.id, Some(text))
            .await?;
        return Ok(());
    };
    let spec = match spec::parse(preset) {
        Ok(spec) => spec,
        Err(error) => {
            service
                .telegram
                .answer_callback(&query.id, Some(&error.to_string()))
                .await?;
            return Ok(());
        }
    };
    service.telegram.answer_callback(&query.id, None).await?;
    let label = KEYBOARD_PRESETS
        .iter()
        .find(|(_, text)| *text == preset)
        .map_or(preset, |(label, _)| label);
    // Replacing the keyboard with the choice also stops a second tap.
    service
        .telegram
        .edit_text(keyboard.chat.id, keyboard.id, &format!("{label}: on it."))
        .await?;
    service
        .accept(ImageRequest {
            chat,
            reply_to: photo_id,
            user: query.from.id,
            username: query.from.username.clone(),
            input,
            spec,
            arrived,
        })
        .await;
    Ok(())
}

async fn on_other_message(message: Message, service: Arc<Service>) -> HandlerResult {
    let text = match message.text() {
        Some(text) if text.starts_with('/') => {
            let name = text.split_whitespace().next().unwrap_or(text);
            format!("Unknown command {name}. /help lists what I understand.")
        }
        _ if message.document().is_some() => {
            "That file isn't an image I can read. Send a JPEG, PNG, WebP or GIF.".to_string()
        }
        _ => "Send me a photo (with a caption like `fit 800`), or /help.".to_string(),
    };
    service
        .telegram
        .reply(message.chat.id, Some(message.id), &text)
        .await?;
    Ok(())
}
