//! # prism-engine
//!
//! Turns image bytes plus a [`Pipeline`] of operations into output bytes, fast and safely.
//!
//! * **Decode**: JPEG (zune-jpeg; baseline, progressive, grayscale, CMYK/YCCK), PNG (every
//!   colour type and bit depth), WebP (lossy, lossless, alpha), GIF and animated WebP (first
//!   frame). The format is sniffed from the bytes.
//! * **Probe before decode**: [`Engine::probe`] reads only the header; limits
//!   ([`Limits`]) are enforced there, before any pixel buffer is allocated.
//! * **Operations** ([`Op`]): resize modes with five filters, crop, rotate, flip, EXIF
//!   orientation, colour adjustments, blur, sharpen, pixelate.
//! * **Encode**: JPEG, PNG, lossless WebP; no EXIF is written, pixels are already upright.
//!
//! ```
//! use prism_engine::{Engine, EngineConfig, ErrorKind, Pipeline};
//!
//! let engine = Engine::new(EngineConfig::default());
//! let pipeline: Pipeline = "fit:1280x1280|sharpen:0.5|jpeg:85".parse().unwrap();
//! // Garbage is a typed error, never a panic.
//! let error = engine.process(b"not an image", &pipeline).unwrap_err();
//! assert_eq!(error.kind(), ErrorKind::Unsupported);
//! ```

mod codec;
mod engine;
mod error;
mod exif;
mod format;
mod frame;
mod limits;
pub mod ops;
mod orientation;
pub mod pipeline;

pub use codec::ImageInfo;
pub use engine::{Engine, EngineConfig, Output, Timings};
pub use error::{Error, ErrorKind, PipelineError};
pub use format::{ImageFormat, OutputFormat};
pub use frame::{Frame, Layout};
pub use limits::Limits;
pub use ops::{Filter, Op};
pub use orientation::Orientation;
pub use pipeline::{OutputSpec, Pipeline};
