//! Codecs: probing headers, decoding to a [`Frame`], encoding a [`Frame`].
//!
//! Each format lives in its own module and is the only place its crate is called.
//! `probe` reads headers only, so limits are enforced before any pixel allocation.

mod gif;
#[cfg(feature = "heif")]
mod heif;
#[cfg(not(feature = "heif"))]
#[path = "heif_missing.rs"]
mod heif;
mod jpeg;
pub(crate) mod jpeg_scaled;
pub(crate) mod jpeg_scans;
pub(crate) mod output_policy;
mod png;
mod webp;

use serde::Serialize;

use crate::colour;
use crate::error::Error;
use crate::format::{ImageFormat, OutputFormat};
use crate::frame::Frame;
use crate::limits::Limits;
use crate::orientation::Orientation;

/// What the header says about an image, read without decoding pixels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    pub format: ImageFormat,
    /// Stored width, before orientation is applied.
    pub width: u32,
    /// Stored height, before orientation is applied.
    pub height: u32,
    pub orientation: Orientation,
    pub has_icc_profile: bool,
    /// Whether the format carries an alpha channel or transparency (pixels may still be opaque).
    pub has_alpha: bool,
    /// Size of the input in bytes.
    pub byte_len: usize,
}

impl ImageInfo {
    /// Dimensions once the EXIF orientation is applied.
    pub fn oriented_dimensions(&self) -> (u32, u32) {
        if self.orientation.swaps_dimensions() {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// A decoded image and the colour profile to carry into the output.
pub(crate) struct Decoded {
    pub frame: Frame,
    /// The input's profile when it was kept (it describes RGB data, so it stays valid for
    /// our RGB output); `None` when the pixels are sRGB.
    pub icc_profile: Option<Vec<u8>>,
}

/// Reads the header, checks the input-size and pixel limits, and returns what it found.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<ImageInfo, Error> {
    limits.check_input_bytes(bytes.len())?;
    if bytes.is_empty() {
        return Err(Error::Unsupported("empty input".into()));
    }
    let format = ImageFormat::sniff(bytes).ok_or_else(|| {
        Error::Unsupported(
            "not a JPEG, PNG, WebP, GIF, HEIF or AVIF image (unrecognised signature)".into(),
        )
    })?;
    let info = match format {
        ImageFormat::Jpeg => jpeg::probe(bytes)?,
        ImageFormat::Png => png::probe(bytes)?,
        ImageFormat::Webp => webp::probe(bytes)?,
        ImageFormat::Gif => gif::probe(bytes)?,
        ImageFormat::Heif | ImageFormat::Avif => heif::probe(bytes, format)?,
    };
    if info.width == 0 || info.height == 0 {
        return Err(Error::malformed(format, "zero width or height"));
    }
    limits.check_input_pixels(info.width, info.height)?;
    Ok(info)
}

/// Decodes a probed image to RGB or RGBA (an alpha channel opaque everywhere is dropped),
/// converted to sRGB through its ICC profile unless `keep_profile` asks for the profile and
/// the stored values instead (CMYK is converted either way: its profile cannot describe RGB).
/// A truncated file (cut before its format's end marker, even where the first frame is
/// whole) is refused as malformed, never filled in: one rule for every format, as sharp's
/// default (`failOn: warning`) does.
/// `shrink` is how many times smaller the first step will make the image (1.0 when it does
/// not resample first); a decoder may skip detail that cannot survive that reduction, and a
/// JPEG shrunk two times or more comes back at 1/2, 1/4 or 1/8 scale ([`jpeg_scaled`]).
pub(crate) fn decode(
    bytes: &[u8],
    info: &ImageInfo,
    shrink: f64,
    keep_profile: bool,
) -> Result<Decoded, Error> {
    let complete = match info.format {
        ImageFormat::Jpeg => jpeg::is_complete(bytes),
        ImageFormat::Webp => webp::is_complete(bytes),
        ImageFormat::Gif => gif::is_complete(bytes),
        ImageFormat::Png => true, // its decoder reads to IEND and fails on a cut itself
        ImageFormat::Heif | ImageFormat::Avif => heif::is_complete(bytes),
    };
    if !complete {
        return Err(Error::malformed(
            info.format,
            "truncated: the file ends before its end marker",
        ));
    }
    let decoded = match info.format {
        ImageFormat::Jpeg => jpeg::decode(bytes, info, shrink)?,
        ImageFormat::Png => png::decode(bytes, info)?,
        ImageFormat::Webp => webp::decode(bytes, info)?,
        ImageFormat::Gif => gif::decode(bytes, info)?,
        ImageFormat::Heif | ImageFormat::Avif => heif::decode(bytes, info)?,
    };
    let (width, height) = (decoded.frame.width(), decoded.frame.height());
    let scaled = info.format == ImageFormat::Jpeg
        && jpeg_scaled::block_side(shrink).is_some_and(|side| {
            (width, height) == jpeg_scaled::reduced_size(info.width, info.height, side)
        });
    if (width, height) != (info.width, info.height) && !scaled {
        // Every step (crop rectangles, limits, the job's memory) was planned for the
        // header's size.
        return Err(Error::malformed(
            info.format,
            format!(
                "header says {}x{}, image data is {width}x{height}",
                info.width, info.height
            ),
        ));
    }
    let mut frame = decoded.frame.without_opaque_alpha();
    let icc_profile = match decoded.icc_profile {
        Some(icc) if keep_profile => Some(icc).filter(|icc| is_rgb_profile(icc)),
        Some(icc) => {
            colour::to_srgb(&mut frame, &icc)?;
            None
        }
        None => None,
    };
    Ok(Decoded { frame, icc_profile })
}

/// Whether this build and this machine decode HEIF and AVIF (the `heif` feature, and
/// libheif at run time); the error says what is missing.
pub fn heif_support() -> Result<(), Error> {
    heif::availability()
}

/// How an encoder may trade pixels for bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    /// Quality 1..=100 (JPEG, WebP).
    Lossy(u8),
    /// Every pixel kept (PNG always, WebP on request).
    Lossless,
}

/// Encodes a frame. JPEG has no alpha: transparent frames are flattened over white; it is
/// always lossy, PNG always lossless (a `Lossy` quality is ignored where it cannot apply).
pub(crate) fn encode(
    frame: Frame,
    format: OutputFormat,
    compression: Compression,
    icc_profile: Option<&[u8]>,
) -> Result<Vec<u8>, Error> {
    match (format, compression) {
        (OutputFormat::Jpeg, Compression::Lossy(quality)) => {
            jpeg::encode(&frame.flattened([255, 255, 255]), quality, icc_profile)
        }
        (OutputFormat::Jpeg, Compression::Lossless) => {
            Err(Error::Internal("JPEG has no lossless mode here".into()))
        }
        (OutputFormat::Png, _) => png::encode(&frame, icc_profile),
        (OutputFormat::Webp, Compression::Lossy(quality)) => {
            webp::encode_lossy(&frame, quality, icc_profile)
        }
        (OutputFormat::Webp, Compression::Lossless) => webp::encode_lossless(&frame, icc_profile),
    }
}

/// An ICC profile's data colour space (header bytes 16..20) must be RGB to describe our output.
fn is_rgb_profile(icc: &[u8]) -> bool {
    icc.get(16..20) == Some(b"RGB ")
}

/// Bytes a decoder may allocate for an image of the probed size (RGBA plus slack for
/// the decoder's own state). Passed to codecs that take a memory limit.
fn decoder_memory_budget(info: &ImageInfo) -> usize {
    let pixels = u64::from(info.width) * u64::from(info.height);
    usize::try_from(pixels.saturating_mul(8).saturating_add(16 << 20)).unwrap_or(usize::MAX)
}
