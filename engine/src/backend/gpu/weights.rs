//! Resampling weights for the GPU, computed on the CPU exactly as fast_image_resize computes
//! them (same window bounds, zero trimming, normalisation and i16 fixed point), so the
//! integer convolution on the GPU lands on the CPU backend's values.

use crate::ops::Filter;

/// Largest fixed-point precision: 8 bits of result and two of headroom in an i32.
const PRECISION_BITS: u32 = 32 - 8 - 2;
/// Weights are kept within i16.
const MAX_WEIGHT_BITS: u32 = 15;

/// The weights of one resampling pass, laid out for the shader: `[start, count]` per output
/// index, then `window` weights per output index (i32 bits in u32 words).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Table {
    pub words: Vec<u32>,
    pub precision: u32,
    pub window: u32,
}

/// The source rectangle a resize reads (fractional for `fill`, as fast_image_resize's
/// centred crop box).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct CropBox {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

impl CropBox {
    pub fn whole(width: u32, height: u32) -> CropBox {
        CropBox {
            left: 0.0,
            top: 0.0,
            width: f64::from(width),
            height: f64::from(height),
        }
    }

    /// The centred part of the source with the destination's aspect ratio (Pillow's
    /// ImageOps.fit, as fast_image_resize does it).
    pub fn cover(src: (u32, u32), dst: (u32, u32)) -> CropBox {
        let (width, height) = (f64::from(src.0), f64::from(src.1));
        let image_ratio = width / height;
        let wanted_ratio = f64::from(dst.0) / f64::from(dst.1);
        let (crop_width, crop_height) = if (image_ratio - wanted_ratio).abs() < f64::EPSILON {
            (width, height)
        } else if image_ratio >= wanted_ratio {
            (wanted_ratio * height, height)
        } else {
            (width, width / wanted_ratio)
        };
        CropBox {
            left: (width - crop_width) * 0.5,
            top: (height - crop_height) * 0.5,
            width: crop_width,
            height: crop_height,
        }
    }
}

/// Whether an axis needs resampling at all, or is a plain integer offset.
pub(super) fn axis_needs_resampling(out_size: u32, start: f64, length: f64) -> bool {
    f64::from(out_size) != length || start != start.round()
}

/// A filter's weight function and its support (radius at scale 1).
pub(super) type Kernel = (fn(f64) -> f64, f64);

/// The convolution kernel of a filter and its support; `None` for nearest, which does
/// not convolve.
pub(super) fn kernel(filter: Filter) -> Option<Kernel> {
    match filter {
        Filter::Bilinear => Some((bilinear, 1.0)),
        Filter::Catmull => Some((catmull_rom, 2.0)),
        Filter::Mitchell => Some((mitchell, 2.0)),
        Filter::Lanczos3 => Some((lanczos3, 3.0)),
        Filter::Nearest => None,
    }
}

fn bilinear(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

fn catmull_rom(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.) * x - (A + 3.)) * x * x + 1.
    } else if x < 2.0 {
        (((x - 5.) * x + 8.) * x - 4.) * A
    } else {
        0.0
    }
}

fn mitchell(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        (7. * x / 6. - 2.) * x * x + 16. / 18.
    } else if x < 2.0 {
        ((2. - 7. * x / 18.) * x - 10. / 3.) * x + 16. / 9.
    } else {
        0.0
    }
}

fn lanczos3(x: f64) -> f64 {
    if (-3.0..3.0).contains(&x) {
        sinc(x) * sinc(x / 3.)
    } else {
        0.0
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

/// Convolution weights for `out_size` outputs reading `[in0, in1)` of `in_size` inputs; the
/// kernel widens with the downscale factor.
pub(super) fn convolution(
    in_size: u32,
    in0: f64,
    in1: f64,
    out_size: u32,
    (filter, support): Kernel,
) -> Table {
    let scale = (in1 - in0) / f64::from(out_size);
    let filter_scale = scale.max(1.0);
    let recip_filter_scale = 1.0 / filter_scale;
    let radius = support * filter_scale;
    let window = radius.ceil() as usize * 2 + 1;
    let mut spans = Vec::with_capacity(out_size as usize);
    let mut values: Vec<f64> = Vec::with_capacity(window * out_size as usize);
    for out in 0..out_size {
        let in_center = in0 + (f64::from(out) + 0.5) * scale;
        let x_min = (in_center - radius).floor().max(0.0) as u32;
        let x_max = (in_center + radius).ceil().min(f64::from(in_size)) as u32;
        let center = in_center - 0.5;
        let first = values.len();
        let (mut start, mut end) = (x_min, x_max);
        let mut total = 0.0;
        for x in x_min..x_max {
            let w = filter((f64::from(x) - center) * recip_filter_scale);
            if x == start && w == 0.0 {
                start += 1;
            } else {
                values.push(w);
                total += w;
            }
        }
        for &w in values[first..].iter().rev() {
            if end <= start || w != 0.0 {
                break;
            }
            end -= 1;
        }
        if total != 0.0 {
            values[first..].iter_mut().for_each(|w| *w /= total);
        }
        values.resize(first + window, 0.0);
        spans.push((start, end - start));
    }
    let max_weight = values.iter().copied().fold(0.0f64, f64::max);
    let mut precision = 0;
    for candidate in 0..PRECISION_BITS {
        precision = candidate;
        let next = (max_weight * f64::from(1u32 << (precision + 1))).round() as i32;
        if next >= 1 << MAX_WEIGHT_BITS {
            break;
        }
    }
    let scale = f64::from(1u32 << precision);
    let weights = values
        .chunks_exact(window)
        .zip(&spans)
        .flat_map(|(chunk, &(_, count))| {
            (0..window).map(move |i| {
                if i < count as usize {
                    (chunk[i] * scale).round() as i16 as i32
                } else {
                    0
                }
            })
        });
    layout(&spans, weights, precision, window)
}

/// One tap per output: `fill`/`fit` with the nearest filter, and axes that only shift.
/// Columns are found by multiplication, rows by repeated addition, each as
/// fast_image_resize does it.
pub(super) fn nearest(
    in_size: u32,
    start: f64,
    length: f64,
    out_size: u32,
    by_rows: bool,
) -> Table {
    let step = length / f64::from(out_size);
    let first = start + step * 0.5;
    let mut row = first;
    let sources = (0..out_size).map(|i| {
        let at = if by_rows {
            let at = row;
            row += step;
            at
        } else {
            first + step * f64::from(i)
        };
        (at as u32).min(in_size - 1)
    });
    one_tap(sources.collect())
}

/// An axis that is not resampled: output `i` reads input `offset + i`.
pub(super) fn shift(offset: u32, out_size: u32) -> Table {
    one_tap((0..out_size).map(|i| offset + i).collect())
}

fn one_tap(sources: Vec<u32>) -> Table {
    const PRECISION: u32 = 1;
    let spans: Vec<(u32, u32)> = sources.iter().map(|&s| (s, 1)).collect();
    let weights = std::iter::repeat_n(1i32 << PRECISION, spans.len());
    layout(&spans, weights, PRECISION, 1)
}

fn layout(
    spans: &[(u32, u32)],
    weights: impl Iterator<Item = i32>,
    precision: u32,
    window: usize,
) -> Table {
    let mut words = Vec::with_capacity(spans.len() * (2 + window));
    for &(start, count) in spans {
        words.extend([start, count]);
    }
    words.extend(weights.map(|w| w as u32));
    Table {
        words,
        precision,
        window: window as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights_of(table: &Table, out: usize, outputs: usize) -> Vec<i32> {
        let count = table.words[2 * out + 1] as usize;
        let at = 2 * outputs + out * table.window as usize;
        table.words[at..at + count]
            .iter()
            .map(|&w| w as i32)
            .collect()
    }

    #[test]
    fn halving_with_bilinear_averages_pairs() {
        // 4 -> 2: each output centres between two inputs with a kernel twice as wide.
        let table = convolution(4, 0.0, 4.0, 2, kernel(Filter::Bilinear).unwrap());
        assert_eq!(&table.words[..4], &[0, 3, 1, 3]);
        let weights = weights_of(&table, 0, 2);
        let sum: i32 = weights.iter().sum();
        assert!((sum - (1 << table.precision)).abs() <= 2, "{weights:?}");
        assert_eq!(weights[0], weights[1], "{weights:?}");
    }

    #[test]
    fn every_filter_normalises_to_one() {
        for filter in Filter::ALL.into_iter().filter_map(kernel) {
            for (from, to) in [(100, 37), (37, 100), (5, 1), (1, 5)] {
                let table = convolution(from, 0.0, f64::from(from), to, filter);
                for out in 0..to as usize {
                    let sum: i32 = weights_of(&table, out, to as usize).iter().sum();
                    let one = 1 << table.precision;
                    assert!((sum - one).abs() <= one / 1000 + 2, "{from}->{to}");
                }
            }
        }
    }

    #[test]
    fn cover_box_is_centred() {
        let crop = CropBox::cover((300, 100), (100, 100));
        assert_eq!(
            (crop.left, crop.width, crop.top, crop.height),
            (100.0, 100.0, 0.0, 100.0)
        );
        assert!(!axis_needs_resampling(100, crop.top, crop.height));
    }

    #[test]
    fn nearest_picks_centres() {
        let table = nearest(10, 0.0, 10.0, 5, false);
        let starts: Vec<u32> = table.words[..10].chunks(2).map(|s| s[0]).collect();
        assert_eq!(starts, vec![1, 3, 5, 7, 9]);
        assert_eq!(nearest(10, 0.0, 10.0, 5, true).words, table.words);
    }
}
