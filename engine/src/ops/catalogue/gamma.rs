//! `gamma:G`: out = in^(1/G) per colour channel.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::frame::Frame;
use crate::ops::color;
use crate::ops::operation::{self as text, OpSpec, Operation};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Gamma {
    pub value: f64,
}

const GAMMA: (f64, f64) = (0.1, 10.0);

impl Gamma {
    pub(crate) const SPEC: OpSpec = OpSpec {
        names: &["gamma"],
        syntax: "gamma:G",
        about: "out = in^(1/G); 0.1..=10 (above 1 brightens)",
        example: "gamma:2.2",
    };
}

impl Operation for Gamma {
    fn parse(args: Option<&str>) -> Result<Self, String> {
        let value = text::number(text::required(args, &Self::SPEC)?)?;
        Ok(Gamma { value })
    }

    fn canonical(&self) -> String {
        format!("gamma:{}", self.value)
    }

    fn validate(&self) -> Result<(), String> {
        text::in_range("gamma", self.value, GAMMA)
    }

    fn apply(&self, mut frame: Frame, _: (u32, u32)) -> Result<Frame, Error> {
        color::apply_table(&mut frame, &color::gamma_table(self.value));
        Ok(frame)
    }

    fn cpu_ns_per_pixel(&self) -> f64 {
        color::NS_PER_PIXEL
    }

    #[cfg(feature = "gpu")]
    fn plan_gpu(&self, planner: &mut crate::backend::gpu::Planner, _: (u32, u32)) {
        planner.table(color::gamma_table(self.value));
    }

    fn test_cases(_: (u32, u32)) -> Vec<Self> {
        [2.2, 0.5].map(|value| Gamma { value }).to_vec()
    }
}
