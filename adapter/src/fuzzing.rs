//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): what the bot reads out of
//! untrusted text and update JSON, before any network or store is involved.

use prism_engine::Pipeline;
use teloxide::types::{Message, Update, UpdateKind};
use teloxide::utils::command::BotCommands;

use crate::flow::spec;
use crate::updates::commands::Command;
use crate::updates::handlers;

/// A caption or `/again` text as the bot parses it: the pipeline, or the message the user
/// would be sent.
pub fn parse_caption(text: &str) -> Result<Pipeline, String> {
    spec::parse(text)
        .map(|spec| spec.pipeline)
        .map_err(|error| error.to_string())
}

/// Reads an update as the webhook receives it and runs everything the handlers derive from it
/// before the service takes over: the command, the image and its caption, the message replied
/// to, a preset button's choice. Returns the pipelines that parsed, for the target's checks.
pub fn read_update(json: &[u8], bot_name: &str) -> Vec<Pipeline> {
    let Ok(update) = serde_json::from_slice::<Update>(json) else {
        return Vec::new();
    };
    let mut pipelines = Vec::new();
    match &update.kind {
        UpdateKind::Message(message) => read_message(message, bot_name, &mut pipelines),
        UpdateKind::CallbackQuery(query) => {
            let _ = handlers::keyboard_photo(query);
            pipelines.extend(handlers::preset_text(query).and_then(|t| parse_caption(t).ok()));
        }
        _ => {}
    }
    pipelines
}

fn read_message(message: &Message, bot_name: &str, pipelines: &mut Vec<Pipeline>) {
    if let Some(text) = message.text()
        && let Ok(Command::Again(spec_text)) = Command::parse(text, bot_name)
    {
        pipelines.extend(parse_caption(&spec_text).ok());
    }
    if handlers::image_input(message).is_some()
        && let Some(caption) = message.caption()
    {
        pipelines.extend(parse_caption(caption).ok());
    }
    if let Some(original) = message.reply_to_message() {
        let _ = handlers::image_input(original);
    }
}
