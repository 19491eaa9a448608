//! The text form of one step: parsing `name[:args]` and printing the canonical form.

use crate::format::OutputFormat;
use crate::ops::operation::{in_range, number, required};
use crate::ops::{self, Op, OpSpec, REGISTRY};

/// What a piece of pipeline text stands for.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    Op(Op),
    Orient(bool),
    /// Keep the input's RGB profile and values instead of converting to sRGB.
    KeepProfile,
    Format {
        format: Option<OutputFormat>,
        quality: Option<u8>,
        /// `webp:lossless`: every pixel kept.
        lossless: bool,
    },
    MaxKilobytes(u32),
    Preset(&'static str),
}

/// The steps that set how the image is read or written rather than change its pixels,
/// documented beside the operations (`prism ops`, the bot's `/ops`).
pub const SETTING_STEPS: &[OpSpec] = &[
    OpSpec {
        names: &["orient", "noorient"],
        syntax: "orient / noorient",
        about: "EXIF auto-orientation, applied first; on by default",
        example: "noorient",
    },
    OpSpec {
        names: &["keepicc"],
        syntax: "keepicc",
        about: "keep the input's RGB ICC profile and values (default: convert to sRGB)",
        example: "keepicc",
    },
    OpSpec {
        names: &["jpeg", "jpg", "auto", "png", "webp"],
        syntax: "jpeg[:Q] | png | webp[:Q] | webp:lossless | auto[:Q]",
        about: "output format (auto: JPEG if opaque, else PNG); Q 1..=100, default 85; the last one wins",
        example: "jpeg:85",
    },
    MAXKB,
];

const MAXKB: OpSpec = OpSpec {
    names: &["maxkb"],
    syntax: "maxkb:N",
    about: "output at most N KiB (lossless formats reduce colour precision to fit); 1..=51200",
    example: "maxkb:512",
};

/// Every step, operations first, for `prism ops` and the bot's `/ops`.
pub fn all_steps() -> impl Iterator<Item = &'static OpSpec> {
    REGISTRY.iter().map(|entry| entry.spec).chain(SETTING_STEPS)
}

/// Whether `name` (lower case) is a step name or alias that `parse` accepts, presets aside.
pub fn is_step_name(name: &str) -> bool {
    all_steps().any(|spec| spec.names.contains(&name))
}

/// Whether `name` is one of the [`SETTING_STEPS`].
pub fn is_setting_step(name: &str) -> bool {
    SETTING_STEPS.iter().any(|spec| spec.names.contains(&name))
}

pub(super) const MAX_KILOBYTES: (u32, u32) = (1, 51_200);
pub(super) const QUALITY: (u32, u32) = (1, 100);

/// Parses one step (already trimmed and lower-cased). Errors are the reason only; the
/// caller adds the position.
pub(super) fn parse(text: &str) -> Result<Step, String> {
    let (name, args) = match text.split_once(':') {
        Some((name, args)) => (name, Some(args)),
        None => (text, None),
    };
    if let Some(entry) = ops::lookup(name) {
        let op = (entry.parse)(args)?;
        op.validate()?;
        return Ok(Step::Op(op));
    }
    let no_args = |step: Step| match args {
        None => Ok(step),
        Some(_) => Err(format!("`{name}` takes no arguments")),
    };
    Ok(match name {
        "orient" => no_args(Step::Orient(true))?,
        "noorient" => no_args(Step::Orient(false))?,
        "keepicc" => no_args(Step::KeepProfile)?,
        "jpeg" | "jpg" | "auto" => Step::Format {
            format: (name != "auto").then_some(OutputFormat::Jpeg),
            quality: args.map(quality).transpose()?,
            lossless: false,
        },
        "png" => no_args(Step::Format {
            format: Some(OutputFormat::Png),
            quality: None,
            lossless: false,
        })?,
        "webp" => {
            let lossless = args == Some("lossless");
            Step::Format {
                format: Some(OutputFormat::Webp),
                quality: args.filter(|_| !lossless).map(quality).transpose()?,
                lossless,
            }
        }
        "maxkb" => {
            let text = required(args, &MAXKB)?;
            let kb: u32 = number(text)?;
            in_range("maxkb", kb, MAX_KILOBYTES)?;
            Step::MaxKilobytes(kb)
        }
        _ => match super::presets::lookup(name) {
            Some(preset) => no_args(Step::Preset(preset))?,
            None => return Err(format!("unknown step `{name}` (see `prism ops`)")),
        },
    })
}

fn quality(text: &str) -> Result<u8, String> {
    let q: u32 = number(text)?;
    in_range("quality", q, QUALITY)?;
    Ok(q as u8)
}

/// Filters accepted after a resampling step's size.
pub const FILTERS: &str = "lanczos3 (default), mitchell, catmull, bilinear, nearest";
