//! Where `fill` crops: the centre, or the part of the image that holds the subject. Only
//! one axis is cropped (the other fits exactly), so the answer is a position along it,
//! as the fraction of the overflow cut from the start (0.5 is the centre).
//!
//! Both smart gravities look at a copy at most `ANALYSIS_SIDE` pixels long, so their cost
//! does not grow with the photo:
//! - `entropy` (as sharp's): repeatedly drop the end strip whose grey histogram carries
//!   less information, until the window fits; it keeps the busiest part.
//! - `attention` (after sharp's): score each pixel for edges, colour saturation and skin
//!   tones, and place the window where the score sums highest.

use serde::{Deserialize, Serialize};

use crate::frame::Frame;

/// How `fill` positions its crop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gravity {
    #[default]
    Centre,
    Entropy,
    Attention,
}

impl Gravity {
    pub const ALL: [Gravity; 3] = [Gravity::Centre, Gravity::Entropy, Gravity::Attention];

    pub fn name(self) -> &'static str {
        match self {
            Gravity::Centre => "centre",
            Gravity::Entropy => "entropy",
            Gravity::Attention => "attention",
        }
    }

    /// Also takes the American spelling.
    pub fn from_name(name: &str) -> Option<Gravity> {
        match name {
            "center" => Some(Gravity::Centre),
            _ => Gravity::ALL.into_iter().find(|g| g.name() == name),
        }
    }

    /// Whether the crop depends on the pixels (so it cannot be planned before they exist).
    pub fn reads_pixels(self) -> bool {
        self != Gravity::Centre
    }

    /// The crop position for covering `target` from `frame`: (x, y) fractions of each
    /// axis's overflow cut from the start, for `ResizeOptions::fit_into_destination`.
    pub fn centering(self, frame: &Frame, target: (u32, u32)) -> (f64, f64) {
        if self == Gravity::Centre {
            return (0.5, 0.5);
        }
        let (width, height) = (f64::from(frame.width()), f64::from(frame.height()));
        let wanted = f64::from(target.0) / f64::from(target.1);
        let crops_width = width / height > wanted;
        let small = Analysis::new(frame);
        // The window's share of the cropped axis.
        let (share, along) = if crops_width {
            (wanted * height / width, small.width)
        } else {
            (width / wanted / height, small.height)
        };
        let window = ((share * along as f64).round() as usize).clamp(1, along);
        if window >= along {
            return (0.5, 0.5);
        }
        let start = match self {
            Gravity::Attention => best_window(&small.attention_per_line(crops_width), window),
            _ => lowest_information_trimmed(&small.histograms_per_line(crops_width), window),
        };
        let fraction = start as f64 / (along - window) as f64;
        if crops_width {
            (fraction, 0.5)
        } else {
            (0.5, fraction)
        }
    }
}

/// Longest side of the copy the gravities analyse.
const ANALYSIS_SIDE: usize = 256;
/// How much less the outermost line counts than the middle one in `attention`.
const CENTRE_PRIOR: f64 = 0.5;
/// Strongest edge response one pixel may score.
const EDGE_CAP: i32 = 32;
/// Grey levels in the entropy histograms (fewer bins keep small strips meaningful).
const ENTROPY_BINS: usize = 64;

/// A box-averaged RGB copy of the frame, at most `ANALYSIS_SIDE` pixels long, and its luma.
struct Analysis {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
    luma: Vec<i32>,
}

impl Analysis {
    fn new(frame: &Frame) -> Analysis {
        let (full_width, full_height) = (frame.width() as usize, frame.height() as usize);
        let block = full_width.max(full_height).div_ceil(ANALYSIS_SIDE).max(1);
        let (width, height) = (full_width.div_ceil(block), full_height.div_ceil(block));
        let bpp = frame.bytes_per_pixel();
        let data = frame.data();
        let mut rgb = Vec::with_capacity(width * height);
        for by in 0..height {
            for bx in 0..width {
                let (mut sum, mut count) = ([0u64; 3], 0u64);
                for y in by * block..((by + 1) * block).min(full_height) {
                    let row = y * full_width;
                    for x in bx * block..((bx + 1) * block).min(full_width) {
                        let px = &data[(row + x) * bpp..(row + x) * bpp + 3];
                        for c in 0..3 {
                            sum[c] += u64::from(px[c]);
                        }
                        count += 1;
                    }
                }
                rgb.push(sum.map(|s| (s / count.max(1)) as u8));
            }
        }
        let luma = rgb
            .iter()
            .map(|&[r, g, b]| i32::from(super::color::luma(r, g, b)))
            .collect();
        Analysis {
            width,
            height,
            rgb,
            luma,
        }
    }

    fn luma(&self, x: usize, y: usize) -> i32 {
        self.luma[y * self.width + x]
    }

    /// How many lines (along the cropped axis) there are.
    fn line_count(&self, crops_width: bool) -> usize {
        if crops_width { self.width } else { self.height }
    }

    /// Sum of each line's interest (a line is a column when cropping width, a row
    /// otherwise): edges (luma Laplacian), colour more saturated than the image's average,
    /// skin tones; lines near the middle count more, as photographers centre subjects.
    fn attention_per_line(&self, crops_width: bool) -> Vec<f64> {
        let saturation = |[r, g, b]: [u8; 3]| i32::from(r.max(g).max(b) - r.min(g).min(b));
        let mean_saturation =
            self.rgb.iter().map(|&px| saturation(px)).sum::<i32>() / self.rgb.len().max(1) as i32;
        let mut sums = vec![0.0; self.line_count(crops_width)];
        for y in 0..self.height {
            for x in 0..self.width {
                let centre = self.luma(x, y);
                let neighbours = [
                    self.luma(x.saturating_sub(1), y),
                    self.luma((x + 1).min(self.width - 1), y),
                    self.luma(x, y.saturating_sub(1)),
                    self.luma(x, (y + 1).min(self.height - 1)),
                ];
                // Capped, so that a large texture (bark, foliage) does not outweigh a subject.
                let edge = (4 * centre - neighbours.iter().sum::<i32>())
                    .abs()
                    .min(EDGE_CAP);
                let pixel = self.rgb[y * self.width + x];
                let standout = (saturation(pixel) - mean_saturation).max(0);
                let [r, g, b] = pixel.map(i32::from);
                let score = f64::from(edge) + 0.5 * f64::from(standout) + skin_bonus(r, g, b);
                sums[line_of(x, y, crops_width)] += score;
            }
        }
        let middle = (sums.len() as f64 - 1.0) / 2.0;
        for (line, sum) in sums.iter_mut().enumerate() {
            let off_centre = (line as f64 - middle) / middle.max(1.0);
            *sum *= 1.0 - CENTRE_PRIOR * off_centre * off_centre;
        }
        sums
    }

    /// Each line's grey histogram.
    fn histograms_per_line(&self, crops_width: bool) -> Vec<[u32; ENTROPY_BINS]> {
        let mut histograms = vec![[0u32; ENTROPY_BINS]; self.line_count(crops_width)];
        for y in 0..self.height {
            for x in 0..self.width {
                let bin = self.luma(x, y) as usize * ENTROPY_BINS / 256;
                histograms[line_of(x, y, crops_width)][bin.min(ENTROPY_BINS - 1)] += 1;
            }
        }
        histograms
    }
}

/// Which line a pixel belongs to: its column when cropping width, its row otherwise.
fn line_of(x: usize, y: usize, crops_width: bool) -> usize {
    if crops_width { x } else { y }
}

/// Skin tones (Kovac's RGB rule) score as much as a strong edge: faces are what people
/// crop for.
fn skin_bonus(r: i32, g: i32, b: i32) -> f64 {
    let is_skin = r > 95
        && g > 40
        && b > 20
        && r > g
        && r > b
        && r - g > 15
        && r.max(g).max(b) - r.min(g).min(b) > 15;
    if is_skin { 64.0 } else { 0.0 }
}

/// Start of the `window` consecutive lines with the highest sum; among equals, the one
/// nearest the centre.
fn best_window(sums: &[f64], window: usize) -> usize {
    let positions = sums.len() - window + 1;
    let centre = (sums.len() - window) as f64 / 2.0;
    let mut total: f64 = sums[..window].iter().sum();
    let (mut best, mut best_total) = (0, total);
    for start in 1..positions {
        total += sums[start + window - 1] - sums[start - 1];
        let closer = (start as f64 - centre).abs() < (best as f64 - centre).abs();
        if total > best_total * (1.0 + 1e-9) || (total >= best_total * (1.0 - 1e-9) && closer) {
            (best, best_total) = (start, total);
        }
    }
    best
}

/// Trims strips from both ends, each time the one with less entropy (on a tie, the end
/// trimmed less so far), until `window` lines remain; returns where they start.
fn lowest_information_trimmed(histograms: &[[u32; ENTROPY_BINS]], window: usize) -> usize {
    let (mut start, mut end) = (0, histograms.len());
    while end - start > window {
        let excess = end - start - window;
        let strip = (window / 16).clamp(1, excess);
        let head = entropy(&histograms[start..start + strip]);
        let tail = entropy(&histograms[end - strip..end]);
        let trims_head = if head == tail {
            start <= histograms.len() - end
        } else {
            head < tail
        };
        if trims_head {
            start += strip;
        } else {
            end -= strip;
        }
    }
    start
}

/// Shannon entropy (bits) of the grey levels in these lines together.
fn entropy(lines: &[[u32; ENTROPY_BINS]]) -> f64 {
    let mut merged = [0u32; ENTROPY_BINS];
    for histogram in lines {
        for (total, count) in merged.iter_mut().zip(histogram) {
            *total += count;
        }
    }
    let count: u32 = merged.iter().sum();
    if count == 0 {
        return 0.0;
    }
    merged
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = f64::from(n) / f64::from(count);
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Layout;

    /// A flat grey 300×100 scene with a busy, colourful 40×40 patch whose left edge is at `x`.
    fn scene_with_subject_at(x: u32) -> Frame {
        let (width, height) = (300u32, 100u32);
        let mut data = Vec::with_capacity((width * height * 3) as usize);
        for py in 0..height {
            for px in 0..width {
                let inside = (x..x + 40).contains(&px) && (30..70).contains(&py);
                let pixel = if inside {
                    let v = ((px * 37 + py * 91) % 200) as u8;
                    [200, v, 255 - v]
                } else {
                    [120, 120, 120]
                };
                data.extend_from_slice(&pixel);
            }
        }
        Frame::new(width, height, Layout::Rgb8, data).unwrap()
    }

    /// Where the crop window starts in source pixels for a square `fill` of the scene.
    fn window_start(gravity: Gravity, frame: &Frame) -> f64 {
        let (fx, fy) = gravity.centering(frame, (100, 100));
        assert_eq!(fy, 0.5, "the height fits, so it is not cropped");
        fx * f64::from(frame.width() - frame.height())
    }

    #[test]
    fn smart_gravities_follow_an_off_centre_subject() {
        for subject in [10u32, 240] {
            let frame = scene_with_subject_at(subject);
            for gravity in [Gravity::Entropy, Gravity::Attention] {
                let start = window_start(gravity, &frame);
                let (left, right) = (f64::from(subject), f64::from(subject + 40));
                assert!(
                    start <= left && start + 100.0 >= right,
                    "{gravity:?}: window {start}..{} misses the subject {left}..{right}",
                    start + 100.0
                );
            }
            assert_eq!(window_start(Gravity::Centre, &frame), 100.0);
        }
    }

    #[test]
    fn a_featureless_image_stays_centred() {
        let frame = Frame::new(300, 100, Layout::Rgb8, vec![90; 300 * 100 * 3]).unwrap();
        assert_eq!(Gravity::Attention.centering(&frame, (1, 1)), (0.5, 0.5));
        let (fx, _) = Gravity::Entropy.centering(&frame, (1, 1));
        assert!((fx - 0.5).abs() < 0.02, "{fx}");
    }

    #[test]
    fn portrait_crops_the_height_and_same_aspect_crops_nothing() {
        let frame = Frame::new(50, 400, Layout::Rgb8, vec![90; 50 * 400 * 3]).unwrap();
        let (fx, fy) = Gravity::Attention.centering(&frame, (50, 50));
        assert_eq!(fx, 0.5);
        assert!(
            (fy - 0.5).abs() < 0.01,
            "{fy}: the middle, to a pixel of the analysis copy"
        );
        assert_eq!(Gravity::Entropy.centering(&frame, (5, 40)), (0.5, 0.5));
    }

    #[test]
    fn names_round_trip() {
        for gravity in Gravity::ALL {
            assert_eq!(Gravity::from_name(gravity.name()), Some(gravity));
        }
        assert_eq!(Gravity::from_name("center"), Some(Gravity::Centre));
    }
}
