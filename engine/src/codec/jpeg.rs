//! JPEG: header walk for probing, zune-jpeg for decoding, jpeg-encoder for encoding.

use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use super::{Decoded, ImageInfo};
use crate::colour;
use crate::error::Error;
use crate::format::ImageFormat;
use crate::frame::{Frame, Layout};
use crate::orientation::Orientation;

/// Walks the marker segments up to the first scan: dimensions from SOF, orientation from
/// APP1/Exif, ICC presence from APP2. Refuses coding processes zune-jpeg cannot decode.
pub(super) fn probe(bytes: &[u8]) -> Result<ImageInfo, Error> {
    walk_headers(bytes).map(|(info, _)| info)
}

/// Whether the end-of-image marker follows the first scan. Entropy-coded data cannot hold
/// it (a 0xFF there is followed by 0x00 or a restart marker), and segments before the scan
/// (an EXIF thumbnail's own EOI) are skipped by the walk, so a file cut in its scans has
/// none. Searched from the end, where a whole file has it, so whole files cost nothing.
pub(super) fn is_complete(bytes: &[u8]) -> bool {
    walk_headers(bytes).is_ok_and(|(_, first_scan)| {
        bytes[first_scan..]
            .windows(2)
            .rev()
            .any(|pair| pair == [0xFF, 0xD9])
    })
}

/// The probe's walk; also returns where the first scan's segment starts.
fn walk_headers(bytes: &[u8]) -> Result<(ImageInfo, usize), Error> {
    let malformed = |reason: &str| Error::malformed(ImageFormat::Jpeg, reason);
    let mut at = 2; // after SOI
    let mut orientation = Orientation::Normal;
    let mut has_icc_profile = false;
    let mut size = None;
    loop {
        // Markers may be preceded by fill bytes 0xFF.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (Some(0xFF), Some(&marker)) = (bytes.get(at), bytes.get(at + 1)) else {
            return Err(malformed(
                "truncated or missing marker before the first scan",
            ));
        };
        at += 2;
        if matches!(marker, 0x01 | 0xD0..=0xD7) {
            continue; // stand-alone markers carry no length
        }
        let length = bytes
            .get(at..at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or_else(|| malformed("truncated segment length"))?;
        if length < 2 {
            return Err(malformed("segment length below 2"));
        }
        let body = bytes
            .get(at + 2..at + length)
            .ok_or_else(|| malformed("truncated segment"))?;
        match marker {
            0xE1 if body.starts_with(b"Exif\0\0") => orientation = crate::exif::orientation(body),
            0xE2 if body.starts_with(b"ICC_PROFILE\0") => has_icc_profile = true,
            0xC0..=0xC2 => {
                if body.len() < 6 {
                    return Err(malformed("short frame header"));
                }
                if body[0] != 8 {
                    return Err(Error::Unsupported(format!("{}-bit JPEG", body[0])));
                }
                let height = u32::from(u16::from_be_bytes([body[1], body[2]]));
                let width = u32::from(u16::from_be_bytes([body[3], body[4]]));
                if height == 0 {
                    return Err(Error::Unsupported(
                        "JPEG with height defined by DNL marker".into(),
                    ));
                }
                size = Some((width, height, body[5]));
            }
            0xC3 | 0xC5..=0xC7 => {
                return Err(Error::Unsupported("lossless or hierarchical JPEG".into()));
            }
            0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(Error::Unsupported("arithmetic-coded JPEG".into()));
            }
            0xDA | 0xD9 => {
                at -= 2;
                break;
            }
            _ => {}
        }
        at += length;
    }
    let (width, height, components) =
        size.ok_or_else(|| malformed("no frame header before the scan"))?;
    if !matches!(components, 1 | 3 | 4) {
        return Err(Error::Unsupported(format!(
            "JPEG with {components} components"
        )));
    }
    let info = ImageInfo {
        format: ImageFormat::Jpeg,
        width,
        height,
        orientation,
        has_icc_profile,
        has_alpha: false,
        byte_len: bytes.len(),
    };
    Ok((info, at))
}

/// Decodes to RGB (grayscale by zune-jpeg, CMYK and Adobe YCCK through their profile). A
/// progressive file shrunk eight times or more is read without the scans the shrink hides
/// (see `jpeg_scans`), and a file shrunk more than three times is decoded at 1/2, 1/4 or 1/8
/// scale where `jpeg_scaled` can.
pub(super) fn decode(bytes: &[u8], info: &ImageInfo, shrink: f64) -> Result<Decoded, Error> {
    let side = super::jpeg_scaled::block_side(shrink);
    let scaled = |frame| {
        Ok(Decoded {
            frame,
            icc_profile: icc_profile(bytes),
        })
    };
    // At 1/8 scale the scaled reader skips every AC scan itself, so it reads the original
    // bytes (a pruned copy would only be a copy); otherwise it and zune-jpeg read the pruned
    // ones (pruned only from a shrink of eight).
    if side == Some(1)
        && let Some(frame) = super::jpeg_scaled::decode(bytes, 1)
    {
        return scaled(frame);
    }
    let pruned = super::jpeg_scans::prune_scans(bytes, shrink);
    let stream = pruned.as_deref().unwrap_or(bytes);
    if let Some(side) = side.filter(|&side| side != 1)
        && let Some(frame) = super::jpeg_scaled::decode(stream, side)
    {
        return scaled(frame);
    }
    decode_with_zune(stream, info)
}

fn decode_with_zune(bytes: &[u8], info: &ImageInfo) -> Result<Decoded, Error> {
    let malformed = |e| Error::malformed(ImageFormat::Jpeg, format!("{e:?}"));
    let options = DecoderOptions::default()
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX))
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(malformed)?;
    // Four components are ink, not light: taken as stored and converted through the
    // file's CMYK profile (zune-jpeg's own formula ignores it).
    let ink = decoder
        .input_colorspace()
        .filter(|space| matches!(space, ColorSpace::CMYK | ColorSpace::YCCK))
        .filter(|_| decoder.info().is_some_and(|info| info.components == 4));
    if let Some(space) = ink {
        decoder.set_options(options.jpeg_set_out_colorspace(space));
    }
    let pixels = decoder.decode().map_err(malformed)?;
    let icc_profile = decoder.icc_profile();
    let (width, height) = decoder
        .dimensions()
        .unwrap_or((info.width as usize, info.height as usize));
    let (width, height) = (width as u32, height as u32);
    if let Some(space) = ink {
        let ink = ink_as_icc_expects(space, pixels);
        return Ok(Decoded {
            frame: colour::cmyk_to_srgb(width, height, &ink, icc_profile.as_deref())?,
            icc_profile: None,
        });
    }
    let frame = Frame::new(width, height, Layout::Rgb8, pixels)?;
    Ok(Decoded { frame, icc_profile })
}

/// The embedded ICC profile, as zune-jpeg assembles it from its APP2 chunks (headers only).
fn icc_profile(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut decoder = JpegDecoder::new(ZCursor::new(bytes));
    decoder.decode_headers().ok()?;
    decoder.icc_profile()
}

/// Adobe's CMYK JPEGs (Photoshop writes nearly all of them) store ink inverted, 255 for
/// none, and YCCK stores the inverted C, M, Y as YCbCr; ICC profiles count 0 as no ink.
/// As libjpeg-based readers do, both become plain CMYK.
fn ink_as_icc_expects(space: ColorSpace, mut pixels: Vec<u8>) -> Vec<u8> {
    for pixel in pixels.chunks_exact_mut(4) {
        if space == ColorSpace::YCCK {
            // libjpeg decodes YCbCr to RGB and stores 255 - RGB as the ink, so the ink the
            // profile expects (inverted once more) is the decoded RGB itself (JFIF's matrix).
            let (y, cb, cr) = (
                f32::from(pixel[0]),
                f32::from(pixel[1]) - 128.0,
                f32::from(pixel[2]) - 128.0,
            );
            let byte = |v: f32| v.round().clamp(0.0, 255.0) as u8;
            pixel[0] = byte(y + 1.402 * cr);
            pixel[1] = byte(y - 0.344_136 * cb - 0.714_136 * cr);
            pixel[2] = byte(y + 1.772 * cb);
            pixel[3] = 255 - pixel[3];
        } else {
            for value in pixel.iter_mut() {
                *value = 255 - *value;
            }
        }
    }
    pixels
}

pub(super) fn encode(
    frame: &Frame,
    quality: u8,
    icc_profile: Option<&[u8]>,
) -> Result<Vec<u8>, Error> {
    let (width, height) = match (u16::try_from(frame.width()), u16::try_from(frame.height())) {
        (Ok(w), Ok(h)) => (w, h),
        _ => {
            return Err(Error::Limits(
                "JPEG output is limited to 65535 pixels per side".into(),
            ));
        }
    };
    let mut out = Vec::with_capacity(frame.data().len() / 8);
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality);
    if let Some(icc) = icc_profile {
        encoder
            .add_icc_profile(icc)
            .map_err(|e| Error::Internal(format!("JPEG ICC: {e}")))?;
    }
    // Neutral pixels (a grey scan, a `gray` step) are written as a one-component JPEG,
    // unless an RGB profile is carried, which a grey file cannot hold.
    let grey = icc_profile.is_none().then(|| frame.as_grey()).flatten();
    let encoded = match &grey {
        Some(luma) => encoder.encode(luma, width, height, jpeg_encoder::ColorType::Luma),
        None => encoder.encode(frame.data(), width, height, jpeg_encoder::ColorType::Rgb),
    };
    encoded.map_err(|e| Error::Internal(format!("JPEG encoder: {e}")))?;
    Ok(out)
}

/// The scaled reader against this full decoder (here, so that the scaled reader never
/// imports the decoder that calls it).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::jpeg_scaled;
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    fn fixture(path: &str) -> Vec<u8> {
        let path = format!("{}/../fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The full decode (zune-jpeg), averaged over boxes of 8/`side` pixels: what the low
    /// frequencies of each block describe.
    fn full_decode_box_filtered(bytes: &[u8], side: usize) -> Frame {
        let info = probe(bytes).expect("probe");
        let full = decode(bytes, &info, 1.0).expect("full decode").frame;
        let (width, height) = (full.width() as usize, full.height() as usize);
        let (small_width, small_height) =
            jpeg_scaled::reduced_size(width as u32, height as u32, side);
        let span = 8 / side;
        let mut pixels = Vec::new();
        for by in 0..small_height as usize {
            for bx in 0..small_width as usize {
                let mut sum = [0u32; 3];
                let mut count = 0;
                for y in by * span..(by * span + span).min(height) {
                    for x in bx * span..(bx * span + span).min(width) {
                        let at = (y * width + x) * 3;
                        for (s, &v) in sum.iter_mut().zip(&full.data()[at..at + 3]) {
                            *s += u32::from(v);
                        }
                        count += 1;
                    }
                }
                pixels.extend(sum.map(|s| ((s + count / 2) / count) as u8));
            }
        }
        Frame::new(small_width, small_height, Layout::Rgb8, pixels).expect("frame")
    }

    fn psnr(a: &Frame, b: &Frame) -> f64 {
        assert_eq!((a.width(), a.height()), (b.width(), b.height()));
        let squared: f64 = a
            .data()
            .iter()
            .zip(b.data())
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum();
        let mse = squared / a.data().len() as f64;
        10.0 * (255.0f64.powi(2) / mse.max(1e-9)).log10()
    }

    /// A noisy gradient encoded with the given settings.
    fn encoded(
        width: u16,
        height: u16,
        colour: ColorType,
        setup: impl Fn(&mut Encoder<&mut Vec<u8>>),
    ) -> Vec<u8> {
        let channels = if colour == ColorType::Luma { 1 } else { 3 };
        let pixels: Vec<u8> = (0..usize::from(width) * usize::from(height) * channels)
            .map(|i| {
                let (x, y) = (
                    (i / channels) % usize::from(width),
                    (i / channels) / usize::from(width),
                );
                (x * 255 / usize::from(width)) as u8 / 3
                    + (y * 97 % 64) as u8
                    + (i * 31 % 17) as u8
                    + (i % channels * 40) as u8
            })
            .collect();
        let mut out = Vec::new();
        let mut encoder = Encoder::new(&mut out, 90);
        setup(&mut encoder);
        encoder
            .encode(&pixels, width, height, colour)
            .expect("encode");
        out
    }

    #[test]
    fn matches_the_full_decode_averaged_over_each_block() {
        let mut cases: Vec<(String, Vec<u8>)> = [
            "photos/dragonfly-12mp.jpg",    // progressive 4:2:0
            "photos/dragonfly-1280.jpg",    // baseline
            "libjpeg-turbo/testorig.jpg",   // baseline, odd size
            "libjpeg-turbo/testimgint.jpg", // restart intervals
            "exif-orientation/Landscape_5.jpg",
            "colour/grey-lstar.jpg",
        ]
        .iter()
        .map(|path| (path.to_string(), fixture(path)))
        .collect();
        for (name, sampling) in [
            ("4:4:4", SamplingFactor::R_4_4_4),
            ("4:2:2", SamplingFactor::R_4_2_2),
            ("4:2:0", SamplingFactor::R_4_2_0),
            ("4:4:0", SamplingFactor::R_4_4_0),
        ] {
            for progressive in [false, true] {
                cases.push((
                    format!("{name} progressive={progressive} restart=3"),
                    encoded(203, 117, ColorType::Rgb, |e| {
                        e.set_sampling_factor(sampling);
                        e.set_progressive(progressive);
                        e.set_restart_interval(3);
                    }),
                ));
            }
        }
        cases.push((
            "grey progressive".into(),
            encoded(99, 250, ColorType::Luma, |e| e.set_progressive(true)),
        ));
        // Measured: photos 39-56 dB at every scale, the generated files 34.5-44; lowest at 1/8
        // is libjpeg's test image (sharp saturated edges, 29x19 pixels) at 28.9 dB, 32.8 at
        // 1/4, 39.6 at 1/2. A misplaced block or plane, or a refinement bit read wrong, scores
        // far lower.
        for (name, bytes) in &cases {
            for side in [1, 2, 4] {
                let scaled = jpeg_scaled::decode(bytes, side)
                    .unwrap_or_else(|| panic!("{name}: stepped aside"));
                let expected = full_decode_box_filtered(bytes, side);
                let quality = psnr(&scaled, &expected);
                assert!(
                    quality >= 28.0,
                    "{name} at side {side}: {quality:.1} dB from the full decode averaged"
                );
            }
        }
    }
}
