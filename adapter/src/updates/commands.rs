//! The bot's commands and the texts of /start, /help and /ops.

use teloxide::utils::command::BotCommands;

use crate::flow::spec::KEYBOARD_PRESETS;

#[derive(BotCommands, Clone, Debug, PartialEq)]
#[command(rename_rule = "snake_case", description = "Commands:")]
pub enum Command {
    #[command(description = "what this bot does")]
    Start,
    #[command(description = "this help, with examples")]
    Help,
    #[command(description = "every operation and preset")]
    Ops,
    #[command(description = "reply to a photo to process it again, e.g. /again fit 800 gray")]
    Again(String),
    #[command(description = "(admins) engine, cache, store and Telegram status")]
    Health,
    #[command(description = "(admins) throughput, latency by stage, queue, cache, memory")]
    Performance,
    #[command(description = "(admins) users, requests, top operations, errors by kind")]
    AdminStats,
}

pub fn start_text() -> String {
    format!(
        "Hi! I'm Prism. Send me a photo and I'll send it back resized, cropped, rotated, \
         filtered, compressed or as a sticker.\n\n{}",
        help_text()
    )
}

pub fn help_text() -> String {
    let presets: Vec<&str> = KEYBOARD_PRESETS.iter().map(|(_, text)| *text).collect();
    format!(
        "How to use:\n\
         • Send a photo with a caption saying what to do, e.g.\n\
         \u{20}   fit 800\n\
         \u{20}   gray blur 2\n\
         \u{20}   fill 640 640 jpeg 90\n\
         \u{20}   sticker\n\
         \u{20}   fit:1280|sharpen:0.5|jpeg:85   (the engine's own form)\n\
         • Add `file` to get the result as a file (no Telegram recompression); images sent \
         as files come back as files.\n\
         • Send a photo without a caption to pick a preset: {}.\n\
         • Reply to a photo with /again SPEC to process it again.\n\
         • Files up to 20 MB.\n\n{}",
        presets.join(", "),
        Command::descriptions()
    )
}

pub fn ops_text() -> String {
    let mut text = String::from("Operations (chain them; spaces or | between steps):\n");
    for spec in prism_engine::pipeline::all_steps() {
        text.push_str(&format!("• {} — {}\n", spec.syntax, spec.about));
    }
    text.push_str(&format!(
        "Filters: {}\n\nPresets:\n",
        prism_engine::pipeline::FILTERS
    ));
    for (name, expansion, meaning) in prism_engine::pipeline::PRESETS {
        text.push_str(&format!("• {name} = {expansion} — {meaning}\n"));
    }
    text.push_str("\nDelivery: add `file` to get a document instead of a photo.");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_arguments() {
        let again = Command::parse("/again fit 800 gray", "prism_bot").ok();
        assert_eq!(again, Some(Command::Again("fit 800 gray".into())));
        let stats = Command::parse("/admin_stats", "prism_bot").ok();
        assert_eq!(stats, Some(Command::AdminStats));
        assert!(help_text().contains("/again"));
        assert!(ops_text().contains("sticker"));
    }
}
