//! Colour management: pixels described by an embedded ICC profile (RGB, grey or CMYK) are
//! converted to sRGB before any operation, as sharp and imgproxy do, so that viewers that
//! ignore profiles (and Telegram, which recompresses photos) show them as a colour-managed
//! viewer would. CMYK without a profile is read through the press profile libvips assumes
//! for it (engine/assets/README.md). The only module that calls moxcms.
//!
//! Rendering intent: relative colorimetric, libvips's default, so results match
//! `vipsthumbnail -e srgb`.

use std::sync::{Arc, OnceLock};

use moxcms::{
    CicpColorPrimaries, CicpProfile, ColorProfile, DataColorSpace, Layout as CmsLayout,
    MatrixCoefficients, RenderingIntent, TransferCharacteristics, Transform8BitExecutor,
    TransformOptions,
};

use crate::error::Error;
use crate::frame::{Frame, Layout};

/// CMYK without an embedded profile is read as this one (libvips's fallback, public domain).
const DEFAULT_CMYK_PROFILE: &[u8] = include_bytes!("../assets/cmyk-chemical-proof.icc");

/// Pixels converted per call, so the scratch buffer stays small for any image size.
const CHUNK_PIXELS: usize = 16 * 1024;

/// Largest difference, per channel, for which a profile is taken to be sRGB already and the
/// pixels are left alone (rounding in the transform itself is up to 1).
const SRGB_TOLERANCE: u8 = 1;

type Transform = Arc<Transform8BitExecutor>;

/// Converts an RGB or RGBA frame whose pixels `icc` describes to sRGB, in place. An RGB
/// profile is applied as it is; a grey profile (grey inputs are decoded to equal R, G and
/// B) through its tone curve. A profile that is sRGB already, or that cannot be read or
/// does not describe RGB or grey data, or that cannot be applied, leaves the pixels as they
/// are: a broken profile does not make a photo unreadable (browsers and libvips ignore it
/// too).
pub(crate) fn to_srgb(frame: &mut Frame, icc: &[u8]) -> Result<(), Error> {
    let Ok(profile) = ColorProfile::new_from_slice(icc) else {
        tracing::debug!("unreadable ICC profile ignored");
        return Ok(());
    };
    match profile.color_space {
        DataColorSpace::Rgb => rgb_to_srgb(frame, &profile),
        DataColorSpace::Gray => grey_to_srgb(frame, &profile),
        other => {
            tracing::debug!(?other, "ICC profile for another colour space ignored");
            Ok(())
        }
    }
}

/// An ICC profile for RGB pixels described only by CICP code points (ITU-T H.273; HEIF's
/// and AVIF's `nclx` colour box), so that they take the same path as an embedded profile.
/// `None` where they mean sRGB (BT.709 or unspecified primaries), where they are not
/// understood, or where the transfer is HDR (PQ, HLG): mapping HDR to sRGB needs tone
/// mapping, which Prism does not do, so those pixels are left as they are.
#[cfg_attr(not(feature = "heif"), allow(dead_code))] // only HEIF and AVIF carry CICP
pub(crate) fn icc_from_cicp(primaries: u8, transfer: u8) -> Option<Vec<u8>> {
    const BT709: u8 = 1;
    const UNSPECIFIED: u8 = 2;
    const SRGB_TRANSFER: u8 = 13;
    const PQ: u8 = 16;
    const HLG: u8 = 18;
    if matches!(primaries, BT709 | UNSPECIFIED) || matches!(transfer, PQ | HLG) {
        return None;
    }
    let transfer = if transfer == UNSPECIFIED {
        SRGB_TRANSFER
    } else {
        transfer
    };
    let profile = ColorProfile::new_from_cicp(CicpProfile {
        color_primaries: CicpColorPrimaries::try_from(primaries).ok()?,
        transfer_characteristics: TransferCharacteristics::try_from(transfer).ok()?,
        // Unused: the pixels are RGB already.
        matrix_coefficients: MatrixCoefficients::Bt709,
        full_range: true,
    });
    profile.red_trc.as_ref()?;
    profile.encode().ok()
}

/// Converts CMYK pixels (4 bytes each, ICC convention: 0 is no ink) to an sRGB frame,
/// through `icc` when it is a readable CMYK profile, else through the default one.
pub(crate) fn cmyk_to_srgb(
    width: u32,
    height: u32,
    ink: &[u8],
    icc: Option<&[u8]>,
) -> Result<Frame, Error> {
    let embedded = icc
        .and_then(|icc| ColorProfile::new_from_slice(icc).ok())
        .filter(|profile| profile.color_space == DataColorSpace::Cmyk);
    let transform =
        match embedded.and_then(|profile| transform(&profile, CmsLayout::Rgba, CmsLayout::Rgb)) {
            Some(transform) => transform,
            None => default_cmyk_transform()?,
        };
    let mut rgb = Vec::new();
    rgb.try_reserve_exact(ink.len() / 4 * 3)
        .map_err(|_| Error::Limits(format!("{width}x{height} does not fit in memory")))?;
    rgb.resize(ink.len() / 4 * 3, 0);
    for (ink, rgb) in ink
        .chunks(CHUNK_PIXELS * 4)
        .zip(rgb.chunks_mut(CHUNK_PIXELS * 3))
    {
        transform.transform(ink, rgb).map_err(cms_error)?;
    }
    Frame::new(width, height, Layout::Rgb8, rgb)
}

fn rgb_to_srgb(frame: &mut Frame, profile: &ColorProfile) -> Result<(), Error> {
    let layout = match frame.layout() {
        Layout::Rgb8 => CmsLayout::Rgb,
        Layout::Rgba8 => CmsLayout::Rgba,
    };
    let Some(transform) = transform(profile, layout, layout) else {
        return Ok(());
    };
    if is_identity(&transform, frame.bytes_per_pixel())? {
        return Ok(());
    }
    let chunk = CHUNK_PIXELS * frame.bytes_per_pixel();
    let mut scratch = vec![0; chunk];
    for pixels in frame.data_mut().chunks_mut(chunk) {
        let converted = &mut scratch[..pixels.len()];
        transform.transform(pixels, converted).map_err(cms_error)?;
        pixels.copy_from_slice(converted);
    }
    Ok(())
}

/// A grey profile maps each grey level to one neutral sRGB grey: a 256-entry table from the
/// profile's tone curve (to luminance, or to L* when the profile connects through Lab), then
/// sRGB's encoding, applied to every pixel (alpha untouched). White stays white, as with
/// the relative colorimetric intent.
fn grey_to_srgb(frame: &mut Frame, profile: &ColorProfile) -> Result<(), Error> {
    let Some(curve) = &profile.gray_trc else {
        tracing::debug!("grey ICC profile without a tone curve ignored");
        return Ok(());
    };
    let Ok(to_linear) = curve.make_linear_evaluator() else {
        tracing::debug!("grey ICC profile with an unusable tone curve ignored");
        return Ok(());
    };
    let through_lab = profile.pcs == DataColorSpace::Lab;
    let table: Vec<u8> = (0..=255u8)
        .map(|level| {
            let value = to_linear.evaluate_value(f32::from(level) / 255.0);
            let luminance = if through_lab {
                luminance_from_lightness(value * 100.0)
            } else {
                value
            };
            srgb_encode(luminance)
        })
        .collect();
    let bytes_per_pixel = frame.bytes_per_pixel();
    for pixel in frame.data_mut().chunks_exact_mut(bytes_per_pixel) {
        let grey = table[usize::from(pixel[0])];
        pixel[..3].fill(grey);
    }
    Ok(())
}

/// CIE L* (0..=100) to relative luminance Y (0..=1).
fn luminance_from_lightness(lightness: f32) -> f32 {
    if lightness > 8.0 {
        ((lightness + 16.0) / 116.0).powi(3)
    } else {
        lightness / 903.3
    }
}

/// Relative luminance to an 8-bit sRGB value.
fn srgb_encode(luminance: f32) -> u8 {
    let y = luminance.clamp(0.0, 1.0);
    let encoded = if y <= 0.003_130_8 {
        12.92 * y
    } else {
        1.055 * y.powf(1.0 / 2.4) - 0.055
    };
    (encoded * 255.0).round() as u8
}

/// The transform from `source` to sRGB; `None` (logged) when moxcms cannot build it (an
/// unusual profile is ignored, not a reason to refuse the photo).
fn transform(
    source: &ColorProfile,
    source_layout: CmsLayout,
    target_layout: CmsLayout,
) -> Option<Transform> {
    let options = TransformOptions {
        rendering_intent: RenderingIntent::RelativeColorimetric,
        ..TransformOptions::default()
    };
    source
        .create_transform_8bit(
            source_layout,
            &ColorProfile::new_srgb(),
            target_layout,
            options,
        )
        .inspect_err(|e| tracing::debug!(%e, "ICC profile cannot be applied: ignored"))
        .ok()
}

/// The fallback CMYK profile is large (a 4-D table): its transform is built once.
fn default_cmyk_transform() -> Result<Transform, Error> {
    static DEFAULT: OnceLock<Result<Transform, String>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            let profile = ColorProfile::new_from_slice(DEFAULT_CMYK_PROFILE)
                .map_err(|e| format!("default CMYK profile: {e}"))?;
            transform(&profile, CmsLayout::Rgba, CmsLayout::Rgb)
                .ok_or_else(|| "default CMYK profile: no transform".to_string())
        })
        .clone()
        .map_err(Error::Internal)
}

/// True when an RGB(A) transform with `channels` per pixel changes no colour of a 9×9×9
/// grid by more than SRGB_TOLERANCE: the profile is sRGB (or near enough), and converting
/// would only round.
fn is_identity(transform: &Transform, channels: usize) -> Result<bool, Error> {
    const LEVELS: [u8; 9] = [0, 32, 64, 96, 128, 160, 192, 224, 255];
    let mut grid = Vec::with_capacity(LEVELS.len().pow(3) * channels);
    for r in LEVELS {
        for g in LEVELS {
            for b in LEVELS {
                grid.extend_from_slice(&[r, g, b, u8::MAX][..channels]);
            }
        }
    }
    let mut converted = vec![0; grid.len()];
    transform
        .transform(&grid, &mut converted)
        .map_err(cms_error)?;
    Ok(grid
        .iter()
        .zip(&converted)
        .all(|(a, b)| a.abs_diff(*b) <= SRGB_TOLERANCE))
}

fn cms_error(error: moxcms::CmsError) -> Error {
    Error::Internal(format!("colour conversion: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cicp_wide_gamut_becomes_a_profile_and_srgb_does_not() {
        const P3: u8 = 12;
        const SRGB_TRANSFER: u8 = 13;
        assert!(icc_from_cicp(1, SRGB_TRANSFER).is_none(), "BT.709 is sRGB");
        assert!(icc_from_cicp(2, 2).is_none(), "unspecified is read as sRGB");
        assert!(icc_from_cicp(9, 16).is_none(), "PQ needs tone mapping");
        let icc = icc_from_cicp(P3, SRGB_TRANSFER).expect("Display P3");
        // A saturated P3 orange is more saturated than sRGB can show: it moves, while
        // neutral grey stays put.
        let mut frame = Frame::new(2, 1, Layout::Rgb8, vec![220, 120, 40, 128, 128, 128]).unwrap();
        to_srgb(&mut frame, &icc).unwrap();
        let pixels = frame.data();
        assert!(pixels[0] > 230 && pixels[2] < 40, "{pixels:?}");
        assert!(
            pixels[3..].iter().all(|&v| v.abs_diff(128) <= 1),
            "{pixels:?}"
        );
    }
}
