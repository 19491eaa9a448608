//! `contrast:V`: scales each channel's distance from mid-grey.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::frame::Frame;
use crate::ops::color;
use crate::ops::operation::{self as text, OpSpec, Operation};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Contrast {
    pub value: i32,
}

impl Contrast {
    pub(crate) const SPEC: OpSpec = OpSpec {
        names: &["contrast"],
        syntax: "contrast:V",
        about: "scale distance from mid-grey by ((100+V)/100)^2; -100..=100",
        example: "contrast:-30",
    };
}

impl Operation for Contrast {
    fn parse(args: Option<&str>) -> Result<Self, String> {
        let value = text::number(text::required(args, &Self::SPEC)?)?;
        Ok(Contrast { value })
    }

    fn canonical(&self) -> String {
        format!("contrast:{}", self.value)
    }

    fn validate(&self) -> Result<(), String> {
        text::in_range("value", self.value, color::ADJUST)
    }

    fn apply(&self, mut frame: Frame, _: (u32, u32)) -> Result<Frame, Error> {
        color::apply_table(&mut frame, &color::contrast_table(self.value));
        Ok(frame)
    }

    fn cpu_ns_per_pixel(&self) -> f64 {
        color::NS_PER_PIXEL
    }

    #[cfg(feature = "gpu")]
    fn plan_gpu(&self, planner: &mut crate::backend::gpu::Planner, _: (u32, u32)) {
        planner.table(color::contrast_table(self.value));
    }

    fn test_cases(_: (u32, u32)) -> Vec<Self> {
        [50, -30].map(|value| Contrast { value }).to_vec()
    }
}
