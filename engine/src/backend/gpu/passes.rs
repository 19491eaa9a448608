//! What the GPU runs for a frame: every planned step (the orientation's rotate and flip
//! first) translated into compute passes over a few ping-pong buffers. Pure data, no wgpu:
//! the device records it.

use super::weights::{self, CropBox, Table};
use crate::frame::Layout;
use crate::ops::{Filter, Op, blur};
use crate::orientation::Orientation;

/// A WGSL file of `shaders/`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shader {
    pub name: &'static str,
    pub source: &'static str,
}

/// The [`Shader`] `shaders/NAME.wgsl`, embedded at compile time.
macro_rules! shader {
    ($name:literal) => {
        $crate::backend::gpu::Shader {
            name: $name,
            source: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shaders/",
                $name,
                ".wgsl"
            )),
        }
    };
}
pub(crate) use shader;

/// Kernels of several operations (the per-channel table, luma, saturation and sepia).
pub(crate) const COLOR_SHADER: Shader = shader!("color");
const RESAMPLE_SHADER: Shader = shader!("resample");
const REMAP_SHADER: Shader = shader!("remap");
const BLUR_SHADER: Shader = shader!("blur");
const LAYOUT_SHADER: Shader = shader!("layout");

/// One entry point of one shader; equal when the shader's name and the entry are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kernel {
    pub shader: Shader,
    pub entry: &'static str,
}

impl Kernel {
    pub const fn new(shader: Shader, entry: &'static str) -> Kernel {
        Kernel { shader, entry }
    }

    fn key(&self) -> (&'static str, &'static str) {
        (self.shader.name, self.entry)
    }

    /// The WGSL the kernel's module compiles: the shared constants and `common.wgsl`
    /// in front of its shader.
    pub fn wgsl(&self) -> String {
        const COMMON: &str = include_str!("../../../../shaders/common.wgsl");
        format!("{}\n{COMMON}\n{}", shared_constants(), self.shader.source)
    }
}

impl PartialEq for Kernel {
    fn eq(&self, other: &Kernel) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Kernel {}

impl std::hash::Hash for Kernel {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

const RESAMPLE_VERTICAL: Kernel = Kernel::new(RESAMPLE_SHADER, "vertical");
const RESAMPLE_HORIZONTAL: Kernel = Kernel::new(RESAMPLE_SHADER, "horizontal");
const REMAP: Kernel = Kernel::new(REMAP_SHADER, "remap");
const TABLE: Kernel = Kernel::new(COLOR_SHADER, "table");
const GAUSSIAN_HORIZONTAL: Kernel = Kernel::new(BLUR_SHADER, "gaussian_horizontal");
const GAUSSIAN_VERTICAL: Kernel = Kernel::new(BLUR_SHADER, "gaussian_vertical");
const BOX_HORIZONTAL: Kernel = Kernel::new(BLUR_SHADER, "box_horizontal");
const BOX_VERTICAL: Kernel = Kernel::new(BLUR_SHADER, "box_vertical");
const UNPACK_RGB: Kernel = Kernel::new(LAYOUT_SHADER, "unpack_rgb");
const PACK_RGB: Kernel = Kernel::new(LAYOUT_SHADER, "pack_rgb");

/// Every kernel a plan can use, compiled when the device opens: those of every operation's
/// test cases (which cover each branch of its plan; orientation is rotate and flip steps),
/// planned for RGB frames (whose plans add the layout conversions).
pub(super) fn all_kernels() -> Vec<Kernel> {
    let size = (64, 48);
    let mut kernels: Vec<Kernel> = Vec::new();
    for entry in crate::ops::REGISTRY {
        for op in (entry.test_cases)(size) {
            let Ok(output) = op.output_size(size.0, size.1) else {
                continue;
            };
            for pass in plan(size, Layout::Rgb8, &[op], &[output]).passes {
                if !kernels.contains(&pass.kernel) {
                    kernels.push(pass.kernel);
                }
            }
        }
    }
    kernels
}

/// WGSL declarations of the constants both backends use, written from the Rust ones so the
/// two cannot drift.
fn shared_constants() -> String {
    use crate::ops::alpha::{OPAQUE, PREMULTIPLY_HALF};
    use crate::ops::color::{FIXED_HALF, FIXED_SHIFT, LUMA_WEIGHTS, SEPIA_MATRIX};
    let vec3 = |[x, y, z]: [u32; 3]| format!("vec3<u32>({x}u, {y}u, {z}u)");
    let [sepia_r, sepia_g, sepia_b] = SEPIA_MATRIX.map(vec3);
    format!(
        "// Generated from engine/src/ops/color.rs and alpha.rs (backend/gpu/passes.rs).\n\
         const FIXED_SHIFT: u32 = {FIXED_SHIFT}u;\n\
         const FIXED_HALF: u32 = {FIXED_HALF}u;\n\
         const LUMA_WEIGHTS: vec3<u32> = {};\n\
         const SEPIA_R: vec3<u32> = {sepia_r};\n\
         const SEPIA_G: vec3<u32> = {sepia_g};\n\
         const SEPIA_B: vec3<u32> = {sepia_b};\n\
         const OPAQUE: u32 = {OPAQUE}u;\n\
         const PREMULTIPLY_HALF: u32 = {PREMULTIPLY_HALF}u;\n",
        vec3(LUMA_WEIGHTS)
    )
}

/// The uniform block every kernel reads (`Params` in common.wgsl).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Params {
    pub size: [u32; 4],
    pub a: [i32; 4],
    pub b: [i32; 4],
    pub f: [f32; 4],
}

impl Params {
    pub const BYTES: usize = 64;

    pub fn to_bytes(self) -> [u8; Self::BYTES] {
        let words = self
            .size
            .into_iter()
            .chain(self.a.map(|v| v as u32))
            .chain(self.b.map(|v| v as u32))
            .chain(self.f.map(f32::to_bits));
        let mut bytes = [0u8; Self::BYTES];
        for (chunk, word) in bytes.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        bytes
    }
}

/// What binding 3 holds for a pass.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Aux {
    None,
    /// Words uploaded with the batch (weights, tables).
    Words(Vec<u32>),
    /// Another of the frame's buffers.
    Buffer(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pass {
    pub kernel: Kernel,
    pub src: usize,
    pub dst: usize,
    pub aux: Aux,
    /// Invocations across and down.
    pub grid: (u32, u32),
    pub params: Params,
}

/// Everything the GPU does to one frame, from its upload to its readback.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FramePlan {
    pub passes: Vec<Pass>,
    /// How many pixel buffers the passes use; the upload goes to buffer 0.
    pub buffers: usize,
    /// Pixels each buffer must hold (the largest stage).
    pub buffer_pixels: u64,
    pub output: (u32, u32),
    /// The buffer holding the result.
    pub result: usize,
    /// The result's bytes, in the frame's layout: what is read back.
    pub output_bytes: u64,
}

/// Plans `ops` (whose planned sizes are `sizes`) for a `width`×`height` frame of `layout`.
/// The frame is uploaded and read back in its own layout: an RGB frame's first pass widens
/// it to the RGBA words every kernel reads, and its last pass packs the result back.
pub(super) fn plan(
    (width, height): (u32, u32),
    layout: Layout,
    ops: &[Op],
    sizes: &[(u32, u32)],
) -> FramePlan {
    let mut planner = Planner {
        passes: Vec::new(),
        current: 0,
        size: (width, height),
        buffers: 1,
        buffer_pixels: u64::from(width) * u64::from(height),
        pinned: Vec::new(),
    };
    let rgb = layout == Layout::Rgb8;
    if rgb {
        planner.step(UNPACK_RGB, [0; 4], [0.0; 4]);
    }
    for (op, &size) in ops.iter().zip(sizes) {
        op.plan_gpu(&mut planner, size);
    }
    if rgb {
        planner.pack_rgb();
    }
    let (out_width, out_height) = planner.size;
    FramePlan {
        passes: planner.passes,
        buffers: planner.buffers,
        buffer_pixels: planner.buffer_pixels,
        output: planner.size,
        result: planner.current,
        output_bytes: u64::from(out_width)
            * u64::from(out_height)
            * layout.bytes_per_pixel() as u64,
    }
}

/// Turns a frame's steps into passes; each operation's `plan_gpu` calls the methods below.
pub(crate) struct Planner {
    passes: Vec<Pass>,
    current: usize,
    size: (u32, u32),
    buffers: usize,
    buffer_pixels: u64,
    /// Buffers a later pass still needs (the original, while sharpen blurs a copy).
    pinned: Vec<usize>,
}

/// Flags in `Params::a` for passes that premultiply on load / divide on store.
const YES: i32 = 1;
const NO: i32 = 0;

impl Planner {
    /// The lowest buffer index neither in `taken` nor pinned.
    fn free(&mut self, taken: &[usize]) -> usize {
        let index = (0..)
            .find(|i| !taken.contains(i) && !self.pinned.contains(i))
            .unwrap_or(0);
        self.buffers = self.buffers.max(index + 1);
        index
    }

    /// Adds a pass from `src` (of the current size) into `dst` of `size`.
    #[allow(clippy::too_many_arguments)]
    fn pass(
        &mut self,
        kernel: Kernel,
        src: usize,
        dst: usize,
        size: (u32, u32),
        aux: Aux,
        a: [i32; 4],
        b: [i32; 4],
        f: [f32; 4],
    ) {
        self.buffer_pixels = self
            .buffer_pixels
            .max(u64::from(size.0) * u64::from(size.1));
        self.passes.push(Pass {
            kernel,
            src,
            dst,
            aux,
            grid: size,
            params: Params {
                size: [self.size.0, self.size.1, size.0, size.1],
                a,
                b,
                f,
            },
        });
        self.size = size;
        self.current = dst;
    }

    /// A pass that reads the current buffer and writes a fresh one of `size`.
    fn fresh(&mut self, kernel: Kernel, size: (u32, u32), aux: Aux, a: [i32; 4], f: [f32; 4]) {
        let src = self.current;
        let dst = self.free(&[src]);
        self.pass(kernel, src, dst, size, aux, a, [0; 4], f);
    }

    /// A same-size pass of `kernel` with the parameters `a` (integers) and `f` (floats).
    pub fn step(&mut self, kernel: Kernel, a: [i32; 4], f: [f32; 4]) {
        let size = self.size;
        self.fresh(kernel, size, Aux::None, a, f);
    }

    /// A pass of `kernel` writing an image of `size`.
    pub fn step_to(&mut self, kernel: Kernel, size: (u32, u32), a: [i32; 4], f: [f32; 4]) {
        self.fresh(kernel, size, Aux::None, a, f);
    }

    /// Every colour channel through a 256-entry table (alpha kept), as `color::apply_table`.
    pub fn table(&mut self, table: [u8; 256]) {
        let words = Aux::Words(table.map(u32::from).to_vec());
        let size = self.size;
        self.fresh(TABLE, size, words, [0; 4], [0.0; 4]);
    }

    /// Applies an orientation transform (rotate and flip too).
    pub fn orient(&mut self, orientation: Orientation) {
        let (w, h) = (self.size.0 as i32, self.size.1 as i32);
        // Source position of destination (x, y): [ax, bx, cx], [ay, by, cy].
        let (x_map, y_map) = match orientation {
            Orientation::Normal => return,
            Orientation::FlipHorizontal => ([-1, 0, w - 1], [0, 1, 0]),
            Orientation::Rotate180 => ([-1, 0, w - 1], [0, -1, h - 1]),
            Orientation::FlipVertical => ([1, 0, 0], [0, -1, h - 1]),
            Orientation::Transpose => ([0, 1, 0], [1, 0, 0]),
            Orientation::Rotate90 => ([0, 1, 0], [-1, 0, h - 1]),
            Orientation::Transverse => ([0, -1, w - 1], [-1, 0, h - 1]),
            Orientation::Rotate270 => ([0, -1, w - 1], [1, 0, 0]),
        };
        let size = if orientation.swaps_dimensions() {
            (self.size.1, self.size.0)
        } else {
            self.size
        };
        self.remap(size, x_map, y_map);
    }

    /// Packs the current RGBA image into 3 bytes a pixel: one invocation per output word,
    /// laid out a row of the image's width at a time.
    fn pack_rgb(&mut self) {
        let (width, height) = self.size;
        let words = (3 * u64::from(width) * u64::from(height)).div_ceil(4);
        let rows = words.div_ceil(u64::from(width.max(1)));
        let src = self.current;
        let dst = self.free(&[src]);
        self.passes.push(Pass {
            kernel: PACK_RGB,
            src,
            dst,
            aux: Aux::None,
            grid: (width, u32::try_from(rows).unwrap_or(u32::MAX)),
            params: Params {
                size: [width, height, width, height],
                a: [i32::try_from(words).unwrap_or(i32::MAX), 0, 0, 0],
                ..Params::default()
            },
        });
        self.current = dst;
    }

    /// The `size` rectangle whose top left is at (`x`, `y`): a crop.
    pub fn shift(&mut self, size: (u32, u32), x: u32, y: u32) {
        self.remap(size, [1, 0, x as i32], [0, 1, y as i32]);
    }

    fn remap(&mut self, size: (u32, u32), [ax, bx, cx]: [i32; 3], [ay, by, cy]: [i32; 3]) {
        let src = self.current;
        let dst = self.free(&[src]);
        self.pass(
            REMAP,
            src,
            dst,
            size,
            Aux::None,
            [ax, bx, cx, 0],
            [ay, by, cy, 0],
            [0.0; 4],
        );
    }

    /// The whole image resampled to `size`.
    pub fn resample_whole(&mut self, size: (u32, u32), filter: Filter) {
        let whole = CropBox::whole(self.size.0, self.size.1);
        self.resample(size, whole, filter);
    }

    /// The centred part of the image with `size`'s aspect, resampled to `size` (`fill`).
    pub fn resample_cover(&mut self, size: (u32, u32), filter: Filter) {
        let cover = CropBox::cover(self.size, size);
        self.resample(size, cover, filter);
    }

    /// Vertical pass then horizontal, as fast_image_resize does for 8-bit pixels.
    fn resample(&mut self, size: (u32, u32), crop: CropBox, filter: Filter) {
        if size == self.size {
            // The CPU backend hands the frame back untouched too.
            return;
        }
        let (width, height) = self.size;
        let (columns, rows, premultiplied) = match weights::kernel(filter) {
            None => (
                weights::nearest(width, crop.left, crop.width, size.0, false),
                weights::nearest(height, crop.top, crop.height, size.1, true),
                false,
            ),
            Some(kernel) => {
                let axis = |in_size: u32, start: f64, length: f64, out: u32| {
                    if weights::axis_needs_resampling(out, start, length) {
                        Some(weights::convolution(
                            in_size,
                            start,
                            start + length,
                            out,
                            kernel,
                        ))
                    } else {
                        None
                    }
                };
                let columns = axis(width, crop.left, crop.width, size.0);
                let rows = axis(height, crop.top, crop.height, size.1);
                if columns.is_none() && rows.is_none() {
                    // Nothing to resample: an integer crop.
                    let (x, y) = (crop.left as i32, crop.top as i32);
                    self.remap(size, [1, 0, x], [0, 1, y]);
                    return;
                }
                (
                    columns.unwrap_or_else(|| weights::shift(crop.left as u32, size.0)),
                    rows.unwrap_or_else(|| weights::shift(crop.top as u32, size.1)),
                    true,
                )
            }
        };
        let flag = if premultiplied { YES } else { NO };
        let table_params = |table: &Table, premultiply: i32, unpremultiply: i32| {
            [
                table.precision as i32,
                premultiply,
                unpremultiply,
                table.window as i32,
            ]
        };
        let a = table_params(&rows, flag, NO);
        self.fresh(
            RESAMPLE_VERTICAL,
            (width, size.1),
            Aux::Words(rows.words),
            a,
            [0.0; 4],
        );
        let a = table_params(&columns, NO, flag);
        self.fresh(
            RESAMPLE_HORIZONTAL,
            size,
            Aux::Words(columns.words),
            a,
            [0.0; 4],
        );
    }

    fn gaussian(&mut self, sigma: f64, premultiply: i32, unpremultiply: i32) {
        let weights = blur::kernel(sigma);
        let radius = (weights.len() / 2) as i32;
        let words = Aux::Words(weights.iter().map(|w| w.to_bits()).collect());
        let size = self.size;
        let horizontal = [radius, premultiply, NO, 0];
        self.fresh(
            GAUSSIAN_HORIZONTAL,
            size,
            words.clone(),
            horizontal,
            [0.0; 4],
        );
        let vertical = [radius, NO, unpremultiply, 0];
        self.fresh(GAUSSIAN_VERTICAL, size, words, vertical, [0.0; 4]);
    }

    /// Blur on premultiplied alpha, as `ops::blur::blur`: the exact kernel up to
    /// `EXACT_UP_TO_SIGMA`, three box passes of the same variance above.
    pub fn blur(&mut self, sigma: f64) {
        if sigma <= blur::EXACT_UP_TO_SIGMA {
            self.gaussian(sigma, YES, YES);
            return;
        }
        let size = self.size;
        let radii = blur::box_radii(sigma);
        let last = radii.len() - 1;
        for (index, radius) in radii.into_iter().enumerate() {
            let first = if index == 0 { YES } else { NO };
            let final_pass = if index == last { YES } else { NO };
            let radius = radius as i32;
            let horizontal = [radius, first, NO, 0];
            self.fresh(BOX_HORIZONTAL, size, Aux::None, horizontal, [0.0; 4]);
            let vertical = [radius, NO, final_pass, 0];
            self.fresh(BOX_VERTICAL, size, Aux::None, vertical, [0.0; 4]);
        }
    }

    /// Blurs a copy of the image (straight values, no premultiplication), then runs
    /// `combine` with the original as its source and the copy as its aux buffer.
    pub fn combine_with_blurred(&mut self, sigma: f64, combine: Kernel, f: [f32; 4]) {
        let original = self.current;
        self.pinned.push(original);
        self.gaussian(sigma, NO, NO);
        self.pinned.clear();
        let blurred = self.current;
        let dst = self.free(&[original, blurred]);
        let size = self.size;
        self.pass(
            combine,
            original,
            dst,
            size,
            Aux::Buffer(blurred),
            [0; 4],
            [0; 4],
            f,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Fill, Fit, Gravity, Sharpen};

    #[test]
    fn resize_is_two_passes_over_two_buffers() {
        let fit = Op::Fit(Fit {
            width: 50,
            height: 50,
            filter: Filter::Lanczos3,
        });
        let plan = plan((100, 80), Layout::Rgba8, &[fit], &[(50, 40)]);
        let kernels: Vec<Kernel> = plan.passes.iter().map(|p| p.kernel).collect();
        assert_eq!(kernels, [RESAMPLE_VERTICAL, RESAMPLE_HORIZONTAL]);
        assert_eq!((plan.buffers, plan.result, plan.output), (2, 0, (50, 40)));
        assert_eq!(plan.passes[0].grid, (100, 40));
    }

    #[test]
    fn sharpen_keeps_the_original_for_the_combine() {
        let mut ops = crate::ops::orientation_steps(Orientation::Rotate90);
        ops.push(Op::Sharpen(Sharpen { amount: 1.0 }));
        let plan = plan((10, 10), Layout::Rgba8, &ops, &[(10, 10), (10, 10)]);
        let combine = plan.passes.last().unwrap();
        assert_eq!(combine.kernel.key(), ("sharpen", "combine"));
        assert_eq!(combine.src, 1, "the rotated frame");
        assert_eq!(combine.aux, Aux::Buffer(2), "the blurred copy");
        assert_eq!((plan.buffers, plan.result), (3, 0));
    }

    #[test]
    fn same_size_resample_does_nothing() {
        let fill = Op::Fill(Fill {
            width: 10,
            height: 20,
            filter: Filter::Lanczos3,
            gravity: Gravity::Centre,
        });
        let plan = plan((10, 20), Layout::Rgba8, &[fill], &[(10, 20)]);
        assert!(plan.passes.is_empty());
    }

    #[test]
    fn an_rgb_frame_is_widened_first_and_packed_last() {
        let fit = Op::Fit(Fit {
            width: 50,
            height: 50,
            filter: Filter::Lanczos3,
        });
        let plan = plan((100, 80), Layout::Rgb8, &[fit], &[(50, 40)]);
        let kernels: Vec<Kernel> = plan.passes.iter().map(|p| p.kernel).collect();
        assert_eq!(
            kernels,
            [UNPACK_RGB, RESAMPLE_VERTICAL, RESAMPLE_HORIZONTAL, PACK_RGB]
        );
        assert_eq!(plan.output_bytes, 50 * 40 * 3);
        let pack = &plan.passes[3];
        assert_eq!(pack.params.a[0], 50 * 40 * 3 / 4, "one word per 4 bytes");
        assert_eq!(pack.grid, (50, 30));
        assert_eq!(plan.result, pack.dst);
    }

    /// Plans at other sizes can take other branches (an integer crop, no resample at all);
    /// every kernel they use must be among those compiled.
    #[test]
    fn every_kernel_a_plan_uses_is_compiled() {
        let compiled = all_kernels();
        for size in [(1, 1), (7, 5), (33, 17), (301, 2), (640, 480)] {
            for entry in crate::ops::REGISTRY {
                for op in (entry.test_cases)(size) {
                    let Ok(output) = op.output_size(size.0, size.1) else {
                        continue;
                    };
                    let planned = plan(size, Layout::Rgb8, std::slice::from_ref(&op), &[output]);
                    for pass in planned.passes {
                        assert!(
                            compiled.contains(&pass.kernel),
                            "{op:?}: {:?}",
                            pass.kernel.key()
                        );
                    }
                }
            }
        }
    }
}
