//! `flip:h|v`: mirror left-right or top-bottom.

use serde::{Deserialize, Serialize};

use crate::ops::geometry;
use crate::ops::operation::{self as text, OpSpec, Operation};
use crate::orientation::Orientation;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Flip {
    pub axis: FlipAxis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlipAxis {
    /// Mirror left-right.
    H,
    /// Mirror top-bottom.
    V,
}

impl Flip {
    fn orientation(self) -> Orientation {
        match self.axis {
            FlipAxis::H => Orientation::FlipHorizontal,
            FlipAxis::V => Orientation::FlipVertical,
        }
    }
}

impl Flip {
    pub(crate) const SPEC: OpSpec = OpSpec {
        names: &["flip"],
        syntax: "flip:h|v",
        about: "mirror left-right (h) or top-bottom (v)",
        example: "flip:h",
    };
}

impl Operation for Flip {
    fn parse(args: Option<&str>) -> Result<Self, String> {
        let axis = match text::required(args, &Self::SPEC)? {
            "h" => FlipAxis::H,
            "v" => FlipAxis::V,
            other => return Err(format!("flip axis `{other}` must be h or v")),
        };
        Ok(Flip { axis })
    }

    fn canonical(&self) -> String {
        match self.axis {
            FlipAxis::H => "flip:h".into(),
            FlipAxis::V => "flip:v".into(),
        }
    }

    fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    geometry::reorients!();

    fn test_cases(_: (u32, u32)) -> Vec<Self> {
        [FlipAxis::H, FlipAxis::V]
            .map(|axis| Flip { axis })
            .to_vec()
    }
}
