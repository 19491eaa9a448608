//! `pixelate:N`: every N×N block takes its average colour (premultiplied, so hidden
//! colour under transparency does not bleed).

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::frame::Frame;
use crate::ops::alpha::with_premultiplied;
use crate::ops::operation::{self as text, OpSpec, Operation};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pixelate {
    pub size: u32,
}

const BLOCK: (u32, u32) = (2, 1024);

impl Pixelate {
    pub(crate) const SPEC: OpSpec = OpSpec {
        names: &["pixelate"],
        syntax: "pixelate:N",
        about: "N x N blocks of their average colour; 2..=1024",
        example: "pixelate:8",
    };
}

impl Operation for Pixelate {
    fn parse(args: Option<&str>) -> Result<Self, String> {
        let size = text::number(text::required(args, &Self::SPEC)?)?;
        Ok(Pixelate { size })
    }

    fn canonical(&self) -> String {
        format!("pixelate:{}", self.size)
    }

    fn validate(&self) -> Result<(), String> {
        text::in_range("block size", self.size, BLOCK)
    }

    fn apply(&self, mut frame: Frame, _: (u32, u32)) -> Result<Frame, Error> {
        let size = self.size as usize;
        with_premultiplied(&mut frame, |frame| average_blocks(frame, size));
        Ok(frame)
    }

    fn cpu_ns_per_pixel(&self) -> f64 {
        9.0
    }

    /// Block means into a `blocks`-sized image, then filled back to full size.
    #[cfg(feature = "gpu")]
    fn plan_gpu(&self, planner: &mut crate::backend::gpu::Planner, output: (u32, u32)) {
        use crate::backend::gpu::{Kernel, shader};
        const PIXELATE: crate::backend::gpu::Shader = shader!("pixelate");
        let blocks = (
            output.0.div_ceil(self.size),
            output.1.div_ceil(self.size),
        );
        let a = [self.size as i32, 0, 0, 0];
        planner.step_to(Kernel::new(PIXELATE, "block_means"), blocks, a, [0.0; 4]);
        planner.step_to(Kernel::new(PIXELATE, "fill_blocks"), output, a, [0.0; 4]);
    }

    fn test_cases(_: (u32, u32)) -> Vec<Self> {
        [3, 8].map(|size| Pixelate { size }).to_vec()
    }
}

fn average_blocks(frame: &mut Frame, size: usize) {
    let (width, height) = (frame.width() as usize, frame.height() as usize);
    let bpp = frame.bytes_per_pixel();
    let stride = frame.stride();
    let data = frame.data_mut();
    for block_y in (0..height).step_by(size) {
        let rows = block_y..(block_y + size).min(height);
        for block_x in (0..width).step_by(size) {
            let columns = block_x * bpp..(block_x + size).min(width) * bpp;
            let mut sums = [0u64; 4];
            for y in rows.clone() {
                for px in data[y * stride..][columns.clone()].chunks_exact(bpp) {
                    for (sum, &v) in sums.iter_mut().zip(px) {
                        *sum += u64::from(v);
                    }
                }
            }
            let count = (rows.len() * columns.len() / bpp) as u64;
            let mean = sums.map(|s| ((s + count / 2) / count) as u8);
            for y in rows.clone() {
                for px in data[y * stride..][columns.clone()].chunks_exact_mut(bpp) {
                    px.copy_from_slice(&mean[..bpp]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Layout;

    #[test]
    fn averages_blocks_including_the_ragged_edge() {
        // 3×1 gray row, blocks of 2: [10, 20] -> 15, [90] -> 90.
        let data = [10u8, 20, 90].iter().flat_map(|&v| [v, v, v]).collect();
        let frame = Frame::new(3, 1, Layout::Rgb8, data).unwrap();
        let frame = Pixelate { size: 2 }.apply(frame, (3, 1)).unwrap();
        let got: Vec<u8> = frame.data().chunks_exact(3).map(|p| p[0]).collect();
        assert_eq!(got, vec![15, 15, 90]);
    }
}
