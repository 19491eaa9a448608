//! Pipelines: parsed once from text (or deserialised), printed in one canonical form
//! (the cache key), and planned against a probed header before any pixel is decoded.

mod presets;
mod step;

use serde::{Deserialize, Serialize};

pub use presets::PRESETS;
pub use step::{FILTERS, SETTING_STEPS, all_steps, is_setting_step, is_step_name};

use crate::codec::ImageInfo;
use crate::error::{Error, PipelineError};
use crate::format::OutputFormat;
use crate::limits::Limits;
use crate::ops::Op;
use step::Step;

/// JPEG quality when none is given.
pub const DEFAULT_QUALITY: u8 = 85;

/// How the result is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutputSpec {
    /// `None` picks JPEG for opaque results and PNG when transparency remains.
    pub format: Option<OutputFormat>,
    /// JPEG and lossy WebP quality 1..=100 (also used by `auto` when it picks JPEG).
    pub quality: u8,
    /// WebP keeps every pixel (`webp:lossless`) instead of encoding at `quality`.
    pub lossless: bool,
    /// Upper bound on the output size in KiB.
    pub max_kilobytes: Option<u32>,
}

impl Default for OutputSpec {
    fn default() -> Self {
        OutputSpec {
            format: None,
            quality: DEFAULT_QUALITY,
            lossless: false,
            max_kilobytes: None,
        }
    }
}

/// A validated sequence of operations plus the output settings.
///
/// ```
/// use prism_engine::Pipeline;
/// let p: Pipeline = "orient | fit:1280 | sharpen:0.50 | jpeg:85".parse().unwrap();
/// assert_eq!(p.canonical(), "fit:1280x1280|sharpen:0.5|jpeg:85");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pipeline {
    /// Apply the EXIF orientation before everything else (default true).
    pub auto_orient: bool,
    /// Keep the input's RGB ICC profile and untouched values (`keepicc`); by default
    /// profiled pixels are converted to sRGB and the output carries no profile.
    pub keep_icc: bool,
    pub ops: Vec<Op>,
    pub output: OutputSpec,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            auto_orient: true,
            keep_icc: false,
            ops: Vec::new(),
            output: OutputSpec::default(),
        }
    }
}

/// What runs on the decoded frame, and the sizes worked out from the header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    /// The steps that turn the picture upright (with auto-orientation), then the ops.
    pub steps: Vec<Op>,
    /// Output size of each step, in order.
    pub sizes: Vec<(u32, u32)>,
    /// How many times smaller the first step makes the image, when it resamples (the
    /// decoder may skip detail that cannot survive it); 1.0 otherwise.
    pub decode_shrink: f64,
    /// How many of `steps` turn the picture upright (they come first).
    pub upright_steps: usize,
}

impl Plan {
    /// The steps' output sizes for a frame decoded at `decoded` instead of the header's
    /// size (a JPEG at 1/8 scale): the orientation steps follow the frame; from the first
    /// op on the planned sizes stand, since that op resamples to its planned size from
    /// whatever it is given.
    pub fn sizes_from(&self, decoded: (u32, u32)) -> Result<Vec<(u32, u32)>, Error> {
        let mut sizes = self.sizes.clone();
        let mut size = decoded;
        for (step, planned) in self.steps.iter().zip(&mut sizes).take(self.upright_steps) {
            size = step
                .output_size(size.0, size.1)
                .map_err(|reason| Error::Internal(format!("orientation: {reason}")))?;
            *planned = size;
        }
        Ok(sizes)
    }
}

impl std::str::FromStr for Pipeline {
    type Err = PipelineError;

    fn from_str(text: &str) -> Result<Pipeline, PipelineError> {
        let mut pipeline = Pipeline::default();
        for (index, raw) in text.split('|').enumerate() {
            let trimmed = raw.trim().to_ascii_lowercase();
            if trimmed.is_empty() {
                continue;
            }
            let step = step::parse(&trimmed)
                .map_err(|reason| PipelineError::new(index + 1, raw.trim(), reason))?;
            pipeline.add(step, index + 1, raw.trim())?;
        }
        Ok(pipeline)
    }
}

impl Pipeline {
    fn add(&mut self, step: Step, index: usize, text: &str) -> Result<(), PipelineError> {
        match step {
            Step::Op(op) => self.ops.push(op),
            Step::Orient(on) => self.auto_orient = on,
            Step::KeepProfile => self.keep_icc = true,
            Step::Format {
                format,
                quality,
                lossless,
            } => {
                self.output.format = format;
                self.output.quality = quality.unwrap_or(DEFAULT_QUALITY);
                self.output.lossless = lossless;
            }
            Step::MaxKilobytes(kb) => self.output.max_kilobytes = Some(kb),
            Step::Preset(expansion) => {
                for part in expansion.split('|') {
                    let inner = step::parse(part).map_err(|reason| {
                        PipelineError::new(index, text, format!("preset step `{part}`: {reason}"))
                    })?;
                    self.add(inner, index, text)?;
                }
            }
        }
        Ok(())
    }

    /// The one text for this meaning: `noorient` if orientation is off, `keepicc`, the ops with
    /// shortest numbers and default filters omitted, then the output step.
    pub fn canonical(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if !self.auto_orient {
            parts.push("noorient".into());
        }
        if self.keep_icc {
            parts.push("keepicc".into());
        }
        parts.extend(self.ops.iter().map(Op::canonical));
        parts.push(match self.output.format {
            None if self.output.quality == DEFAULT_QUALITY => "auto".into(),
            None => format!("auto:{}", self.output.quality),
            Some(OutputFormat::Jpeg) => format!("jpeg:{}", self.output.quality),
            Some(OutputFormat::Png) => "png".into(),
            Some(OutputFormat::Webp) if self.output.lossless => "webp:lossless".into(),
            Some(OutputFormat::Webp) => format!("webp:{}", self.output.quality),
        });
        if let Some(kb) = self.output.max_kilobytes {
            parts.push(format!("maxkb:{kb}"));
        }
        parts.join("|")
    }

    /// Checks every argument (parsed pipelines are already valid; built or deserialised
    /// ones are checked here and again by the engine).
    pub fn validate(&self) -> Result<(), PipelineError> {
        for (index, op) in self.ops.iter().enumerate() {
            op.validate()
                .map_err(|reason| PipelineError::new(index + 1, op.canonical(), reason))?;
        }
        let output_error = |reason: String| PipelineError::new(0, "output", reason);
        let (low, high) = step::QUALITY;
        if !(low..=high).contains(&u32::from(self.output.quality)) {
            return Err(output_error(format!(
                "quality {} is out of range {low}..={high}",
                self.output.quality
            )));
        }
        if let Some(kb) = self.output.max_kilobytes {
            let (low, high) = step::MAX_KILOBYTES;
            if !(low..=high).contains(&kb) {
                return Err(output_error(format!(
                    "maxkb {kb} is out of range {low}..={high}"
                )));
            }
        }
        Ok(())
    }

    /// Works out every intermediate size from the header and checks it against the limits.
    pub(crate) fn plan(&self, info: &ImageInfo, limits: &Limits) -> Result<Plan, Error> {
        limits.check_steps(self.ops.len())?;
        self.validate()?;
        let orientation = if self.auto_orient {
            info.orientation
        } else {
            crate::Orientation::Normal
        };
        let upright = crate::ops::orientation_steps(orientation);
        let mut sizes = Vec::with_capacity(upright.len() + self.ops.len());
        let mut size = (info.width, info.height);
        for step in &upright {
            size = step
                .output_size(size.0, size.1)
                .map_err(|reason| Error::Internal(format!("orientation: {reason}")))?;
            sizes.push(size);
        }
        let start = size;
        for (index, op) in self.ops.iter().enumerate() {
            size = op
                .output_size(size.0, size.1)
                .map_err(|reason| PipelineError::new(index + 1, op.canonical(), reason))?;
            limits.check_output_pixels(size.0, size.1)?;
            sizes.push(size);
        }
        let decode_shrink = match (self.ops.first(), sizes.get(upright.len())) {
            (Some(op), Some(&target)) if op.is_resample() => shrink_factor(start, target),
            _ => 1.0,
        };
        let upright_steps = upright.len();
        let mut steps = upright;
        steps.extend(self.ops.iter().cloned());
        Ok(Plan {
            steps,
            sizes,
            decode_shrink,
            upright_steps,
        })
    }
}

/// The smaller of the two per-axis reductions (for `fill` too: it scales by the larger
/// ratio to cover the box, then crops).
fn shrink_factor((width, height): (u32, u32), (target_width, target_height): (u32, u32)) -> f64 {
    (f64::from(width) / f64::from(target_width)).min(f64::from(height) / f64::from(target_height))
}

impl std::fmt::Display for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.canonical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Filter, Fit};

    fn canonical(text: &str) -> String {
        text.parse::<Pipeline>().unwrap().canonical()
    }

    #[test]
    fn same_meaning_same_text() {
        assert_eq!(canonical("fit:800"), "fit:800x800|auto");
        assert_eq!(
            canonical(" ORIENT | fit:800x800:lanczos3 |"),
            "fit:800x800|auto"
        );
        assert_eq!(canonical("sharpen:0.50|jpeg"), "sharpen:0.5|jpeg:85");
        assert_eq!(canonical("jpeg:70|png"), "png");
        assert_eq!(
            canonical("noorient|scale:0.5:nearest"),
            "noorient|scale:0.5:nearest|auto"
        );
        assert_eq!(canonical(""), "auto");
        assert_eq!(canonical("webp"), "webp:85");
        assert_eq!(canonical("fill:64:center"), "fill:64x64|auto");
        assert_eq!(
            canonical("fill:64x32:entropy:mitchell"),
            "fill:64x32:mitchell:entropy|auto"
        );
        assert_eq!(canonical("fill:9:attention"), "fill:9x9:attention|auto");
        assert_eq!(canonical("webp:60|maxkb:50"), "webp:60|maxkb:50");
        assert_eq!(canonical("webp:lossless"), "webp:lossless");
        assert_eq!(canonical("webp:lossless|jpeg:70"), "jpeg:70");
        for text in [
            "fill:10x20:mitchell|gray|blur:1.5|auto:70|maxkb:100",
            "crop:1,2,3,4|rotate:270|flip:v",
            "webp:lossless",
            "webp:70",
            "fill:5x7:nearest:attention",
        ] {
            assert_eq!(
                canonical(&canonical(text)),
                canonical(text),
                "canonical text parses to itself"
            );
        }
    }

    #[test]
    fn every_listed_name_has_a_parser() {
        for name in all_steps().flat_map(|spec| spec.names) {
            assert!(is_step_name(name));
            if let Err(reason) = step::parse(name) {
                assert!(reason.contains("needs an argument"), "{name}: {reason}");
            }
        }
    }

    /// Each operation's example parses and prints as itself, its test cases are valid and
    /// their canonical text parses back to them, and the README's table lists its syntax.
    #[test]
    fn every_operation_is_complete() {
        const README: &str = include_str!("../../../README.md");
        for entry in crate::ops::REGISTRY {
            let spec = entry.spec;
            let example: Pipeline = spec.example.parse().unwrap();
            let texts: Vec<String> = example.ops.iter().map(Op::canonical).collect();
            assert_eq!(texts, [spec.example], "{}", spec.name());
            let cases = (entry.test_cases)((64, 48));
            assert!(!cases.is_empty(), "{} has no test cases", spec.name());
            for op in cases {
                op.validate().unwrap();
                assert_eq!(op.spec().name(), spec.name());
                let parsed: Pipeline = op.canonical().parse().unwrap();
                assert_eq!(parsed.ops, [op]);
            }
            let row = format!("| `{}` |", spec.syntax.replace('|', "\\|"));
            assert!(README.contains(&row), "README's table lacks {row}");
        }
    }

    #[test]
    fn presets_expand() {
        assert_eq!(canonical("sticker"), "longest:512|webp:85|maxkb:512");
        assert_eq!(canonical("avatar"), "fill:640x640:attention|jpeg:90");
        assert_eq!(canonical("thumbnail|gray"), "fit:320x320|gray|auto:80");
        assert_eq!(canonical("compress"), "fit:2048x2048|jpeg:75");
    }

    #[test]
    fn errors_point_at_the_step() {
        let error = "fit:100|brightness:200|gray"
            .parse::<Pipeline>()
            .unwrap_err();
        assert_eq!((error.step, error.text.as_str()), (2, "brightness:200"));
        assert!(error.reason.contains("-100..=100"), "{error}");
        let cases = [
            ("blurry:3", "unknown step"),
            ("fit:axb", "not a valid number"),
            ("fit:10x10:cubic", "unknown filter"),
            ("gray:3", "takes no arguments"),
            ("rotate:45", "90, 180 or 270"),
            ("crop:1,2,3", "X,Y,W,H"),
            ("jpeg:0", "out of range"),
            ("webp:101", "out of range"),
            ("fit:10:attention", "no gravity"),
            ("scale:0.5:entropy", "only fill"),
            ("fill:10:entropy:attention", "a second filter or gravity"),
            ("fill:10:north", "unknown filter"),
            ("webp:best", "not a valid number"),
            ("scale", "needs an argument"),
            ("flip:x", "h or v"),
        ];
        for (text, expected) in cases {
            let error = text.parse::<Pipeline>().unwrap_err();
            assert!(error.to_string().contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn serde_form_round_trips_and_is_validated() {
        let pipeline: Pipeline = "fill:100x50:catmull|pixelate:4|webp".parse().unwrap();
        let json = serde_json::to_string(&pipeline).unwrap();
        let back: Pipeline = serde_json::from_str(&json).unwrap();
        assert_eq!(back, pipeline);
        let loose: Pipeline =
            serde_json::from_str(r#"{"ops":[{"op":"fit","width":10,"height":10}]}"#).unwrap();
        assert_eq!(
            loose.ops,
            vec![Op::Fit(Fit {
                width: 10,
                height: 10,
                filter: Filter::Lanczos3
            })]
        );
        let bad: Pipeline = serde_json::from_str(r#"{"ops":[{"op":"blur","sigma":-1}]}"#).unwrap();
        assert!(bad.validate().is_err());
    }

    fn info(width: u32, height: u32, orientation: crate::Orientation) -> ImageInfo {
        ImageInfo {
            format: crate::ImageFormat::Jpeg,
            width,
            height,
            orientation,
            has_icc_profile: false,
            has_alpha: false,
            byte_len: 0,
        }
    }

    #[test]
    fn plans_sizes_limits_and_decoder_shrink() {
        let limits = Limits::default();
        let pipeline: Pipeline = "fit:1000|rotate:90|crop:0,0,100,200".parse().unwrap();
        let plan = pipeline
            .plan(&info(4000, 2000, crate::Orientation::Rotate90), &limits)
            .unwrap();
        assert_eq!(
            plan.sizes,
            vec![(2000, 4000), (500, 1000), (1000, 500), (100, 200)],
            "the quarter turn that stands the picture upright comes first"
        );
        assert_eq!(
            plan.steps[0],
            crate::ops::orientation_steps(crate::Orientation::Rotate90)[0]
        );
        assert_eq!(plan.decode_shrink, 4.0);
        let crop_first: Pipeline = "crop:0,0,10,10|fit:5".parse().unwrap();
        let plan = crop_first
            .plan(&info(40, 20, crate::Orientation::Normal), &limits)
            .unwrap();
        assert_eq!(
            plan.decode_shrink, 1.0,
            "only a first resampling step counts"
        );

        let huge: Pipeline = "scale:10".parse().unwrap();
        let error = huge
            .plan(&info(4000, 3000, crate::Orientation::Normal), &limits)
            .unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::Limits);

        let outside: Pipeline = "crop:0,0,50,50".parse().unwrap();
        let error = outside
            .plan(&info(40, 20, crate::Orientation::Normal), &limits)
            .unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::Pipeline);
    }

    #[test]
    fn a_pipeline_longer_than_max_steps_is_refused_naming_the_limit() {
        let limits = Limits::default();
        let at_limit: Pipeline = vec!["gray"; limits.max_steps].join("|").parse().unwrap();
        let photo = info(40, 20, crate::Orientation::Normal);
        assert!(at_limit.plan(&photo, &limits).is_ok());
        let over: Pipeline = vec!["gray"; 100].join("|").parse().unwrap();
        let error = over.plan(&photo, &limits).unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::Limits);
        assert!(error.to_string().contains("100 steps"), "{error}");
        assert!(error.to_string().contains("32 (max_steps)"), "{error}");
    }
}
