//! Premultiplied alpha for the operations that average neighbouring pixels (blur,
//! sharpen, pixelate), so transparent pixels do not bleed their hidden colour.
//! Resampling does the same inside fast_image_resize.

use crate::frame::{Frame, Layout};

/// Full alpha, the divisor of premultiplication.
pub(crate) const OPAQUE: u32 = 255;
/// Added before dividing by [`OPAQUE`], so premultiplied values round to nearest.
pub(crate) const PREMULTIPLY_HALF: u32 = OPAQUE / 2;

/// Runs `f` on premultiplied pixels when the frame has alpha, then divides back.
pub fn with_premultiplied(frame: &mut Frame, f: impl FnOnce(&mut Frame)) {
    if frame.layout() == Layout::Rgb8 {
        f(frame);
        return;
    }
    for px in frame.data_mut().chunks_exact_mut(4) {
        let a = u32::from(px[3]);
        for c in &mut px[..3] {
            *c = ((u32::from(*c) * a + PREMULTIPLY_HALF) / OPAQUE) as u8;
        }
    }
    f(frame);
    for px in frame.data_mut().chunks_exact_mut(4) {
        let a = u32::from(px[3]);
        for c in &mut px[..3] {
            *c = (u32::from(*c) * OPAQUE + a / 2)
                .checked_div(a)
                .map_or(0, |v| v.min(255) as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_opaque_and_clears_invisible_colour() {
        let mut frame =
            Frame::new(2, 1, Layout::Rgba8, vec![10, 20, 30, 255, 200, 100, 50, 0]).unwrap();
        with_premultiplied(&mut frame, |_| {});
        assert_eq!(frame.data(), &[10, 20, 30, 255, 0, 0, 0, 0]);
    }
}
