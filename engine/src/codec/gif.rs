//! GIF: the logical screen from the header for probing; the `gif` crate decodes the
//! first frame, which is composed onto a transparent canvas of the screen's size.

use super::{Decoded, ImageInfo, decoder_memory_budget};
use crate::error::Error;
use crate::format::ImageFormat;
use crate::frame::{Frame, Layout};
use crate::orientation::Orientation;

pub(super) fn probe(bytes: &[u8]) -> Result<ImageInfo, Error> {
    let screen = bytes
        .get(6..10)
        .ok_or_else(|| Error::malformed(ImageFormat::Gif, "truncated header"))?;
    Ok(ImageInfo {
        format: ImageFormat::Gif,
        width: u32::from(u16::from_le_bytes([screen[0], screen[1]])),
        height: u32::from(u16::from_le_bytes([screen[2], screen[3]])),
        orientation: Orientation::Normal,
        has_icc_profile: false,
        has_alpha: true,
        byte_len: bytes.len(),
    })
}

/// Whether the file ends with the GIF trailer (0x3B), NUL padding after it allowed.
pub(super) fn is_complete(bytes: &[u8]) -> bool {
    bytes.iter().rev().find(|&&byte| byte != 0) == Some(&TRAILER)
}

/// The byte that ends every GIF file.
const TRAILER: u8 = 0x3B;

pub(super) fn decode(bytes: &[u8], info: &ImageInfo) -> Result<Decoded, Error> {
    let malformed = |e: gif::DecodingError| Error::malformed(ImageFormat::Gif, e);
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    options.set_memory_limit(gif::MemoryLimit::Bytes(
        std::num::NonZeroU64::new(decoder_memory_budget(info) as u64)
            .unwrap_or(std::num::NonZeroU64::MIN),
    ));
    let mut decoder = options.read_info(bytes).map_err(malformed)?;
    let mut canvas = Frame::zeroed(info.width, info.height, Layout::Rgba8)?;
    let frame = decoder
        .read_next_frame()
        .map_err(malformed)?
        .ok_or_else(|| Error::malformed(ImageFormat::Gif, "no image in the file"))?;
    let (left, top) = (usize::from(frame.left), usize::from(frame.top));
    let (frame_width, frame_height) = (usize::from(frame.width), usize::from(frame.height));
    let canvas_width = info.width as usize;
    let canvas_height = info.height as usize;
    let stride = canvas.stride();
    let pixels = canvas.data_mut();
    if frame_width == 0 {
        return Ok(Decoded {
            frame: canvas,
            icc_profile: None,
        });
    }
    // Copy the part of the frame that lies on the screen; the rest stays transparent.
    for (row_index, row) in frame
        .buffer
        .chunks_exact(frame_width * 4)
        .take(frame_height)
        .enumerate()
    {
        let y = top + row_index;
        if y >= canvas_height || left >= canvas_width {
            break;
        }
        let visible = frame_width.min(canvas_width - left);
        let start = y * stride + left * 4;
        pixels[start..start + visible * 4].copy_from_slice(&row[..visible * 4]);
    }
    Ok(Decoded {
        frame: canvas,
        icc_profile: None,
    })
}
