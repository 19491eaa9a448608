//! When the GPU pays: a cost model comparing one image's ops on one CPU core with the
//! GPU's time for it, transfers and per-frame overhead included. The constants are
//! measurements (scripts/gpu-bench.sh; README "GPU backend"), in nanoseconds; each
//! operation's CPU cost per pixel is declared in its file (`ops/catalogue/`).

use crate::ops::Op;

/// Fixed cost of a frame on the GPU: its share of a submission, buffers, bind groups.
const GPU_FRAME_NS: f64 = 500_000.0;
/// Per RGBA byte uploaded and read back, the RGB↔RGBA conversion on the CPU included:
/// on the H200 a 12 MP frame cost 55 ms when only 5 MB came back and 125 ms when 48 MB did.
const GPU_TRANSFER_NS_PER_BYTE: f64 = 1.2;
/// GPU work per pixel of a pass (12 MP blur, four passes, cost 8 ms more than gray).
const GPU_NS_PER_PIXEL_PASS: f64 = 0.3;

/// The pixels an op reads or writes, whichever is more.
fn pixels(input: (u32, u32), output: (u32, u32)) -> f64 {
    let count = |(w, h): (u32, u32)| f64::from(w) * f64::from(h);
    count(input).max(count(output))
}

/// Estimated (CPU, GPU) nanoseconds for `ops` on a `size` image.
pub fn estimate(size: (u32, u32), ops: &[Op], sizes: &[(u32, u32)]) -> (f64, f64) {
    let mut input = size;
    let (mut cpu, mut gpu_passes) = (0.0, 0.0);
    for (op, &output) in ops.iter().zip(sizes) {
        let touched = pixels(input, output);
        cpu += op.cpu_ns_per_pixel() * touched;
        gpu_passes += 2.0 * GPU_NS_PER_PIXEL_PASS * touched;
        input = output;
    }
    let bytes = 4.0 * (pixels(size, size) + pixels(input, input));
    let gpu = GPU_FRAME_NS + GPU_TRANSFER_NS_PER_BYTE * bytes + gpu_passes;
    (cpu, gpu)
}

/// Whether the GPU is expected to finish `ops` on this image sooner than a CPU core.
pub fn gpu_pays(size: (u32, u32), ops: &[Op], sizes: &[(u32, u32)]) -> bool {
    let (cpu, gpu) = estimate(size, ops, sizes);
    gpu < cpu
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Blur, Filter, Fit, Gray, Sharpen};

    #[test]
    fn small_images_and_cheap_ops_stay_on_the_cpu() {
        let gray = [Op::Gray(Gray {})];
        assert!(!gpu_pays((64, 64), &gray, &[(64, 64)]));
        assert!(!gpu_pays((4000, 3000), &gray, &[(4000, 3000)]));
    }

    #[test]
    fn heavy_work_goes_to_the_gpu() {
        let blur = [Op::Blur(Blur { sigma: 4.0 })];
        assert!(gpu_pays((4000, 3000), &blur, &[(4000, 3000)]));
        let sharpen = [Op::Sharpen(Sharpen { amount: 1.0 })];
        assert!(gpu_pays((1280, 960), &sharpen, &[(1280, 960)]));
    }

    #[test]
    fn a_plain_downscale_of_a_large_photo_stays_on_the_cpu() {
        // Measured: one core 54 ms, the GPU 55 ms with its transfers.
        let fit = [Op::Fit(Fit {
            width: 1280,
            height: 1280,
            filter: Filter::Lanczos3,
        })];
        assert!(!gpu_pays((4000, 3000), &fit, &[(1280, 960)]));
    }
}
