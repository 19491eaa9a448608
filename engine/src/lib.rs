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
//! * **Pool**: one worker pool per [`Engine`], fed synchronously ([`Engine::process`]), in
//!   batches ([`Engine::process_batch`]) or asynchronously ([`Engine::submit`], whose
//!   [`JobHandle`] is a `Future`); admission by queue length and by a memory budget.
//!
//! ```
//! use prism_engine::{Engine, EngineConfig, ErrorKind, Pipeline};
//!
//! let engine = Engine::new(EngineConfig::default()).unwrap();
//! let pipeline: Pipeline = "fit:1280x1280|sharpen:0.5|jpeg:85".parse().unwrap();
//! // Garbage is a typed error, never a panic.
//! let error = engine.process(b"not an image", &pipeline).unwrap_err();
//! assert_eq!(error.kind(), ErrorKind::Unsupported);
//! ```

mod allocator;
pub mod backend;
mod codec;
mod colour;
mod config;
mod engine;
mod error;
mod exif;
mod format;
mod frame;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod limits;
mod memory;
pub mod ops;
mod orientation;
pub mod pipeline;
mod pool;
mod stats;
mod timings;

pub use allocator::{
    LargeBlocksOnHugePages, map_large_blocks_separately, release_free_memory, share_one_arena,
};
pub use backend::gpu::{GpuConfig, GpuInfo, GpuStageTimes, GpuStats, quiet_mesa_device_select};
pub use backend::{BackendChoice, BackendStatus, BackendUsed};
pub use codec::{ImageInfo, heif_support, probe};
pub use config::EngineConfig;
pub use engine::{Engine, JobHandle, Output};
pub use error::{Error, ErrorKind, PipelineError};
pub use format::{ImageFormat, OutputFormat};
pub use frame::{Frame, Layout};
pub use limits::Limits;
pub use ops::{Filter, Gravity, Op};
pub use orientation::Orientation;
pub use pipeline::{OutputSpec, Pipeline};
pub use pool::ShutdownReport;
pub use stats::{Histogram, LatencySummary, StatsSnapshot};
pub use timings::Timings;
