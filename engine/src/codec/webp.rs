//! WebP: image-webp for probing, decoding (lossy, lossless, alpha, first animation frame)
//! and lossless encoding.

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

pub(super) fn encode(frame: &Frame, icc_profile: Option<&[u8]>) -> Result<Vec<u8>, Error> {
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
