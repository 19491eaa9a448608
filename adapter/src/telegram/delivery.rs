//! How a result goes back to the user: as a photo, a document or a sticker. Telegram
//! recompresses photos, drops their alpha and refuses large ones, so those go as documents.

use prism_engine::OutputFormat;

/// sendPhoto's limits (Bot API): 10 MB, width + height at most 10000, aspect at most 20.
const PHOTO_MAX_BYTES: usize = 10 * 1000 * 1000;
const PHOTO_MAX_SIDES_SUM: u64 = 10_000;
const PHOTO_MAX_ASPECT: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    Photo,
    Document,
    Sticker,
}

impl Delivery {
    pub fn name(self) -> &'static str {
        match self {
            Delivery::Photo => "photo",
            Delivery::Document => "document",
            Delivery::Sticker => "sticker",
        }
    }
}

/// What decides the delivery.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub bytes: usize,
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
    pub format: OutputFormat,
}

/// `wants_file`: the user asked for a file or sent a document; `sticker`: the sticker preset.
pub fn choose(result: &Shape, wants_file: bool, sticker: bool) -> Delivery {
    let (w, h) = (u64::from(result.width), u64::from(result.height));
    let too_big_for_photo = result.bytes > PHOTO_MAX_BYTES
        || w + h > PHOTO_MAX_SIDES_SUM
        || w.max(h) > PHOTO_MAX_ASPECT * w.min(h).max(1);
    if sticker && result.format == OutputFormat::Webp && !wants_file {
        Delivery::Sticker
    } else if wants_file || too_big_for_photo || result.has_alpha {
        Delivery::Document
    } else {
        Delivery::Photo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(width: u32, height: u32, bytes: usize, has_alpha: bool) -> Shape {
        Shape {
            bytes,
            width,
            height,
            has_alpha,
            format: OutputFormat::Jpeg,
        }
    }

    #[test]
    fn photo_limits_send_documents() {
        assert_eq!(
            choose(&result(800, 600, 1000, false), false, false),
            Delivery::Photo
        );
        assert_eq!(
            choose(&result(800, 600, 1000, false), true, false),
            Delivery::Document
        );
        assert_eq!(
            choose(&result(800, 600, 1000, true), false, false),
            Delivery::Document
        );
        assert_eq!(
            choose(&result(800, 600, 11_000_000, false), false, false),
            Delivery::Document
        );
        assert_eq!(
            choose(&result(6000, 4001, 1000, false), false, false),
            Delivery::Document
        );
        assert_eq!(
            choose(&result(2100, 100, 1000, false), false, false),
            Delivery::Document
        );
        assert_eq!(
            choose(&result(2000, 100, 1000, false), false, false),
            Delivery::Photo
        );
    }

    #[test]
    fn stickers_are_webp() {
        let mut sticker = result(512, 384, 1000, true);
        sticker.format = OutputFormat::Webp;
        assert_eq!(choose(&sticker, false, true), Delivery::Sticker);
        assert_eq!(choose(&sticker, true, true), Delivery::Document);
    }
}
