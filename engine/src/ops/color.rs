//! Colour operations on RGB channels; alpha is left as it is.
//!
//! Per-channel adjustments go through a 256-entry lookup table built once per call.

use crate::frame::Frame;

/// Fixed-point arithmetic of the colour matrices: 16.16, rounded to nearest.
pub(crate) const FIXED_SHIFT: u32 = 16;
pub(crate) const FIXED_HALF: u32 = 1 << (FIXED_SHIFT - 1);

/// The argument range of brightness, contrast and saturation.
pub(crate) const ADJUST: (i32, i32) = (-100, 100);

/// CPU nanoseconds per pixel of the per-pixel colour operations (cost model).
pub(crate) const NS_PER_PIXEL: f64 = 3.0;

/// Rec. 601 luma weights (R, G, B) in 16.16 fixed point; they sum to 1.0.
pub(crate) const LUMA_WEIGHTS: [u32; 3] = [19595, 38470, 7471];

/// The classic sepia matrix (rows give R, G, B), in 16.16 fixed point.
pub(crate) const SEPIA_MATRIX: [[u32; 3]; 3] = [
    [25756, 50397, 12386],
    [22872, 44958, 11010],
    [17826, 34996, 8585],
];

/// One row of a fixed-point colour matrix applied to a pixel, rounded (may exceed 255).
fn fixed_dot([kr, kg, kb]: [u32; 3], r: u8, g: u8, b: u8) -> u32 {
    (kr * u32::from(r) + kg * u32::from(g) + kb * u32::from(b) + FIXED_HALF) >> FIXED_SHIFT
}

/// Rec. 601 luma.
pub(super) fn luma(r: u8, g: u8, b: u8) -> u8 {
    fixed_dot(LUMA_WEIGHTS, r, g, b) as u8
}

fn clamp_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// Maps every colour channel through `lut`; alpha is kept.
pub(crate) fn apply_table(frame: &mut Frame, lut: &[u8; 256]) {
    let bpp = frame.bytes_per_pixel();
    for pixel in frame.data_mut().chunks_exact_mut(bpp) {
        for channel in &mut pixel[..3] {
            *channel = lut[usize::from(*channel)];
        }
    }
}

fn lut_from(f: impl Fn(f32) -> f32) -> [u8; 256] {
    std::array::from_fn(|i| clamp_u8(f(i as f32)))
}

fn map_rgb(frame: &mut Frame, f: impl Fn(u8, u8, u8) -> [u8; 3]) {
    let bpp = frame.bytes_per_pixel();
    for pixel in frame.data_mut().chunks_exact_mut(bpp) {
        let out = f(pixel[0], pixel[1], pixel[2]);
        pixel[..3].copy_from_slice(&out);
    }
}

pub(crate) fn gray(frame: &mut Frame) {
    map_rgb(frame, |r, g, b| {
        let y = luma(r, g, b);
        [y, y, y]
    });
}

/// Adds `value`% of full scale (−100..=100).
pub(crate) fn brightness_table(value: i32) -> [u8; 256] {
    let offset = value as f32 * 2.55;
    lut_from(|x| x + offset)
}

/// Scales distance from mid-grey by ((100 + value) / 100)²: −100 is flat grey, 100 is ×4.
pub(crate) fn contrast_table(value: i32) -> [u8; 256] {
    let factor = ((100 + value) as f32 / 100.0).powi(2);
    lut_from(|x| (x - 128.0) * factor + 128.0)
}

/// Scales distance from the pixel's luma by (100 + value) / 100: −100 is grey, 100 doubles it.
/// Fixed point (8 fractional bits), rounding half up.
pub(crate) fn saturation(frame: &mut Frame, value: i32) {
    let factor = saturation_factor(value);
    map_rgb(frame, |r, g, b| {
        let y = i32::from(luma(r, g, b));
        [r, g, b].map(|c| (y + (((i32::from(c) - y) * factor + 128) >> 8)).clamp(0, 255) as u8)
    });
}

/// The saturation factor with 8 fractional bits.
pub(crate) fn saturation_factor(value: i32) -> i32 {
    256 * (100 + value) / 100
}

/// out = 255 · (in / 255)^(1 / gamma): above 1 brightens mid-tones (as ImageMagick's -gamma).
pub(crate) fn gamma_table(gamma: f64) -> [u8; 256] {
    let exponent = (1.0 / gamma) as f32;
    lut_from(|x| 255.0 * (x / 255.0).powf(exponent))
}

/// The classic sepia tone ([`SEPIA_MATRIX`]).
pub(crate) fn sepia(frame: &mut Frame) {
    map_rgb(frame, |r, g, b| {
        SEPIA_MATRIX.map(|row| fixed_dot(row, r, g, b).min(255) as u8)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Layout;

    fn pixel(rgba: [u8; 4]) -> Frame {
        Frame::new(1, 1, Layout::Rgba8, rgba.to_vec()).unwrap()
    }

    fn run(op: impl Fn(&mut Frame), rgba: [u8; 4]) -> Vec<u8> {
        let mut frame = pixel(rgba);
        op(&mut frame);
        frame.data().to_vec()
    }

    #[test]
    fn hand_computed_values_and_alpha_untouched() {
        // 0.299*200 + 0.587*100 + 0.114*50 = 124.2
        assert_eq!(run(gray, [200, 100, 50, 7]), [124, 124, 124, 7]);
        assert_eq!(
            run(|f| apply_table(f, &brightness_table(10)), [0, 100, 250, 7]),
            [26, 126, 255, 7]
        );
        assert_eq!(
            run(
                |f| apply_table(f, &brightness_table(-100)),
                [0, 100, 250, 7]
            ),
            [0, 0, 0, 7]
        );
        assert_eq!(
            run(|f| apply_table(f, &contrast_table(-100)), [0, 100, 250, 7]),
            [128, 128, 128, 7]
        );
        // factor 1.21: (100-128)*1.21+128 = 94.12; (250-128)*1.21+128 = 275.6 -> 255
        assert_eq!(
            run(|f| apply_table(f, &contrast_table(10)), [0, 100, 250, 7]),
            [0, 94, 255, 7]
        );
        assert_eq!(
            run(|f| saturation(f, -100), [200, 100, 50, 7]),
            [124, 124, 124, 7]
        );
        // y=124: 124 + 76*1.5 = 238, 124 - 24*1.5 = 88, 124 - 74*1.5 = 13
        assert_eq!(
            run(|f| saturation(f, 50), [200, 100, 50, 7]),
            [238, 88, 13, 7]
        );
        // 255 * (64/255)^(1/2) = 127.75
        assert_eq!(
            run(|f| apply_table(f, &gamma_table(2.0)), [64, 0, 255, 7]),
            [128, 0, 255, 7]
        );
        // .393*100+.769*50+.189*20 = 81.53; .349*100+.686*50+.168*20 = 72.56; .272*100+.534*50+.131*20 = 56.52
        assert_eq!(run(sepia, [100, 50, 20, 7]), [82, 73, 57, 7]);
    }
}
