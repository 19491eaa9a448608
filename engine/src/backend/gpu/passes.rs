//! What the GPU runs for a frame: the orientation and every op translated into compute
//! passes over a few ping-pong buffers. Pure data, no wgpu: the device records it.

use super::weights::{self, CropBox, Table};
use crate::ops::{FlipAxis, Op, blur, color};
use crate::orientation::Orientation;

/// One entry point of one shader module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kernel {
    ResampleVertical,
    ResampleHorizontal,
    Remap,
    Table,
    Gray,
    Saturation,
    Sepia,
    GaussianHorizontal,
    GaussianVertical,
    BoxHorizontal,
    BoxVertical,
    SharpenCombine,
    BlockMeans,
    FillBlocks,
}

impl Kernel {
    pub const ALL: [Kernel; 14] = [
        Kernel::ResampleVertical,
        Kernel::ResampleHorizontal,
        Kernel::Remap,
        Kernel::Table,
        Kernel::Gray,
        Kernel::Saturation,
        Kernel::Sepia,
        Kernel::GaussianHorizontal,
        Kernel::GaussianVertical,
        Kernel::BoxHorizontal,
        Kernel::BoxVertical,
        Kernel::SharpenCombine,
        Kernel::BlockMeans,
        Kernel::FillBlocks,
    ];

    /// The shader file (in `shaders/`) and its entry point.
    pub fn source(self) -> (Module, &'static str) {
        match self {
            Kernel::ResampleVertical => (Module::Resample, "vertical"),
            Kernel::ResampleHorizontal => (Module::Resample, "horizontal"),
            Kernel::Remap => (Module::Remap, "remap"),
            Kernel::Table => (Module::Color, "table"),
            Kernel::Gray => (Module::Color, "gray"),
            Kernel::Saturation => (Module::Color, "saturation"),
            Kernel::Sepia => (Module::Color, "sepia"),
            Kernel::GaussianHorizontal => (Module::Blur, "gaussian_horizontal"),
            Kernel::GaussianVertical => (Module::Blur, "gaussian_vertical"),
            Kernel::BoxHorizontal => (Module::Blur, "box_horizontal"),
            Kernel::BoxVertical => (Module::Blur, "box_vertical"),
            Kernel::SharpenCombine => (Module::Sharpen, "combine"),
            Kernel::BlockMeans => (Module::Pixelate, "block_means"),
            Kernel::FillBlocks => (Module::Pixelate, "fill_blocks"),
        }
    }
}

/// The WGSL files, each compiled with `common.wgsl` in front.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Module {
    Resample,
    Remap,
    Color,
    Blur,
    Sharpen,
    Pixelate,
}

impl Module {
    pub const ALL: [Module; 6] = [
        Module::Resample,
        Module::Remap,
        Module::Color,
        Module::Blur,
        Module::Sharpen,
        Module::Pixelate,
    ];

    pub fn wgsl(self) -> String {
        const COMMON: &str = include_str!("../../../../shaders/common.wgsl");
        let body = match self {
            Module::Resample => include_str!("../../../../shaders/resample.wgsl"),
            Module::Remap => include_str!("../../../../shaders/remap.wgsl"),
            Module::Color => include_str!("../../../../shaders/color.wgsl"),
            Module::Blur => include_str!("../../../../shaders/blur.wgsl"),
            Module::Sharpen => include_str!("../../../../shaders/sharpen.wgsl"),
            Module::Pixelate => include_str!("../../../../shaders/pixelate.wgsl"),
        };
        format!("{}\n{COMMON}\n{body}", shared_constants())
    }
}

/// WGSL declarations of the constants both backends use, written from the Rust ones so the
/// two cannot drift.
fn shared_constants() -> String {
    use crate::ops::color::{FIXED_HALF, FIXED_SHIFT, LUMA_WEIGHTS, SEPIA_MATRIX};
    let vec3 = |[x, y, z]: [u32; 3]| format!("vec3<u32>({x}u, {y}u, {z}u)");
    let [sepia_r, sepia_g, sepia_b] = SEPIA_MATRIX.map(vec3);
    format!(
        "// Generated from engine/src/ops/color.rs (backend/gpu/passes.rs, shared_constants).\n\
         const FIXED_SHIFT: u32 = {FIXED_SHIFT}u;\n\
         const FIXED_HALF: u32 = {FIXED_HALF}u;\n\
         const LUMA_WEIGHTS: vec3<u32> = {};\n\
         const SEPIA_R: vec3<u32> = {sepia_r};\n\
         const SEPIA_G: vec3<u32> = {sepia_g};\n\
         const SEPIA_B: vec3<u32> = {sepia_b};\n",
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
}

/// Plans orientation then `ops` (whose planned sizes are `sizes`) for a `width`×`height` frame.
pub(super) fn plan(
    (width, height): (u32, u32),
    orientation: Orientation,
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
    planner.orient(orientation);
    for (op, &size) in ops.iter().zip(sizes) {
        planner.op(op, size);
    }
    FramePlan {
        passes: planner.passes,
        buffers: planner.buffers,
        buffer_pixels: planner.buffer_pixels,
        output: planner.size,
        result: planner.current,
    }
}

struct Planner {
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
    fn step(&mut self, kernel: Kernel, size: (u32, u32), aux: Aux, a: [i32; 4], f: [f32; 4]) {
        let src = self.current;
        let dst = self.free(&[src]);
        self.pass(kernel, src, dst, size, aux, a, [0; 4], f);
    }

    fn orient(&mut self, orientation: Orientation) {
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

    fn remap(&mut self, size: (u32, u32), [ax, bx, cx]: [i32; 3], [ay, by, cy]: [i32; 3]) {
        let src = self.current;
        let dst = self.free(&[src]);
        self.pass(
            Kernel::Remap,
            src,
            dst,
            size,
            Aux::None,
            [ax, bx, cx, 0],
            [ay, by, cy, 0],
            [0.0; 4],
        );
    }

    fn op(&mut self, op: &Op, size: (u32, u32)) {
        let words = |table: [u8; 256]| Aux::Words(table.map(u32::from).to_vec());
        match *op {
            Op::Fit { filter, .. }
            | Op::Scale { filter, .. }
            | Op::Longest { filter, .. }
            | Op::Resize { filter, .. } => {
                self.resample(size, CropBox::whole(self.size.0, self.size.1), filter)
            }
            Op::Fill { filter, .. } => self.resample(size, CropBox::cover(self.size, size), filter),
            Op::Crop { x, y, .. } => self.remap(size, [1, 0, x as i32], [0, 1, y as i32]),
            Op::Rotate { degrees } => self.orient(match degrees {
                90 => Orientation::Rotate90,
                180 => Orientation::Rotate180,
                _ => Orientation::Rotate270,
            }),
            Op::Flip { axis: FlipAxis::H } => self.orient(Orientation::FlipHorizontal),
            Op::Flip { axis: FlipAxis::V } => self.orient(Orientation::FlipVertical),
            Op::Gray => self.step(Kernel::Gray, size, Aux::None, [0; 4], [0.0; 4]),
            Op::Sepia => self.step(Kernel::Sepia, size, Aux::None, [0; 4], [0.0; 4]),
            Op::Saturation { value } => {
                let factor = color::saturation_factor(value);
                self.step(
                    Kernel::Saturation,
                    size,
                    Aux::None,
                    [factor, 0, 0, 0],
                    [0.0; 4],
                )
            }
            Op::Brightness { value } => {
                let table = words(color::brightness_table(value));
                self.step(Kernel::Table, size, table, [0; 4], [0.0; 4])
            }
            Op::Contrast { value } => {
                let table = words(color::contrast_table(value));
                self.step(Kernel::Table, size, table, [0; 4], [0.0; 4])
            }
            Op::Gamma { value } => {
                let table = words(color::gamma_table(value));
                self.step(Kernel::Table, size, table, [0; 4], [0.0; 4])
            }
            Op::Invert => {
                let table = words(color::invert_table());
                self.step(Kernel::Table, size, table, [0; 4], [0.0; 4])
            }
            Op::Blur { sigma } => self.blur(sigma),
            Op::Sharpen { amount } => self.sharpen(amount),
            Op::Pixelate { size: block } => self.pixelate(block),
        }
    }

    /// Vertical pass then horizontal, as fast_image_resize does for 8-bit pixels.
    fn resample(&mut self, size: (u32, u32), crop: CropBox, filter: crate::ops::Filter) {
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
        self.step(
            Kernel::ResampleVertical,
            (width, size.1),
            Aux::Words(rows.words),
            a,
            [0.0; 4],
        );
        let a = table_params(&columns, NO, flag);
        self.step(
            Kernel::ResampleHorizontal,
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
        self.step(
            Kernel::GaussianHorizontal,
            size,
            words.clone(),
            [radius, premultiply, NO, 0],
            [0.0; 4],
        );
        self.step(
            Kernel::GaussianVertical,
            size,
            words,
            [radius, NO, unpremultiply, 0],
            [0.0; 4],
        );
    }

    fn blur(&mut self, sigma: f64) {
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
            self.step(
                Kernel::BoxHorizontal,
                size,
                Aux::None,
                [radius, first, NO, 0],
                [0.0; 4],
            );
            self.step(
                Kernel::BoxVertical,
                size,
                Aux::None,
                [radius, NO, final_pass, 0],
                [0.0; 4],
            );
        }
    }

    /// Blurs a copy (sigma 1, no premultiplication, as on the CPU), then combines it
    /// with the original.
    fn sharpen(&mut self, amount: f64) {
        let original = self.current;
        self.pinned.push(original);
        self.gaussian(blur::SHARPEN_SIGMA, NO, NO);
        self.pinned.clear();
        let blurred = self.current;
        let dst = self.free(&[original, blurred]);
        let size = self.size;
        self.pass(
            Kernel::SharpenCombine,
            original,
            dst,
            size,
            Aux::Buffer(blurred),
            [0; 4],
            [0; 4],
            [amount as f32, 0.0, 0.0, 0.0],
        );
    }

    fn pixelate(&mut self, block: u32) {
        let size = self.size;
        let blocks = (size.0.div_ceil(block), size.1.div_ceil(block));
        let a = [block as i32, 0, 0, 0];
        self.step(Kernel::BlockMeans, blocks, Aux::None, a, [0.0; 4]);
        // The means buffer is read as a `blocks`-sized image; fill back to full size.
        self.step(Kernel::FillBlocks, size, Aux::None, a, [0.0; 4]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Filter;

    #[test]
    fn resize_is_two_passes_over_two_buffers() {
        let fit = Op::Fit {
            width: 50,
            height: 50,
            filter: Filter::Lanczos3,
        };
        let plan = plan((100, 80), Orientation::Normal, &[fit], &[(50, 40)]);
        let kernels: Vec<Kernel> = plan.passes.iter().map(|p| p.kernel).collect();
        assert_eq!(
            kernels,
            [Kernel::ResampleVertical, Kernel::ResampleHorizontal]
        );
        assert_eq!((plan.buffers, plan.result, plan.output), (2, 0, (50, 40)));
        assert_eq!(plan.passes[0].grid, (100, 40));
    }

    #[test]
    fn sharpen_keeps_the_original_for_the_combine() {
        let plan = plan(
            (10, 10),
            Orientation::Rotate90,
            &[Op::Sharpen { amount: 1.0 }],
            &[(10, 10)],
        );
        let combine = plan.passes.last().unwrap();
        assert_eq!(combine.kernel, Kernel::SharpenCombine);
        assert_eq!(combine.src, 1, "the rotated frame");
        assert_eq!(combine.aux, Aux::Buffer(2), "the blurred copy");
        assert_eq!((plan.buffers, plan.result), (3, 0));
    }

    #[test]
    fn same_size_resample_does_nothing() {
        let fill = Op::Fill {
            width: 10,
            height: 20,
            filter: Filter::Lanczos3,
            gravity: crate::ops::Gravity::Centre,
        };
        let plan = plan((10, 20), Orientation::Normal, &[fill], &[(10, 20)]);
        assert!(plan.passes.is_empty());
    }
}
