//! PNG: chunk walk for probing, the `png` crate for decoding and encoding.

use std::io::Cursor;

use super::{Decoded, ImageInfo, decoder_memory_budget};
use crate::error::Error;
use crate::format::ImageFormat;
use crate::frame::{Frame, Layout};
use crate::orientation::Orientation;

const SIGNATURE_LEN: usize = 8;

/// Reads IHDR and the chunks before the first IDAT (tRNS, iCCP, eXIf).
pub(super) fn probe(bytes: &[u8]) -> Result<ImageInfo, Error> {
    let malformed = |reason: &str| Error::malformed(ImageFormat::Png, reason);
    let mut at = SIGNATURE_LEN;
    let mut header = None;
    let mut has_transparency_chunk = false;
    let mut has_icc_profile = false;
    let mut orientation = Orientation::Normal;
    loop {
        let head = bytes
            .get(at..at + 8)
            .ok_or_else(|| malformed("truncated before image data"))?;
        let length = usize::try_from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]))
            .map_err(|_| malformed("chunk length"))?;
        let kind = &head[4..8];
        let data = bytes
            .get(at + 8..(at + 8).saturating_add(length))
            .ok_or_else(|| malformed("truncated chunk"))?;
        match kind {
            b"IHDR" => {
                if data.len() != 13 {
                    return Err(malformed("IHDR chunk is not 13 bytes"));
                }
                let width = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                let height = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
                header = Some((width, height, data[9]));
            }
            _ if header.is_none() => return Err(malformed("first chunk is not IHDR")),
            b"tRNS" => has_transparency_chunk = true,
            b"iCCP" => has_icc_profile = true,
            b"eXIf" => orientation = crate::exif::orientation(data),
            b"IDAT" | b"IEND" => break,
            _ => {}
        }
        at = at.saturating_add(12).saturating_add(length); // length, type, data, crc
    }
    let (width, height, color_type) = header.ok_or_else(|| malformed("no IHDR chunk"))?;
    Ok(ImageInfo {
        format: ImageFormat::Png,
        width,
        height,
        orientation,
        has_icc_profile,
        has_alpha: matches!(color_type, 4 | 6) || has_transparency_chunk,
        byte_len: bytes.len(),
    })
}

/// Decodes any colour type and bit depth (palette expanded, 16-bit reduced to 8) to RGB(A).
pub(super) fn decode(bytes: &[u8], info: &ImageInfo) -> Result<Decoded, Error> {
    let malformed = |e: png::DecodingError| match e {
        png::DecodingError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::malformed(ImageFormat::Png, "truncated: the file ends before IEND")
        }
        other => Error::malformed(ImageFormat::Png, other),
    };
    let limits = png::Limits {
        bytes: decoder_memory_budget(info),
    };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(malformed)?;
    // png 0.18 panics expanding a palette whose PLTE chunk is not whole RGB entries (found by
    // the decode_png fuzz target).
    if reader
        .info()
        .palette
        .as_ref()
        .is_some_and(|palette| palette.len() % 3 != 0)
    {
        return Err(Error::malformed(
            ImageFormat::Png,
            "PLTE length is not a multiple of 3",
        ));
    }
    let icc_profile = reader.info().icc_profile.as_ref().map(|icc| icc.to_vec());
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::Limits("PNG output buffer size overflows".into()))?;
    let mut buffer = vec![0; size];
    let output = reader.next_frame(&mut buffer).map_err(malformed)?;
    // Up to IEND, so that a file cut after its image data is refused like any other cut.
    reader.finish().map_err(malformed)?;
    buffer.truncate(output.buffer_size());
    let (width, height) = (output.width, output.height);
    let (layout, data) = match output.color_type {
        png::ColorType::Rgb => (Layout::Rgb8, buffer),
        png::ColorType::Rgba => (Layout::Rgba8, buffer),
        png::ColorType::Grayscale => (
            Layout::Rgb8,
            buffer.iter().flat_map(|&l| [l, l, l]).collect(),
        ),
        png::ColorType::GrayscaleAlpha => (
            Layout::Rgba8,
            buffer
                .chunks_exact(2)
                .flat_map(|la| [la[0], la[0], la[0], la[1]])
                .collect(),
        ),
        png::ColorType::Indexed => {
            return Err(Error::Internal("PNG palette was not expanded".into()));
        }
    };
    Ok(Decoded {
        frame: Frame::new(width, height, layout, data)?,
        icc_profile,
    })
}

pub(super) fn encode(frame: &Frame, icc_profile: Option<&[u8]>) -> Result<Vec<u8>, Error> {
    let internal = |e: png::EncodingError| Error::Internal(format!("PNG encoder: {e}"));
    let mut info = png::Info::with_size(frame.width(), frame.height());
    // Neutral pixels are written as grey, unless an RGB profile is carried.
    let grey = icc_profile.is_none().then(|| frame.as_grey()).flatten();
    info.color_type = match (frame.layout(), grey.is_some()) {
        (Layout::Rgb8, false) => png::ColorType::Rgb,
        (Layout::Rgba8, false) => png::ColorType::Rgba,
        (Layout::Rgb8, true) => png::ColorType::Grayscale,
        (Layout::Rgba8, true) => png::ColorType::GrayscaleAlpha,
    };
    info.bit_depth = png::BitDepth::Eight;
    info.icc_profile = icc_profile.map(|icc| icc.to_vec().into());
    let mut out = Vec::new();
    let mut encoder = png::Encoder::with_info(&mut out, info).map_err(internal)?;
    // Fast (fdeflate) is ~10x quicker than Balanced on photos for ~10 % larger files.
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(internal)?;
    writer
        .write_image_data(grey.as_deref().unwrap_or(frame.data()))
        .map_err(internal)?;
    writer.finish().map_err(internal)?;
    Ok(out)
}
