//! What a user asked for in a caption, `/again` or a keyboard button: the engine's pipeline
//! text (`fit:800|gray`) or a friendlier form with spaces (`fit 800 gray blur 2`), plus
//! delivery words (`file`). Unknown words are errors that name them; nothing is ignored.

use prism_engine::Pipeline;

/// Keyboard presets offered when a photo arrives without a caption: (button, pipeline).
pub const KEYBOARD_PRESETS: &[(&str, &str)] = &[
    ("Thumbnail", "thumbnail"),
    ("Sticker", "sticker"),
    ("Avatar", "avatar"),
    ("Compress", "compress"),
    ("Gray", "gray"),
    ("Sharpen", "sharpen:1"),
    ("Rotate", "rotate:90"),
];

pub const EXAMPLE: &str = "fit 800 sharpen 0.5   or   fit:800|jpeg:85";

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub pipeline: Pipeline,
    /// The user asked for the result as a file (sendDocument).
    pub as_file: bool,
    /// The sticker preset: answer with sendSticker.
    pub sticker: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("Nothing to do: say what to do, e.g. `{EXAMPLE}`.")]
    Empty,
    #[error("Unknown step `{0}`. Try e.g. `{EXAMPLE}`; /ops lists every step.")]
    UnknownStep(String),
    #[error("`{word}` is not an argument of any step. Try e.g. `{EXAMPLE}`.")]
    StrayArgument { word: String },
    #[error("{0}. Try e.g. `{EXAMPLE}`; /ops lists every step.")]
    Pipeline(String),
}

/// Step names the engine knows, presets included.
fn is_step_name(word: &str) -> bool {
    prism_engine::pipeline::is_step_name(word)
        || prism_engine::pipeline::PRESETS
            .iter()
            .any(|(name, _, _)| *name == word)
}

/// Words that change delivery rather than pixels.
const FILE_WORDS: &[&str] = &["file", "document", "doc"];

pub fn parse(text: &str) -> Result<Spec, SpecError> {
    let mut as_file = false;
    let mut sticker = false;
    let mut steps: Vec<String> = Vec::new();
    // The step being collected in the spaced form, and its arguments.
    let mut current: Option<(String, Vec<String>)> = None;
    for word in text
        .split(|c: char| c.is_whitespace() || c == '|')
        .filter(|w| !w.is_empty())
    {
        let word = word.to_ascii_lowercase();
        let name = word.split(':').next().unwrap_or_default();
        if FILE_WORDS.contains(&word.as_str()) {
            as_file = true;
            continue;
        }
        if is_step_name(name) {
            steps.extend(current.take().map(|(name, args)| join_step(&name, &args)));
            sticker |= name == "sticker";
            if word.contains(':') {
                steps.push(word);
            } else {
                current = Some((word, Vec::new()));
            }
        } else if let Some((_, args)) = current.as_mut().filter(|_| looks_like_argument(&word)) {
            args.push(word);
        } else if looks_like_argument(&word) {
            return Err(SpecError::StrayArgument { word });
        } else {
            return Err(SpecError::UnknownStep(word));
        }
    }
    steps.extend(current.take().map(|(name, args)| join_step(&name, &args)));
    if steps.is_empty() {
        return Err(SpecError::Empty);
    }
    let pipeline = steps
        .join("|")
        .parse::<Pipeline>()
        .map_err(|error| SpecError::Pipeline(error.to_string()))?;
    Ok(Spec {
        pipeline,
        as_file,
        sticker,
    })
}

/// Numbers, sizes, filters, gravities, flip axes and `lossless` follow a step name in the
/// spaced form.
fn looks_like_argument(word: &str) -> bool {
    const WORDS: &[&str] = &[
        "lanczos3",
        "mitchell",
        "catmull",
        "bilinear",
        "nearest",
        "centre",
        "center",
        "entropy",
        "attention",
        "h",
        "v",
        "lossless",
    ];
    WORDS.contains(&word)
        || word
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'x' | ',' | '-' | '+'))
}

/// `fit 800 600 mitchell` → `fit:800x600:mitchell`; `crop 1 2 3 4` → `crop:1,2,3,4`.
fn join_step(name: &str, args: &[String]) -> String {
    if args.is_empty() {
        return name.to_string();
    }
    let numbers: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| a.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    let words: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    let first = match name {
        "fit" | "fill" | "resize" if numbers.len() == 2 => numbers.join("x"),
        "crop" => numbers.join(","),
        _ => numbers.join(":"),
    };
    std::iter::once(name)
        .chain((!first.is_empty()).then_some(first.as_str()))
        .chain(words)
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        parse(text).expect(text).pipeline.canonical()
    }

    #[test]
    fn spaced_and_engine_forms_mean_the_same() {
        assert_eq!(canonical("fit 800"), canonical("fit:800"));
        assert_eq!(
            canonical("fit 800 600 mitchell"),
            canonical("fit:800x600:mitchell")
        );
        assert_eq!(canonical("gray blur 2"), canonical("gray|blur:2"));
        assert_eq!(canonical("crop 1 2 30 40"), canonical("crop:1,2,30,40"));
        assert_eq!(canonical("Flip H  jpeg 90"), canonical("flip:h|jpeg:90"));
        assert_eq!(
            canonical("fit:800 | sharpen 0.5"),
            canonical("fit:800|sharpen:0.5")
        );
        assert_eq!(canonical("brightness -20"), canonical("brightness:-20"));
        assert_eq!(canonical("fit 512 webp 70"), "fit:512x512|webp:70");
        assert_eq!(canonical("webp lossless"), "webp:lossless");
        assert_eq!(
            canonical("fill 640 640 attention"),
            "fill:640x640:attention|auto"
        );
    }

    #[test]
    fn delivery_words() {
        let spec = parse("fit 800 file").expect("valid");
        assert!(spec.as_file && !spec.sticker);
        let spec = parse("sticker").expect("valid");
        assert!(spec.sticker && !spec.as_file);
    }

    #[test]
    fn unknown_words_are_named() {
        assert_eq!(
            parse("fit 800 sparkle"),
            Err(SpecError::UnknownStep("sparkle".into()))
        );
        assert_eq!(
            parse("800"),
            Err(SpecError::StrayArgument { word: "800".into() })
        );
        assert_eq!(parse("  "), Err(SpecError::Empty));
        let error = parse("blur 900").expect_err("out of range").to_string();
        assert!(error.contains("blur"), "{error}");
        assert!(error.contains("fit 800"), "{error}");
    }

    #[test]
    fn keyboard_presets_parse() {
        for (_, text) in KEYBOARD_PRESETS {
            parse(text).expect(text);
        }
    }
}
