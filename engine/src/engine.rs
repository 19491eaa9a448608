//! The `Engine`: probe → plan → decode → orient → ops → encode, with timings.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::codec::{self, ImageInfo};
use crate::error::Error;
use crate::format::OutputFormat;
use crate::frame::Frame;
use crate::limits::Limits;
use crate::ops::geometry;
use crate::pipeline::{OutputSpec, Pipeline};

/// Engine settings.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct EngineConfig {
    pub limits: Limits,
}

/// Time spent in each stage of one image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    pub probe: Duration,
    pub decode: Duration,
    pub ops: Duration,
    pub encode: Duration,
}

impl Timings {
    pub fn total(&self) -> Duration {
        self.probe + self.decode + self.ops + self.encode
    }
}

/// A processed image and what is known about it.
#[derive(Debug, Clone, Serialize)]
pub struct Output {
    /// The encoded image: oriented, without EXIF, with the input's RGB ICC profile if any.
    #[serde(skip)]
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
    /// What the input's header said.
    pub input: ImageInfo,
    pub timings: Timings,
}

/// A configured image engine. Cheap to share: `process` takes `&self`.
///
/// ```
/// use prism_engine::{Engine, EngineConfig, Pipeline};
/// let engine = Engine::new(EngineConfig::default());
/// let png = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pngsuite/basn2c08.png")).unwrap();
/// let pipeline: Pipeline = "fit:16x16|gray|png".parse().unwrap();
/// let output = engine.process(&png, &pipeline).unwrap();
/// assert_eq!((output.width, output.height), (16, 16));
/// assert!(output.bytes.starts_with(b"\x89PNG"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Engine {
    config: EngineConfig,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        Engine { config }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Reads the header only and checks the input limits.
    pub fn probe(&self, bytes: &[u8]) -> Result<ImageInfo, Error> {
        codec::probe(bytes, &self.config.limits)
    }

    /// Runs `pipeline` on `bytes`. Never panics: a panic inside a codec or an op comes back
    /// as [`Error::Internal`].
    pub fn process(&self, bytes: &[u8], pipeline: &Pipeline) -> Result<Output, Error> {
        guarded(|| self.run(bytes, pipeline))
    }

    /// The decode stage alone (header probed and limits checked first): pixels in stored
    /// orientation, for embedders that run their own operations, and for benchmarks.
    pub fn decode(&self, bytes: &[u8]) -> Result<(ImageInfo, Frame), Error> {
        guarded(|| {
            let info = self.probe(bytes)?;
            Ok((info.clone(), codec::decode(bytes, &info)?.frame))
        })
    }

    /// The encode stage alone (no colour profile is attached).
    pub fn encode(
        &self,
        frame: Frame,
        output: &OutputSpec,
    ) -> Result<(OutputFormat, Vec<u8>), Error> {
        guarded(|| encode(frame, output, None))
    }

    fn run(&self, bytes: &[u8], pipeline: &Pipeline) -> Result<Output, Error> {
        let mut timings = Timings::default();
        let mut clock = Instant::now();
        let mut lap = |slot: &mut Duration| {
            let now = Instant::now();
            *slot = now - clock;
            clock = now;
        };

        let info = self.probe(bytes)?;
        let plan = pipeline.plan(&info, &self.config.limits)?;
        lap(&mut timings.probe);

        let decoded = codec::decode(bytes, &info)?;
        lap(&mut timings.decode);

        let mut frame = decoded.frame;
        if pipeline.auto_orient {
            frame = geometry::orient(frame, info.orientation)?;
        }
        for (op, &size) in pipeline.ops.iter().zip(&plan.sizes) {
            frame = op.apply(frame, size)?;
        }
        lap(&mut timings.ops);

        let (width, height, has_alpha) = (frame.width(), frame.height(), !frame.is_opaque());
        let (format, bytes) = encode(frame, &pipeline.output, decoded.icc_profile.as_deref())?;
        lap(&mut timings.encode);

        Ok(Output {
            bytes,
            format,
            width,
            height,
            has_alpha,
            input: info,
            timings,
        })
    }
}

/// Turns a panic inside `work` into [`Error::Internal`], so no input can take a caller down.
fn guarded<T>(work: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Error::Internal(format!(
            "panic while processing: {message}"
        )))
    })
}

/// JPEG qualities tried, in order, when a JPEG must fit `maxkb`.
const SHRINKING_QUALITIES: [u8; 6] = [75, 60, 45, 30, 20, 10];
/// Low bits dropped per channel, in order, when a lossless output must fit `maxkb`.
const DROPPED_BITS: [u32; 4] = [1, 2, 3, 4];

/// Encodes in the requested (or automatic) format, then, if `max_kilobytes` is set and
/// exceeded, retries with less quality (JPEG) or fewer colour bits (PNG/WebP).
fn encode(
    frame: Frame,
    spec: &OutputSpec,
    icc: Option<&[u8]>,
) -> Result<(OutputFormat, Vec<u8>), Error> {
    let format = spec.format.unwrap_or(if frame.is_opaque() {
        OutputFormat::Jpeg
    } else {
        OutputFormat::Png
    });
    let bytes = codec::encode(frame.clone(), format, spec.quality, icc)?;
    let Some(max_kilobytes) = spec.max_kilobytes else {
        return Ok((format, bytes));
    };
    let max_bytes = max_kilobytes as usize * 1024;
    if bytes.len() <= max_bytes {
        return Ok((format, bytes));
    }
    let mut smallest = bytes.len();
    if format == OutputFormat::Jpeg {
        for quality in SHRINKING_QUALITIES
            .into_iter()
            .filter(|&q| q < spec.quality)
        {
            let bytes = codec::encode(frame.clone(), format, quality, icc)?;
            if bytes.len() <= max_bytes {
                return Ok((format, bytes));
            }
            smallest = smallest.min(bytes.len());
        }
    } else {
        for bits in DROPPED_BITS {
            let bytes = codec::encode(reduce_precision(&frame, bits), format, spec.quality, icc)?;
            if bytes.len() <= max_bytes {
                return Ok((format, bytes));
            }
            smallest = smallest.min(bytes.len());
        }
    }
    Err(Error::Limits(format!(
        "the {format} output cannot be made smaller than {smallest} bytes, above maxkb:{max_kilobytes}"
    )))
}

/// Rounds every colour channel to a multiple of 2^bits (alpha kept): long runs of equal
/// values compress far better losslessly, at a cost that is hard to see at 1–2 bits.
fn reduce_precision(frame: &Frame, bits: u32) -> Frame {
    let mut out = frame.clone();
    let step = 1u16 << bits;
    let bpp = out.bytes_per_pixel();
    for px in out.data_mut().chunks_exact_mut(bpp) {
        for c in &mut px[..3] {
            let rounded = (u16::from(*c) + step / 2) / step * step;
            *c = rounded.min(255) as u8;
        }
    }
    out
}
