//! Estimates a job's peak working memory from its header and planned sizes, before any
//! decoding, so the pool can reserve it against the memory budget.
//!
//! Deliberately on the high side: the budget is a promise about resident memory, and an
//! estimate that is too low breaks it while one that is too high only costs parallelism.

use crate::codec::{ImageInfo, jpeg_scans};
use crate::format::ImageFormat;
use crate::pipeline::Plan;

/// Bytes per pixel while decoding, beyond the decoded frame itself: progressive JPEG keeps
/// every DCT coefficient (i16, up to three full-resolution components); PNG holds its raw
/// rows before expansion; WebP its YUV planes; GIF a frame buffer beside the canvas;
/// libheif its YCbCr planes (up to 16 bits, 4:4:4) and its own interleaved copy.
fn decoder_overhead_per_pixel(format: ImageFormat) -> u64 {
    match format {
        ImageFormat::Jpeg => 6,
        ImageFormat::Png => 4,
        ImageFormat::Webp => 3,
        ImageFormat::Gif => 4,
        ImageFormat::Heif | ImageFormat::Avif => 10,
    }
}

/// Peak bytes for one job: the input, plus the largest of the decode, each op and encode.
pub(crate) fn job_peak_bytes(input_len: usize, info: &ImageInfo, plan: &Plan) -> usize {
    let bpp: u64 = if info.has_alpha { 4 } else { 3 };
    let pixels = |(w, h): (u32, u32)| u64::from(w) * u64::from(h);
    let frame_bytes = |size: (u32, u32)| pixels(size) * bpp;
    let stored = (info.width, info.height);

    // A progressive JPEG shrunk enough decodes from a copy without some of its scans.
    let pruned_copy = match info.format {
        ImageFormat::Jpeg if jpeg_scans::prunes_at(plan.decode_shrink) => input_len as u64,
        _ => 0,
    };
    let decode = frame_bytes(stored)
        + pixels(stored) * decoder_overhead_per_pixel(info.format)
        + pruned_copy;
    let mut peak = decode;
    let mut size = stored;
    // The orientation steps first (each writes a second frame beside the first), then the ops.
    for (step, &out) in plan.steps.iter().zip(&plan.sizes) {
        peak = peak.max(step.working_bytes(size, out, bpp));
        size = out;
    }
    // Encoding: the frame, a flattened or reduced copy (maxkb retries) and the output.
    peak = peak.max(3 * frame_bytes(size));
    usize::try_from(peak)
        .unwrap_or(usize::MAX)
        .saturating_add(input_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orientation::Orientation;

    fn a_12mp_jpeg() -> ImageInfo {
        ImageInfo {
            format: ImageFormat::Jpeg,
            width: 4000,
            height: 3000,
            orientation: Orientation::Normal,
            has_icc_profile: false,
            has_alpha: false,
            byte_len: 3_000_000,
        }
    }

    fn estimate(info: &ImageInfo, pipeline: &str) -> usize {
        let pipeline: crate::Pipeline = pipeline.parse().unwrap();
        let plan = pipeline.plan(info, &crate::Limits::default()).unwrap();
        job_peak_bytes(info.byte_len, info, &plan)
    }

    #[test]
    fn a_12mp_jpeg_fitted_to_1600() {
        // Decode dominates: 12 MP × (3 frame + 6 coefficient) bytes + the input.
        assert_eq!(
            estimate(&a_12mp_jpeg(), "fit:1600"),
            12_000_000 * 9 + 3_000_000
        );
    }

    #[test]
    fn a_shrink_that_prunes_scans_counts_the_pruned_copy() {
        // fit:400 shrinks 10x: the decoder reads a pruned copy of the input beside it.
        assert_eq!(
            estimate(&a_12mp_jpeg(), "fit:400"),
            12_000_000 * 9 + 2 * 3_000_000
        );
        // fit:1280 shrinks 3.1x: nothing is pruned below a shrink of eight.
        assert_eq!(
            estimate(&a_12mp_jpeg(), "fit:1280"),
            12_000_000 * 9 + 3_000_000
        );
    }
}
