//! `sharpen:AMOUNT`: unsharp mask with sigma 1, on straight (unpremultiplied) values.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::frame::Frame;
use crate::ops::blur as convolution;
use crate::ops::operation::{self as text, OpSpec, Operation, pixels};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sharpen {
    pub amount: f64,
}

const AMOUNT: (f64, f64) = (0.1, 10.0);

impl Sharpen {
    pub(crate) const SPEC: OpSpec = OpSpec {
        names: &["sharpen"],
        syntax: "sharpen:AMOUNT",
        about: "unsharp mask (sigma 1); 0.1..=10",
        example: "sharpen:0.5",
    };
}

impl Operation for Sharpen {
    fn parse(args: Option<&str>) -> Result<Self, String> {
        let amount = text::number(text::required(args, &Self::SPEC)?)?;
        Ok(Sharpen { amount })
    }

    fn canonical(&self) -> String {
        format!("sharpen:{}", self.amount)
    }

    fn validate(&self) -> Result<(), String> {
        text::in_range("amount", self.amount, AMOUNT)
    }

    fn apply(&self, mut frame: Frame, _: (u32, u32)) -> Result<Frame, Error> {
        convolution::sharpen(&mut frame, self.amount);
        Ok(frame)
    }

    fn cpu_ns_per_pixel(&self) -> f64 {
        40.0
    }

    /// The frame, its blurred copy and the copy's vertical pass.
    fn working_bytes(&self, input: (u32, u32), _: (u32, u32), bytes_per_pixel: u64) -> u64 {
        3 * pixels(input) * bytes_per_pixel
    }

    /// Blurs a copy (no premultiplication, as on the CPU), then combines it with the
    /// original.
    #[cfg(feature = "gpu")]
    fn plan_gpu(&self, planner: &mut crate::backend::gpu::Planner, _: (u32, u32)) {
        use crate::backend::gpu::{Kernel, shader};
        planner.combine_with_blurred(
            convolution::SHARPEN_SIGMA,
            Kernel::new(shader!("sharpen"), "combine"),
            [self.amount as f32, 0.0, 0.0, 0.0],
        );
    }

    fn test_cases(_: (u32, u32)) -> Vec<Self> {
        [1.0, 4.0].map(|amount| Sharpen { amount }).to_vec()
    }
}
