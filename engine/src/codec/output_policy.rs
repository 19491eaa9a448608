//! The output policy: which format and compression a result gets, and how a `maxkb` bound
//! is met (lower quality, or fewer colour bits for lossless formats). Callers hand over the
//! ops' result and the pipeline's output spec; the codecs below only encode.

use super::Compression;
use crate::error::Error;
use crate::format::OutputFormat;
use crate::frame::Frame;
use crate::pipeline::OutputSpec;

/// Qualities tried, in order, when a lossy output must fit `maxkb`.
const SHRINKING_QUALITIES: [u8; 6] = [75, 60, 45, 30, 20, 10];
/// Low bits dropped per channel, in order, when a lossless output must fit `maxkb`.
const DROPPED_BITS: [u32; 4] = [1, 2, 3, 4];

/// An encoded result and the frame it was made from.
pub(crate) struct Encoded {
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
}

/// Encodes the ops' result as the output spec asks: an alpha channel opaque everywhere is
/// dropped first (ops such as crop can leave one), so the layout alone says whether
/// transparency remains; then the requested format, or automatically JPEG unless alpha
/// remains (PNG then).
pub(crate) fn encode(
    frame: Frame,
    spec: &OutputSpec,
    icc: Option<&[u8]>,
) -> Result<Encoded, Error> {
    let frame = frame.without_opaque_alpha();
    let (width, height, has_alpha) = (frame.width(), frame.height(), frame.has_alpha());
    let (format, bytes) = encode_within_size(frame, spec, icc)?;
    Ok(Encoded {
        bytes,
        format,
        width,
        height,
        has_alpha,
    })
}

/// Encodes in the chosen format, then, if `max_kilobytes` is set and exceeded, retries with
/// less quality (JPEG, lossy WebP) or fewer colour bits (PNG, lossless WebP).
fn encode_within_size(
    frame: Frame,
    spec: &OutputSpec,
    icc: Option<&[u8]>,
) -> Result<(OutputFormat, Vec<u8>), Error> {
    let format = spec.format.unwrap_or(if frame.has_alpha() {
        OutputFormat::Png
    } else {
        OutputFormat::Jpeg
    });
    let compression = match format {
        OutputFormat::Png => Compression::Lossless,
        OutputFormat::Webp if spec.lossless => Compression::Lossless,
        OutputFormat::Jpeg | OutputFormat::Webp => Compression::Lossy(spec.quality),
    };
    let Some(max_kilobytes) = spec.max_kilobytes else {
        return super::encode(frame, format, compression, icc).map(|bytes| (format, bytes));
    };
    // Only a size bound needs the frame again for retries.
    let bytes = super::encode(frame.clone(), format, compression, icc)?;
    let max_bytes = max_kilobytes as usize * 1024;
    if bytes.len() <= max_bytes {
        return Ok((format, bytes));
    }
    let mut smallest = bytes.len();
    match compression {
        Compression::Lossy(first) => {
            for quality in SHRINKING_QUALITIES.into_iter().filter(|&q| q < first) {
                let bytes = super::encode(frame.clone(), format, Compression::Lossy(quality), icc)?;
                if bytes.len() <= max_bytes {
                    return Ok((format, bytes));
                }
                smallest = smallest.min(bytes.len());
            }
        }
        Compression::Lossless => {
            for bits in DROPPED_BITS {
                let bytes =
                    super::encode(reduce_precision(&frame, bits), format, compression, icc)?;
                if bytes.len() <= max_bytes {
                    return Ok((format, bytes));
                }
                smallest = smallest.min(bytes.len());
            }
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
