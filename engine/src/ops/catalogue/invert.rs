//! `invert`: the negative of every colour channel.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::frame::Frame;
use crate::ops::color;
use crate::ops::operation::{self as text, OpSpec, Operation};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Invert {}

/// 255 − value.
fn table() -> [u8; 256] {
    std::array::from_fn(|i| 255 - i as u8)
}

impl Invert {
    pub(crate) const SPEC: OpSpec = OpSpec {
        names: &["invert"],
        syntax: "invert",
        about: "negative",
        example: "invert",
    };
}

impl Operation for Invert {
    fn parse(args: Option<&str>) -> Result<Self, String> {
        text::no_arguments(args, &Self::SPEC).map(|()| Invert {})
    }

    fn canonical(&self) -> String {
        "invert".into()
    }

    fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    fn apply(&self, mut frame: Frame, _: (u32, u32)) -> Result<Frame, Error> {
        color::apply_table(&mut frame, &table());
        Ok(frame)
    }

    fn cpu_ns_per_pixel(&self) -> f64 {
        color::NS_PER_PIXEL
    }

    #[cfg(feature = "gpu")]
    fn plan_gpu(&self, planner: &mut crate::backend::gpu::Planner, _: (u32, u32)) {
        planner.table(table());
    }

    fn test_cases(_: (u32, u32)) -> Vec<Self> {
        vec![Invert {}]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Layout;

    #[test]
    fn colour_is_negated_and_alpha_kept() {
        let frame = Frame::new(1, 1, Layout::Rgba8, vec![0, 100, 255, 7]).unwrap();
        let out = Invert {}.apply(frame, (1, 1)).unwrap();
        assert_eq!(out.data(), [255, 155, 0, 7]);
    }
}
