//! The text form of one step: parsing `name[:args]` and printing the canonical form.

use crate::format::OutputFormat;
use crate::ops::{Filter, FlipAxis, Gravity, Op};

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

/// Every step name `parse` accepts, presets aside: the one list the bot's caption parser
/// and the store read. `parse` refuses a name missing here, so the list cannot fall behind.
pub const STEP_NAMES: &[&str] = &[
    "fit",
    "fill",
    "resize",
    "scale",
    "longest",
    "crop",
    "rotate",
    "flip",
    "gray",
    "grey",
    "grayscale",
    "sepia",
    "invert",
    "brightness",
    "contrast",
    "saturation",
    "gamma",
    "blur",
    "sharpen",
    "pixelate",
    "orient",
    "noorient",
    "keepicc",
    "jpeg",
    "jpg",
    "auto",
    "png",
    "webp",
    "maxkb",
];

/// The names in [`STEP_NAMES`] that set how the image is read or written rather than
/// change its pixels.
pub const SETTING_STEP_NAMES: &[&str] = &[
    "orient", "noorient", "keepicc", "jpeg", "jpg", "auto", "png", "webp", "maxkb",
];

pub(super) const MAX_KILOBYTES: (u32, u32) = (1, 51_200);
pub(super) const QUALITY: (u32, u32) = (1, 100);

/// Parses one step (already trimmed and lower-cased). Errors are the reason only; the
/// caller adds the position.
pub(super) fn parse(text: &str) -> Result<Step, String> {
    let (name, args) = match text.split_once(':') {
        Some((name, args)) => (name, Some(args)),
        None => (text, None),
    };
    let no_args = |step: Step| match args {
        None => Ok(step),
        Some(_) => Err(format!("`{name}` takes no arguments")),
    };
    let need = || args.ok_or_else(|| format!("`{name}` needs an argument, e.g. {}", example(name)));
    if !STEP_NAMES.contains(&name) {
        return match super::presets::lookup(name) {
            Some(preset) => no_args(Step::Preset(preset)),
            None => Err(format!("unknown step `{name}` (see `prism ops`)")),
        };
    }
    let step = match name {
        "fit" | "fill" | "resize" => {
            let (size, filter, gravity) = split_options(need()?)?;
            if gravity.is_some() && name != "fill" {
                return Err(format!("{name} does not crop, so it takes no gravity"));
            }
            let (width, height) = parse_box(size)?;
            Step::Op(match name {
                "fit" => Op::Fit {
                    width,
                    height,
                    filter,
                },
                "fill" => Op::Fill {
                    width,
                    height,
                    filter,
                    gravity: gravity.unwrap_or_default(),
                },
                _ => Op::Resize {
                    width,
                    height,
                    filter,
                },
            })
        }
        "scale" => {
            let (factor, filter) = split_filter(need()?)?;
            Step::Op(Op::Scale {
                factor: number(factor)?,
                filter,
            })
        }
        "longest" => {
            let (size, filter) = split_filter(need()?)?;
            Step::Op(Op::Longest {
                size: number(size)?,
                filter,
            })
        }
        "crop" => {
            let parts: Vec<&str> = need()?.split(',').collect();
            let [x, y, width, height] = parts[..] else {
                return Err("crop needs X,Y,W,H, e.g. crop:10,20,300,200".into());
            };
            Step::Op(Op::Crop {
                x: number(x)?,
                y: number(y)?,
                width: number(width)?,
                height: number(height)?,
            })
        }
        "rotate" => Step::Op(Op::Rotate {
            degrees: number(need()?)?,
        }),
        "flip" => Step::Op(Op::Flip {
            axis: match need()? {
                "h" => FlipAxis::H,
                "v" => FlipAxis::V,
                other => return Err(format!("flip axis `{other}` must be h or v")),
            },
        }),
        "gray" | "grey" | "grayscale" => no_args(Step::Op(Op::Gray))?,
        "sepia" => no_args(Step::Op(Op::Sepia))?,
        "invert" => no_args(Step::Op(Op::Invert))?,
        "brightness" => Step::Op(Op::Brightness {
            value: number(need()?)?,
        }),
        "contrast" => Step::Op(Op::Contrast {
            value: number(need()?)?,
        }),
        "saturation" => Step::Op(Op::Saturation {
            value: number(need()?)?,
        }),
        "gamma" => Step::Op(Op::Gamma {
            value: number(need()?)?,
        }),
        "blur" => Step::Op(Op::Blur {
            sigma: number(need()?)?,
        }),
        "sharpen" => Step::Op(Op::Sharpen {
            amount: number(need()?)?,
        }),
        "pixelate" => Step::Op(Op::Pixelate {
            size: number(need()?)?,
        }),
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
            let kb: u32 = number(need()?)?;
            in_range("maxkb", kb, MAX_KILOBYTES)?;
            Step::MaxKilobytes(kb)
        }
        _ => return Err(format!("step `{name}` is listed but has no parser (a bug)")),
    };
    if let Step::Op(op) = &step {
        op.validate()?;
    }
    Ok(step)
}

fn example(name: &str) -> &'static str {
    match name {
        "fit" | "fill" | "resize" => "fit:1280x1280",
        "scale" => "scale:0.5",
        "longest" => "longest:512",
        "crop" => "crop:10,20,300,200",
        "rotate" => "rotate:90",
        "flip" => "flip:h",
        "gamma" => "gamma:2.2",
        "blur" => "blur:2",
        "sharpen" => "sharpen:0.5",
        "pixelate" => "pixelate:8",
        "maxkb" => "maxkb:512",
        _ => "brightness:20",
    }
}

fn split_filter(args: &str) -> Result<(&str, Filter), String> {
    match split_options(args)? {
        (value, filter, None) => Ok((value, filter)),
        (_, _, Some(gravity)) => Err(format!("only fill takes a gravity (`{}`)", gravity.name())),
    }
}

/// `VALUE[:FILTER][:GRAVITY]`, the two names in either order.
fn split_options(args: &str) -> Result<(&str, Filter, Option<Gravity>), String> {
    let mut parts = args.split(':');
    let value = parts.next().unwrap_or_default();
    let (mut filter, mut gravity) = (None, None);
    for name in parts {
        let repeated = if let Some(f) = Filter::from_name(name) {
            filter.replace(f).is_some()
        } else if let Some(g) = Gravity::from_name(name) {
            gravity.replace(g).is_some()
        } else {
            let filters: Vec<&str> = Filter::ALL.iter().map(|f| f.name()).collect();
            let gravities: Vec<&str> = Gravity::ALL.iter().map(|g| g.name()).collect();
            return Err(format!(
                "unknown filter `{name}` (one of {}; fill also takes a gravity: {})",
                filters.join(", "),
                gravities.join(", ")
            ));
        };
        if repeated {
            return Err(format!("`{name}`: a second filter or gravity"));
        }
    }
    Ok((value, filter.unwrap_or_default(), gravity))
}

/// `WxH`, or a single number for a square box.
fn parse_box(text: &str) -> Result<(u32, u32), String> {
    match text.split_once('x') {
        Some((w, h)) => Ok((number(w)?, number(h)?)),
        None => {
            let side = number(text)?;
            Ok((side, side))
        }
    }
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a valid number here"))
}

fn in_range(name: &str, value: u32, (low, high): (u32, u32)) -> Result<(), String> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(format!("{name} {value} is out of range {low}..={high}"))
    }
}

fn quality(text: &str) -> Result<u8, String> {
    let q: u32 = number(text)?;
    in_range("quality", q, QUALITY)?;
    Ok(q as u8)
}

/// The canonical text of an operation: shortest numbers, default filter omitted.
pub(super) fn format_op(op: &Op) -> String {
    let filter = |f: &Filter| {
        if *f == Filter::default() {
            String::new()
        } else {
            format!(":{}", f.name())
        }
    };
    match op {
        Op::Fit {
            width,
            height,
            filter: f,
        } => format!("fit:{width}x{height}{}", filter(f)),
        Op::Fill {
            width,
            height,
            filter: f,
            gravity,
        } => {
            let gravity = match gravity {
                Gravity::Centre => String::new(),
                other => format!(":{}", other.name()),
            };
            format!("fill:{width}x{height}{}{gravity}", filter(f))
        }
        Op::Resize {
            width,
            height,
            filter: f,
        } => format!("resize:{width}x{height}{}", filter(f)),
        Op::Scale { factor, filter: f } => format!("scale:{factor}{}", filter(f)),
        Op::Longest { size, filter: f } => format!("longest:{size}{}", filter(f)),
        Op::Crop {
            x,
            y,
            width,
            height,
        } => format!("crop:{x},{y},{width},{height}"),
        Op::Rotate { degrees } => format!("rotate:{degrees}"),
        Op::Flip { axis: FlipAxis::H } => "flip:h".into(),
        Op::Flip { axis: FlipAxis::V } => "flip:v".into(),
        Op::Gray => "gray".into(),
        Op::Brightness { value } => format!("brightness:{value}"),
        Op::Contrast { value } => format!("contrast:{value}"),
        Op::Saturation { value } => format!("saturation:{value}"),
        Op::Gamma { value } => format!("gamma:{value}"),
        Op::Sepia => "sepia".into(),
        Op::Invert => "invert".into(),
        Op::Blur { sigma } => format!("blur:{sigma}"),
        Op::Sharpen { amount } => format!("sharpen:{amount}"),
        Op::Pixelate { size } => format!("pixelate:{size}"),
    }
}

/// One line per step for `prism ops` and the bot's help: syntax, range, meaning.
pub const OPERATIONS: &[(&str, &str)] = &[
    (
        "fit:WxH[:FILTER]",
        "fit inside the box, keep aspect, never enlarge (fit:N = NxN); W,H 1..=16384",
    ),
    (
        "fill:WxH[:FILTER][:GRAVITY]",
        "cover the box exactly, crop the overflow (enlarges if needed); GRAVITY centre (default), entropy (busiest part) or attention (edges, colour, skin)",
    ),
    ("resize:WxH[:FILTER]", "exactly WxH, aspect not kept"),
    ("scale:F[:FILTER]", "multiply both sides by F; 0.01..=10"),
    (
        "longest:N[:FILTER]",
        "longest side becomes exactly N, aspect kept; 1..=16384",
    ),
    (
        "crop:X,Y,W,H",
        "cut out W x H at X,Y (must lie inside the image)",
    ),
    ("rotate:D", "turn clockwise by 90, 180 or 270 degrees"),
    ("flip:h|v", "mirror left-right (h) or top-bottom (v)"),
    (
        "orient / noorient",
        "EXIF auto-orientation, applied first; on by default",
    ),
    (
        "keepicc",
        "keep the input's RGB ICC profile and values (default: convert to sRGB)",
    ),
    ("gray", "grayscale (Rec. 601 luma)"),
    ("brightness:V", "add V% of full scale; -100..=100"),
    (
        "contrast:V",
        "scale distance from mid-grey by ((100+V)/100)^2; -100..=100",
    ),
    (
        "saturation:V",
        "scale colourfulness by (100+V)/100; -100..=100",
    ),
    ("gamma:G", "out = in^(1/G); 0.1..=10 (above 1 brightens)"),
    ("sepia", "sepia tone"),
    ("invert", "negative"),
    ("blur:SIGMA", "Gaussian blur; 0.1..=50"),
    ("sharpen:AMOUNT", "unsharp mask (sigma 1); 0.1..=10"),
    (
        "pixelate:N",
        "N x N blocks of their average colour; 2..=1024",
    ),
    (
        "jpeg[:Q] | png | webp[:Q] | webp:lossless | auto[:Q]",
        "output format (auto: JPEG if opaque, else PNG); Q 1..=100, default 85; the last one wins",
    ),
    (
        "maxkb:N",
        "output at most N KiB (lossless formats reduce colour precision to fit); 1..=51200",
    ),
];

/// Filters accepted after a resampling step's size.
pub const FILTERS: &str = "lanczos3 (default), mitchell, catmull, bilinear, nearest";
