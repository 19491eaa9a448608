//! Gaussian blur (separable, two passes) and unsharp-mask sharpening.

use super::alpha::with_premultiplied;
use crate::frame::Frame;

/// Sigma of the blur that unsharp masking subtracts.
const SHARPEN_SIGMA: f64 = 1.0;

/// Normalised Gaussian weights for offsets −r..=r, r = ⌈3σ⌉.
fn kernel(sigma: f64) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil().max(1.0) as i64;
    let weights: Vec<f64> = (-radius..=radius)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = weights.iter().sum();
    weights.iter().map(|w| (w / sum) as f32).collect()
}

pub fn blur(frame: &mut Frame, sigma: f64) {
    with_premultiplied(frame, |frame| gaussian(frame, sigma));
}

/// out = in + amount · (in − blurred), on RGB; alpha is kept.
pub fn sharpen(frame: &mut Frame, amount: f64) {
    let mut blurred = frame.clone();
    gaussian(&mut blurred, SHARPEN_SIGMA);
    let bpp = frame.bytes_per_pixel();
    let amount = amount as f32;
    for (px, soft) in frame
        .data_mut()
        .chunks_exact_mut(bpp)
        .zip(blurred.data().chunks_exact(bpp))
    {
        for c in 0..3 {
            let v = f32::from(px[c]);
            px[c] = (v + amount * (v - f32::from(soft[c])))
                .round()
                .clamp(0.0, 255.0) as u8;
        }
    }
}

/// Blurs every channel in place; edges repeat the border pixel.
fn gaussian(frame: &mut Frame, sigma: f64) {
    let weights = kernel(sigma);
    let radius = weights.len() / 2;
    let (width, height) = (frame.width() as usize, frame.height() as usize);
    let bpp = frame.bytes_per_pixel();
    let stride = frame.stride();
    let data = frame.data_mut();

    // Horizontal: pad each row by repeating its end pixels, then accumulate shifted copies.
    let mut padded = vec![0u8; (width + 2 * radius) * bpp];
    let mut acc = vec![0f32; stride];
    for row in data.chunks_exact_mut(stride) {
        for (i, px) in padded.chunks_exact_mut(bpp).enumerate() {
            let x = i.saturating_sub(radius).min(width - 1);
            px.copy_from_slice(&row[x * bpp..x * bpp + bpp]);
        }
        acc.fill(0.0);
        for (k, &w) in weights.iter().enumerate() {
            let shifted = &padded[k * bpp..k * bpp + stride];
            for (a, &v) in acc.iter_mut().zip(shifted) {
                *a += w * f32::from(v);
            }
        }
        for (out, a) in row.iter_mut().zip(&acc) {
            *out = (a + 0.5) as u8;
        }
    }

    // Vertical: each output row is a weighted sum of whole input rows.
    let source = data.to_vec();
    for (y, row) in data.chunks_exact_mut(stride).enumerate() {
        acc.fill(0.0);
        for (k, &w) in weights.iter().enumerate() {
            let sy = (y + k).saturating_sub(radius).min(height - 1);
            for (a, &v) in acc.iter_mut().zip(&source[sy * stride..(sy + 1) * stride]) {
                *a += w * f32::from(v);
            }
        }
        for (out, a) in row.iter_mut().zip(&acc) {
            *out = (a + 0.5) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Layout;

    fn gray_row(values: &[u8]) -> Frame {
        let data = values.iter().flat_map(|&v| [v, v, v]).collect();
        Frame::new(values.len() as u32, 1, Layout::Rgb8, data).unwrap()
    }

    #[test]
    fn kernel_is_normalised_and_symmetric() {
        let k = kernel(1.5);
        assert_eq!(k.len(), 11);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(k[0], k[10]);
    }

    #[test]
    fn blurs_an_impulse_into_the_kernel() {
        // A single bright pixel spreads into the (independently computed) Gaussian weights.
        let mut frame = gray_row(&[0, 0, 0, 0, 200, 0, 0, 0, 0]);
        gaussian(&mut frame, 1.0);
        let got: Vec<u8> = frame.data().chunks_exact(3).map(|p| p[0]).collect();
        // 200 * exp(-d²/2) / Σ, Σ over d=-3..3 = 2.50623
        assert_eq!(got, vec![0, 1, 11, 48, 80, 48, 11, 1, 0]);
    }

    #[test]
    fn flat_images_stay_flat() {
        let mut frame = Frame::new(5, 4, Layout::Rgb8, vec![77; 60]).unwrap();
        gaussian(&mut frame, 3.0);
        assert!(frame.data().iter().all(|&v| v == 77));
        sharpen(&mut frame, 2.0);
        assert!(frame.data().iter().all(|&v| v == 77));
    }

    #[test]
    fn sharpen_raises_edge_contrast() {
        let mut frame = gray_row(&[50, 50, 50, 200, 200, 200]);
        sharpen(&mut frame, 1.0);
        let got: Vec<u8> = frame.data().chunks_exact(3).map(|p| p[0]).collect();
        assert!(got[2] < 50 && got[3] > 200, "{got:?}");
    }
}
