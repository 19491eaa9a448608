//! Named presets: each expands to ordinary pipeline text.

/// (name, expansion, what it is for)
pub const PRESETS: &[(&str, &str, &str)] = &[
    (
        "thumbnail",
        "fit:320x320|auto:80",
        "small preview, inside 320x320",
    ),
    (
        "sticker",
        "longest:512|webp:85|maxkb:512",
        "Telegram sticker: longest side exactly 512 px, lossy WebP (what sendSticker uploads), at most 512 KB",
    ),
    (
        "avatar",
        "fill:640x640:attention|jpeg:90",
        "square 640x640 profile picture, cropped around the subject (edges, colour, skin)",
    ),
    (
        "compress",
        "fit:2048x2048|jpeg:75",
        "smaller file for sharing: inside 2048x2048, JPEG quality 75",
    ),
];

/// The expansion of a preset, by name.
pub(super) fn lookup(name: &str) -> Option<&'static str> {
    PRESETS
        .iter()
        .find(|(preset, _, _)| *preset == name)
        .map(|(_, expansion, _)| *expansion)
}
