//! `blur:SIGMA`: Gaussian blur on premultiplied alpha; above sigma 5, three box passes of
//! the same variance.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::frame::Frame;
use crate::ops::blur as convolution;
use crate::ops::operation::{self as text, OpSpec, Operation, pixels};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Blur {
    pub sigma: f64,
}

const SIGMA: (f64, f64) = (0.1, 50.0);

impl Blur {
    pub(crate) const SPEC: OpSpec = OpSpec {
        names: &["blur"],
        syntax: "blur:SIGMA",
        about: "Gaussian blur; 0.1..=50",
        example: "blur:2",
    };
}

impl Operation for Blur {
    fn parse(args: Option<&str>) -> Result<Self, String> {
        let sigma = text::number(text::required(args, &Self::SPEC)?)?;
        Ok(Blur { sigma })
    }

    fn canonical(&self) -> String {
        format!("blur:{}", self.sigma)
    }

    fn validate(&self) -> Result<(), String> {
        text::in_range("sigma", self.sigma, SIGMA)
    }

    fn apply(&self, mut frame: Frame, _: (u32, u32)) -> Result<Frame, Error> {
        convolution::blur(&mut frame, self.sigma);
        Ok(frame)
    }

    fn cpu_ns_per_pixel(&self) -> f64 {
        4.0 + 12.0 * self.sigma.min(convolution::EXACT_UP_TO_SIGMA)
    }

    /// The frame and the copy its vertical pass writes.
    fn working_bytes(&self, input: (u32, u32), _: (u32, u32), bytes_per_pixel: u64) -> u64 {
        2 * pixels(input) * bytes_per_pixel
    }

    #[cfg(feature = "gpu")]
    fn plan_gpu(&self, planner: &mut crate::backend::gpu::Planner, _: (u32, u32)) {
        planner.blur(self.sigma);
    }

    /// Both the exact kernel and the box passes.
    fn test_cases(_: (u32, u32)) -> Vec<Self> {
        [1.5, 8.0].map(|sigma| Blur { sigma }).to_vec()
    }
}
