//! When the GPU pays: a cost model comparing one image's ops on one CPU core with the
//! GPU's time for it, transfers and per-frame overhead included. The constants are
//! measurements (scripts/gpu-bench.sh; README "GPU backend"), in nanoseconds; each
//! operation's CPU cost per pixel is declared in its file (`ops/catalogue/`).

use crate::ops::Op;

/// Fixed cost of a frame on the GPU: its share of a submission and of the wait for it (H200:
/// 1280 px frames took 2.0-2.6 ms one at a time, 0.5-0.7 ms in batches of 8).
const GPU_FRAME_NS: f64 = 1_000_000.0;
/// Per byte the worker writes into staging memory, in the frame's layout (H200: a 12 MP
/// RGB frame, 36 MB, in 4.4 ms).
const GPU_UPLOAD_NS_PER_BYTE: f64 = 0.15;
/// Per byte of the result read back and copied out by the worker (H200: a 12 MP frame cost
/// 18 ms when 36 MB came back and 7.8 ms when 3.7 MB did).
const GPU_READBACK_NS_PER_BYTE: f64 = 0.3;
/// GPU work per pixel of a pass (12 MP blur, four passes, cost 8 ms more than gray).
const GPU_NS_PER_PIXEL_PASS: f64 = 0.3;

/// The pixels an op reads or writes, whichever is more.
fn pixels(input: (u32, u32), output: (u32, u32)) -> f64 {
    let count = |(w, h): (u32, u32)| f64::from(w) * f64::from(h);
    count(input).max(count(output))
}

/// Estimated (CPU, GPU) nanoseconds for `ops` on a `size` image of `bytes_per_pixel`.
pub fn estimate(
    size: (u32, u32),
    bytes_per_pixel: usize,
    ops: &[Op],
    sizes: &[(u32, u32)],
) -> (f64, f64) {
    let mut input = size;
    let (mut cpu, mut gpu_passes) = (0.0, 0.0);
    for (op, &output) in ops.iter().zip(sizes) {
        let touched = pixels(input, output);
        cpu += op.cpu_ns_per_pixel() * touched;
        gpu_passes += 2.0 * GPU_NS_PER_PIXEL_PASS * touched;
        input = output;
    }
    let bytes = |size| bytes_per_pixel as f64 * pixels(size, size);
    let transfers = GPU_UPLOAD_NS_PER_BYTE * bytes(size) + GPU_READBACK_NS_PER_BYTE * bytes(input);
    let gpu = GPU_FRAME_NS + transfers + gpu_passes;
    (cpu, gpu)
}

/// Whether the GPU is expected to finish `ops` on this image (of `bytes_per_pixel`) sooner
/// than a CPU core.
pub fn gpu_pays(
    size: (u32, u32),
    bytes_per_pixel: usize,
    ops: &[Op],
    sizes: &[(u32, u32)],
) -> bool {
    let (cpu, gpu) = estimate(size, bytes_per_pixel, ops, sizes);
    gpu < cpu
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Blur, Filter, Fit, Gray, Sharpen};

    const RGB: usize = 3;

    #[test]
    fn small_images_stay_on_the_cpu() {
        let gray = [Op::Gray(Gray {})];
        assert!(!gpu_pays((64, 64), RGB, &gray, &[(64, 64)]));
        // Measured on the H200: one core 0.9 ms; a frame's share of a submission alone is more.
        assert!(!gpu_pays((640, 480), RGB, &gray, &[(640, 480)]));
        let fit = [Op::Fit(Fit {
            width: 64,
            height: 64,
            filter: Filter::Lanczos3,
        })];
        assert!(!gpu_pays((128, 96), RGB, &fit, &[(64, 48)]));
    }

    #[test]
    fn large_photos_and_heavy_work_go_to_the_gpu() {
        // Measured on the H200: one core 47 ms, the GPU 18 ms with the whole frame back.
        let gray = [Op::Gray(Gray {})];
        assert!(gpu_pays((4000, 3000), RGB, &gray, &[(4000, 3000)]));
        let blur = [Op::Blur(Blur { sigma: 4.0 })];
        assert!(gpu_pays((4000, 3000), RGB, &blur, &[(4000, 3000)]));
        let sharpen = [Op::Sharpen(Sharpen { amount: 1.0 })];
        assert!(gpu_pays((1280, 960), RGB, &sharpen, &[(1280, 960)]));
    }

    #[test]
    fn a_downscale_of_a_large_photo_goes_to_the_gpu() {
        // Measured on the H200: one core 54 ms, the GPU 7.6 ms with its transfers (3 bytes
        // a pixel up, the small result back).
        let fit = [Op::Fit(Fit {
            width: 1280,
            height: 1280,
            filter: Filter::Lanczos3,
        })];
        assert!(gpu_pays((4000, 3000), RGB, &fit, &[(1280, 960)]));
    }
}
