//! `sepia`: the classic sepia matrix.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::frame::Frame;
use crate::ops::color;
use crate::ops::operation::{self as text, OpSpec, Operation};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sepia {}

impl Sepia {
    pub(crate) const SPEC: OpSpec = OpSpec {
        names: &["sepia"],
        syntax: "sepia",
        about: "sepia tone",
        example: "sepia",
    };
}

impl Operation for Sepia {
    fn parse(args: Option<&str>) -> Result<Self, String> {
        text::no_arguments(args, &Self::SPEC).map(|()| Sepia {})
    }

    fn canonical(&self) -> String {
        "sepia".into()
    }

    fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    fn apply(&self, mut frame: Frame, _: (u32, u32)) -> Result<Frame, Error> {
        color::sepia(&mut frame);
        Ok(frame)
    }

    fn cpu_ns_per_pixel(&self) -> f64 {
        color::NS_PER_PIXEL
    }

    #[cfg(feature = "gpu")]
    fn plan_gpu(&self, planner: &mut crate::backend::gpu::Planner, _: (u32, u32)) {
        use crate::backend::gpu::{COLOR_SHADER, Kernel};
        planner.step(Kernel::new(COLOR_SHADER, "sepia"), [0; 4], [0.0; 4]);
    }

    fn test_cases(_: (u32, u32)) -> Vec<Self> {
        vec![Sepia {}]
    }
}
