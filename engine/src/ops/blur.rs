//! Gaussian blur (separable, two passes) and unsharp-mask sharpening.

use super::alpha::with_premultiplied;
use crate::frame::Frame;

/// Sigma of the blur that unsharp masking subtracts.
pub(crate) const SHARPEN_SIGMA: f64 = 1.0;

/// Normalised Gaussian weights for offsets −r..=r, r = ⌈3σ⌉.
pub(crate) fn kernel(sigma: f64) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil().max(1.0) as i64;
    let weights: Vec<f64> = (-radius..=radius)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = weights.iter().sum();
    weights.iter().map(|w| (w / sum) as f32).collect()
}

/// Above this sigma, three box blurs stand in for the Gaussian: their cost does not grow
/// with the radius (an exact kernel at sigma 50 has 301 taps).
/// (Measured on a 12 MP photo: the exact kernel costs less up to about sigma 5.)
pub(crate) const EXACT_UP_TO_SIGMA: f64 = 5.0;

pub fn blur(frame: &mut Frame, sigma: f64) {
    with_premultiplied(frame, |frame| {
        if sigma <= EXACT_UP_TO_SIGMA {
            gaussian(frame, sigma);
        } else {
            for radius in box_radii(sigma) {
                box_pass_horizontal(frame, radius);
                box_pass_vertical(frame, radius);
            }
        }
    });
}

/// Radii of three successive box filters whose combined variance matches sigma²
/// (W. Jarosz / P. Kovesi's construction: widths w and w + 2, odd).
pub(crate) fn box_radii(sigma: f64) -> [usize; 3] {
    const PASSES: f64 = 3.0;
    let variance = 12.0 * sigma * sigma;
    let mut lower = (variance / PASSES + 1.0).sqrt().floor() as i64;
    if lower % 2 == 0 {
        lower -= 1;
    }
    let lower_f = lower as f64;
    let narrow_passes =
        ((variance - PASSES * lower_f * lower_f - 4.0 * PASSES * lower_f - 3.0 * PASSES)
            / (-4.0 * lower_f - 4.0))
            .round();
    std::array::from_fn(|pass| {
        let width = if (pass as f64) < narrow_passes {
            lower
        } else {
            lower + 2
        };
        ((width.max(1) - 1) / 2) as usize
    })
}

/// Divides a window sum by the window size, rounding, with a multiply instead of a division.
struct Average {
    reciprocal: u64,
}

impl Average {
    fn new(radius: usize) -> Average {
        let window = (2 * radius + 1) as u64;
        Average {
            reciprocal: (1u64 << 32).div_ceil(window),
        }
    }

    fn of(&self, sum: u32, window_half: u32) -> u8 {
        ((u64::from(sum + window_half) * self.reciprocal) >> 32).min(255) as u8
    }
}

/// Running-sum box filter along rows; edges repeat the border pixel.
fn box_pass_horizontal(frame: &mut Frame, radius: usize) {
    let (width, bpp, stride) = (
        frame.width() as usize,
        frame.bytes_per_pixel(),
        frame.stride(),
    );
    let (average, half) = (Average::new(radius), radius as u32);
    let mut source = vec![0u8; stride];
    for row in frame
        .data_mut()
        .chunks_exact_mut(stride)
        .take_while(still_in_time)
    {
        source.copy_from_slice(row);
        for channel in 0..bpp {
            let at = |x: isize| {
                u32::from(source[x.clamp(0, width as isize - 1) as usize * bpp + channel])
            };
            let r = radius as isize;
            let mut sum: u32 = (-r..=r).map(at).sum();
            for x in 0..width {
                row[x * bpp + channel] = average.of(sum, half);
                let xi = x as isize;
                sum = sum + at(xi + r + 1) - at(xi - r);
            }
        }
    }
}

/// Running-sum box filter down columns, a whole row at a time.
fn box_pass_vertical(frame: &mut Frame, radius: usize) {
    let (height, stride) = (frame.height() as usize, frame.stride());
    let (average, half) = (Average::new(radius), radius as u32);
    let source = frame.data().to_vec();
    let row = |y: isize| {
        let y = y.clamp(0, height as isize - 1) as usize;
        &source[y * stride..(y + 1) * stride]
    };
    let r = radius as isize;
    let mut sums = vec![0u32; stride];
    for dy in -r..=r {
        for (sum, &v) in sums.iter_mut().zip(row(dy)) {
            *sum += u32::from(v);
        }
    }
    let rows = frame.data_mut().chunks_exact_mut(stride);
    for (y, out) in rows.take_while(still_in_time).enumerate() {
        for (o, &sum) in out.iter_mut().zip(&sums) {
            *o = average.of(sum, half);
        }
        let (entering, leaving) = (row(y as isize + r + 1), row(y as isize - r));
        for ((sum, &add), &sub) in sums.iter_mut().zip(entering).zip(leaving) {
            *sum = *sum + u32::from(add) - u32::from(sub);
        }
    }
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
    for row in data.chunks_exact_mut(stride).take_while(still_in_time) {
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
    for (y, row) in data
        .chunks_exact_mut(stride)
        .take_while(still_in_time)
        .enumerate()
    {
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

/// Row loops stop once the job is out of time (the step's check then fails the job).
fn still_in_time<T>(_row: &T) -> bool {
    !crate::limits::out_of_time()
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
    fn box_radii_match_the_variance() {
        for sigma in [5.5, 8.0, 12.0, 50.0] {
            // A box of radius r has variance r(r + 1) / 3.
            let variance: f64 = box_radii(sigma)
                .iter()
                .map(|&r| (r * (r + 1)) as f64 / 3.0)
                .sum();
            assert!(
                (variance.sqrt() - sigma).abs() / sigma < 0.1,
                "sigma {sigma}: {}",
                variance.sqrt()
            );
        }
    }

    #[test]
    fn large_sigma_boxes_stay_close_to_the_exact_gaussian() {
        // Gradient plus a deterministic pattern of sharp spots.
        let (width, height) = (120u32, 90u32);
        let data = (0..width * height)
            .flat_map(|i| {
                let (x, y) = (i % width, i / width);
                let spot = if (x * 7 + y * 13) % 23 == 0 { 200 } else { 0 };
                [(x * 2) as u8, (y * 2 + spot / 2) as u8, spot as u8]
            })
            .collect();
        let original = Frame::new(width, height, Layout::Rgb8, data).unwrap();
        let (mut exact, mut boxes) = (original.clone(), original);
        gaussian(&mut exact, 6.0);
        blur(&mut boxes, 6.0);
        let squared: f64 = exact
            .data()
            .iter()
            .zip(boxes.data())
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum();
        let psnr = 10.0 * (255f64.powi(2) / (squared / exact.data().len() as f64)).log10();
        eprintln!("box blur vs exact Gaussian, sigma 6: {psnr:.1} dB");
        assert!(psnr > 35.0, "{psnr:.1} dB");
    }

    #[test]
    fn sharpen_raises_edge_contrast() {
        let mut frame = gray_row(&[50, 50, 50, 200, 200, 200]);
        sharpen(&mut frame, 1.0);
        let got: Vec<u8> = frame.data().chunks_exact(3).map(|p| p[0]).collect();
        assert!(got[2] < 50 && got[3] > 200, "{got:?}");
    }
}
