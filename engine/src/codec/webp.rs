//! WebP: image-webp for probing, decoding (lossy, lossless, alpha, first animation frame)
//! and lossless encoding; libwebp (built from source by libwebp-sys) for lossy encoding,
//! where no pure-Rust encoder exists.

use std::io::Cursor;

use image_webp::{WebPDecoder, WebPEncoder};

use super::{Decoded, ImageInfo, decoder_memory_budget};
use crate::error::Error;
use crate::format::ImageFormat;
use crate::frame::{Frame, Layout};
use crate::orientation::Orientation;

fn open(bytes: &[u8]) -> Result<WebPDecoder<Cursor<&[u8]>>, Error> {
    WebPDecoder::new(Cursor::new(bytes)).map_err(|e| Error::malformed(ImageFormat::Webp, e))
}

pub(super) fn probe(bytes: &[u8]) -> Result<ImageInfo, Error> {
    let mut decoder = open(bytes)?;
    let (width, height) = decoder.dimensions();
    let orientation = match decoder.exif_metadata() {
        Ok(Some(exif)) => crate::exif::orientation(&exif),
        _ => Orientation::Normal,
    };
    let has_icc_profile = matches!(decoder.icc_profile(), Ok(Some(_)));
    Ok(ImageInfo {
        format: ImageFormat::Webp,
        width,
        height,
        orientation,
        has_icc_profile,
        has_alpha: decoder.has_alpha(),
        byte_len: bytes.len(),
    })
}

/// Whether the file is as long as its RIFF header says (every frame and chunk present).
pub(super) fn is_complete(bytes: &[u8]) -> bool {
    bytes
        .get(4..8)
        .map(|size| u64::from(u32::from_le_bytes([size[0], size[1], size[2], size[3]])))
        .is_some_and(|size| bytes.len() as u64 >= size + 8)
}

pub(super) fn decode(bytes: &[u8], info: &ImageInfo) -> Result<Decoded, Error> {
    let mut decoder = open(bytes)?;
    decoder.set_memory_limit(decoder_memory_budget(info));
    let icc_profile = decoder.icc_profile().ok().flatten();
    let (width, height) = decoder.dimensions();
    let layout = if decoder.has_alpha() {
        Layout::Rgba8
    } else {
        Layout::Rgb8
    };
    let size = decoder
        .output_buffer_size()
        .ok_or_else(|| Error::Limits("WebP output buffer size overflows".into()))?;
    let mut buffer = vec![0; size];
    decoder
        .read_image(&mut buffer)
        .map_err(|e| Error::malformed(ImageFormat::Webp, e))?;
    Ok(Decoded {
        frame: Frame::new(width, height, layout, buffer)?,
        icc_profile,
    })
}

/// Lossless WebP (every pixel kept).
pub(super) fn encode_lossless(frame: &Frame, icc_profile: Option<&[u8]>) -> Result<Vec<u8>, Error> {
    let color = match frame.layout() {
        Layout::Rgb8 => image_webp::ColorType::Rgb8,
        Layout::Rgba8 => image_webp::ColorType::Rgba8,
    };
    let mut out = Vec::new();
    let mut encoder = WebPEncoder::new(&mut out);
    if let Some(icc) = icc_profile {
        encoder.set_icc_profile(icc.to_vec());
    }
    encoder
        .encode(frame.data(), frame.width(), frame.height(), color)
        .map_err(|e| Error::Internal(format!("WebP encoder: {e}")))?;
    Ok(out)
}

/// The largest side a WebP bitstream can hold.
const MAX_SIDE: u32 = 16383;

/// Lossy WebP at `quality` (1..=100) through libwebp's one-call encoder (method 4, its
/// default speed and size trade-off); alpha, where the frame has it, is kept losslessly.
pub(super) fn encode_lossy(
    frame: &Frame,
    quality: u8,
    icc_profile: Option<&[u8]>,
) -> Result<Vec<u8>, Error> {
    let (width, height) = (frame.width(), frame.height());
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(Error::Limits(format!(
            "WebP holds at most {MAX_SIDE} px a side, the result is {width}x{height}"
        )));
    }
    // Sides are at most MAX_SIDE and rows at most 4 × MAX_SIDE bytes: all fit a C int.
    let (c_width, c_height) = (width as std::ffi::c_int, height as std::ffi::c_int);
    let c_stride = (width as usize * frame.bytes_per_pixel()) as std::ffi::c_int;
    let encode = match frame.layout() {
        Layout::Rgb8 => libwebp_sys::WebPEncodeRGB,
        Layout::Rgba8 => libwebp_sys::WebPEncodeRGBA,
    };
    let mut output: *mut u8 = std::ptr::null_mut();
    // SAFETY: the frame holds exactly `height` rows of `stride` bytes (Frame::new checks the
    // length), libwebp only reads them, and on success it hands back a buffer of `len`
    // bytes that we copy and then release with WebPFree, its own allocator.
    let bitstream = unsafe {
        let len = encode(
            frame.data().as_ptr(),
            c_width,
            c_height,
            c_stride,
            f32::from(quality),
            &mut output,
        );
        let copied = (len > 0 && !output.is_null())
            .then(|| std::slice::from_raw_parts(output, len).to_vec());
        libwebp_sys::WebPFree(output.cast());
        copied
    }
    .ok_or_else(|| Error::Internal(format!("libwebp could not encode {width}x{height}")))?;
    match icc_profile {
        Some(icc) => with_icc_profile(&bitstream, icc, width, height),
        None => Ok(bitstream),
    }
}

/// RIFF chunk header: four-character code and little-endian payload size.
const CHUNK_HEADER: usize = 8;
/// Offset of the first chunk in a WebP file ("RIFF", size, "WEBP").
const FIRST_CHUNK: usize = 12;
/// VP8X flag bit saying an ICCP chunk follows.
const ICC_FLAG: u8 = 0x20;

/// Adds an ICCP chunk to a WebP file libwebp wrote: the extended header (VP8X) gets the
/// ICC flag, or is created in front of a simple file, and the profile follows it, as the
/// container specification orders them.
fn with_icc_profile(webp: &[u8], icc: &[u8], width: u32, height: u32) -> Result<Vec<u8>, Error> {
    let malformed = || Error::Internal("libwebp wrote an unexpected container".into());
    let first = webp
        .get(FIRST_CHUNK..FIRST_CHUNK + CHUNK_HEADER)
        .ok_or_else(malformed)?;
    let mut chunks = Vec::with_capacity(webp.len() + icc.len() + 32);
    let rest = if &first[..4] == b"VP8X" {
        let end = FIRST_CHUNK + CHUNK_HEADER + 10;
        let mut extended = webp.get(FIRST_CHUNK..end).ok_or_else(malformed)?.to_vec();
        extended[CHUNK_HEADER] |= ICC_FLAG;
        chunks.extend_from_slice(&extended);
        &webp[end..]
    } else {
        let mut payload = [0u8; 10];
        payload[0] = ICC_FLAG;
        payload[4..7].copy_from_slice(&(width - 1).to_le_bytes()[..3]);
        payload[7..10].copy_from_slice(&(height - 1).to_le_bytes()[..3]);
        push_chunk(&mut chunks, b"VP8X", &payload)?;
        &webp[FIRST_CHUNK..]
    };
    push_chunk(&mut chunks, b"ICCP", icc)?;
    chunks.extend_from_slice(rest);
    let riff_size = u32::try_from(chunks.len() + 4)
        .map_err(|_| Error::Limits("WebP file over 4 GiB".into()))?;
    let mut out = Vec::with_capacity(chunks.len() + FIRST_CHUNK);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&riff_size.to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&chunks);
    Ok(out)
}

/// Appends one RIFF chunk, padded to an even length.
fn push_chunk(out: &mut Vec<u8>, fourcc: &[u8; 4], payload: &[u8]) -> Result<(), Error> {
    let size =
        u32::try_from(payload.len()).map_err(|_| Error::Limits("WebP chunk over 4 GiB".into()))?;
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(payload);
    if payload.len() % 2 == 1 {
        out.push(0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth gradient with some texture, like a small photo.
    fn photo_like(layout: Layout) -> Frame {
        let (width, height) = (96u32, 64u32);
        let bpp = if layout == Layout::Rgba8 { 4 } else { 3 };
        let mut data = Vec::with_capacity((width * height) as usize * bpp);
        for y in 0..height {
            for x in 0..width {
                let texture = ((x * 7 + y * 13) % 11) as u8;
                data.extend_from_slice(&[(x * 2) as u8 + texture, (y * 3) as u8, 128 + texture]);
                if bpp == 4 {
                    data.push(if x < width / 2 { 255 } else { 100 });
                }
            }
        }
        Frame::new(width, height, layout, data).unwrap()
    }

    fn decode_back(bytes: &[u8]) -> (Decoded, ImageInfo) {
        let info = probe(bytes).unwrap();
        (decode(bytes, &info).unwrap(), info)
    }

    #[test]
    fn lossy_is_close_and_smaller_than_lossless() {
        let frame = photo_like(Layout::Rgb8);
        let lossy = encode_lossy(&frame, 85, None).unwrap();
        let lossless = encode_lossless(&frame, None).unwrap();
        assert!(
            lossy.len() < lossless.len(),
            "{} vs {}",
            lossy.len(),
            lossless.len()
        );
        let (decoded, info) = decode_back(&lossy);
        assert_eq!((info.width, info.height), (96, 64));
        assert!(!info.has_icc_profile);
        let worst = frame
            .data()
            .iter()
            .zip(decoded.frame.data())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(worst < 48, "largest channel error {worst}");
    }

    #[test]
    fn lossy_keeps_alpha_and_profile() {
        let frame = photo_like(Layout::Rgba8);
        let icc = b"odd-length fake profile".to_vec();
        let bytes = encode_lossy(&frame, 80, Some(&icc)).unwrap();
        let (decoded, info) = decode_back(&bytes);
        assert!(info.has_alpha && info.has_icc_profile);
        assert_eq!(decoded.icc_profile.as_deref(), Some(&icc[..]));
        let alpha: Vec<u8> = decoded.frame.data().chunks(4).map(|px| px[3]).collect();
        assert_eq!(alpha[0], 255);
        assert_eq!(alpha[95], 100);
    }

    #[test]
    fn profile_added_to_a_simple_lossy_file() {
        let frame = photo_like(Layout::Rgb8);
        let icc = vec![7u8; 300];
        let bytes = encode_lossy(&frame, 50, Some(&icc)).unwrap();
        assert_eq!(&bytes[12..16], b"VP8X");
        let (decoded, info) = decode_back(&bytes);
        assert_eq!((info.width, info.height), (96, 64));
        assert_eq!(decoded.icc_profile, Some(icc));
        assert_eq!(
            u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize,
            bytes.len() - 8
        );
    }

    #[test]
    fn oversized_lossy_is_a_limits_error() {
        let frame = Frame::new(16384, 1, Layout::Rgb8, vec![0; 16384 * 3]).unwrap();
        assert!(matches!(
            encode_lossy(&frame, 80, None),
            Err(Error::Limits(_))
        ));
    }
}
