//! `saturation:V`: scales each pixel's distance from its luma.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::frame::Frame;
use crate::ops::color;
use crate::ops::operation::{self as text, OpSpec, Operation};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Saturation {
    pub value: i32,
}

impl Saturation {
    pub(crate) const SPEC: OpSpec = OpSpec {
        names: &["saturation"],
        syntax: "saturation:V",
        about: "scale colourfulness by (100+V)/100; -100..=100",
        example: "saturation:50",
    };
}

impl Operation for Saturation {
    fn parse(args: Option<&str>) -> Result<Self, String> {
        let value = text::number(text::required(args, &Self::SPEC)?)?;
        Ok(Saturation { value })
    }

    fn canonical(&self) -> String {
        format!("saturation:{}", self.value)
    }

    fn validate(&self) -> Result<(), String> {
        text::in_range("value", self.value, color::ADJUST)
    }

    fn apply(&self, mut frame: Frame, _: (u32, u32)) -> Result<Frame, Error> {
        color::saturation(&mut frame, self.value);
        Ok(frame)
    }

    fn cpu_ns_per_pixel(&self) -> f64 {
        color::NS_PER_PIXEL
    }

    #[cfg(feature = "gpu")]
    fn plan_gpu(&self, planner: &mut crate::backend::gpu::Planner, _: (u32, u32)) {
        use crate::backend::gpu::{COLOR_SHADER, Kernel};
        let factor = color::saturation_factor(self.value);
        planner.step(Kernel::new(COLOR_SHADER, "saturation"), [factor, 0, 0, 0], [0.0; 4]);
    }

    fn test_cases(_: (u32, u32)) -> Vec<Self> {
        [60, -50].map(|value| Saturation { value }).to_vec()
    }
}
