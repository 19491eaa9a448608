//! `brightness:V`: adds V % of full scale to each colour channel.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::frame::Frame;
use crate::ops::color;
use crate::ops::operation::{self as text, OpSpec, Operation};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Brightness {
    pub value: i32,
}

impl Brightness {
    pub(crate) const SPEC: OpSpec = OpSpec {
        names: &["brightness"],
        syntax: "brightness:V",
        about: "add V% of full scale; -100..=100",
        example: "brightness:20",
    };
}

impl Operation for Brightness {
    fn parse(args: Option<&str>) -> Result<Self, String> {
        let value = text::number(text::required(args, &Self::SPEC)?)?;
        Ok(Brightness { value })
    }

    fn canonical(&self) -> String {
        format!("brightness:{}", self.value)
    }

    fn validate(&self) -> Result<(), String> {
        text::in_range("value", self.value, color::ADJUST)
    }

    fn apply(&self, mut frame: Frame, _: (u32, u32)) -> Result<Frame, Error> {
        color::apply_table(&mut frame, &color::brightness_table(self.value));
        Ok(frame)
    }

    fn cpu_ns_per_pixel(&self) -> f64 {
        color::NS_PER_PIXEL
    }

    #[cfg(feature = "gpu")]
    fn plan_gpu(&self, planner: &mut crate::backend::gpu::Planner, _: (u32, u32)) {
        planner.table(color::brightness_table(self.value));
    }

    fn test_cases(_: (u32, u32)) -> Vec<Self> {
        [30, -40].map(|value| Brightness { value }).to_vec()
    }
}
