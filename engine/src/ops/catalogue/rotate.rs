//! `rotate:90|180|270`: clockwise quarter turns.

use serde::{Deserialize, Serialize};

use crate::ops::geometry;
use crate::ops::operation::{self as text, OpSpec, Operation};
use crate::orientation::Orientation;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rotate {
    pub degrees: u32,
}

impl Rotate {
    fn orientation(self) -> Orientation {
        match self.degrees {
            90 => Orientation::Rotate90,
            180 => Orientation::Rotate180,
            _ => Orientation::Rotate270,
        }
    }
}

impl Rotate {
    pub(crate) const SPEC: OpSpec = OpSpec {
        names: &["rotate"],
        syntax: "rotate:90|180|270",
        about: "turn clockwise by 90, 180 or 270 degrees",
        example: "rotate:90",
    };
}

impl Operation for Rotate {
    fn parse(args: Option<&str>) -> Result<Self, String> {
        Ok(Rotate {
            degrees: text::number(text::required(args, &Self::SPEC)?)?,
        })
    }

    fn canonical(&self) -> String {
        format!("rotate:{}", self.degrees)
    }

    fn validate(&self) -> Result<(), String> {
        match self.degrees {
            90 | 180 | 270 => Ok(()),
            degrees => Err(format!("rotation {degrees} must be 90, 180 or 270")),
        }
    }

    fn output_size(&self, (width, height): (u32, u32)) -> Result<(u32, u32), String> {
        Ok(match self.degrees {
            180 => (width, height),
            _ => (height, width),
        })
    }

    geometry::reorients!();

    fn test_cases(_: (u32, u32)) -> Vec<Self> {
        [90, 180, 270].map(|degrees| Rotate { degrees }).to_vec()
    }
}
