//! `fill:WxH[:FILTER][:GRAVITY]`: covers the box exactly, cropping the overflow where the
//! gravity says.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::frame::Frame;
use crate::ops::operation::{self as text, OpSpec, Operation};
use crate::ops::resize::{self, Filter};
use crate::ops::Gravity;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fill {
    pub width: u32,
    pub height: u32,
    #[serde(default)]
    pub filter: Filter,
    #[serde(default)]
    pub gravity: Gravity,
}

impl Fill {
    pub(crate) const SPEC: OpSpec = OpSpec {
        names: &["fill"],
        syntax: "fill:WxH[:FILTER][:GRAVITY]",
        about: "cover the box exactly, crop the overflow (enlarges if needed); GRAVITY centre (default), entropy (busiest part) or attention (edges, colour, skin)",
        example: "fill:640x640:attention",
    };
}

impl Operation for Fill {
    fn parse(args: Option<&str>) -> Result<Self, String> {
        let (size, filter, gravity) = text::split_options(text::required(args, &Self::SPEC)?)?;
        let (width, height) = text::parse_box(size)?;
        Ok(Fill {
            width,
            height,
            filter,
            gravity: gravity.unwrap_or_default(),
        })
    }

    fn canonical(&self) -> String {
        let filter = text::filter_suffix(self.filter);
        let gravity = match self.gravity {
            Gravity::Centre => String::new(),
            other => format!(":{}", other.name()),
        };
        format!("fill:{}x{}{filter}{gravity}", self.width, self.height)
    }

    fn validate(&self) -> Result<(), String> {
        resize::check_box(self.width, self.height)
    }

    fn output_size(&self, _: (u32, u32)) -> Result<(u32, u32), String> {
        Ok((self.width, self.height))
    }

    fn apply(&self, frame: Frame, (width, height): (u32, u32)) -> Result<Frame, Error> {
        let centering = self.gravity.centering(&frame, (width, height));
        resize::resize(&frame, width, height, self.filter, Some(centering))
    }

    resize::resampling_cost!();

    fn places_by_content(&self) -> bool {
        self.gravity.reads_pixels()
    }

    #[cfg(feature = "gpu")]
    fn plan_gpu(&self, planner: &mut crate::backend::gpu::Planner, output: (u32, u32)) {
        planner.resample_cover(output, self.filter);
    }

    /// Centred only: a smart gravity runs on the CPU (its own tests are in `gravity.rs`).
    fn test_cases(_: (u32, u32)) -> Vec<Self> {
        let fill = |filter| Fill {
            width: 16,
            height: 9,
            filter,
            gravity: Gravity::Centre,
        };
        Filter::ALL.map(fill).to_vec()
    }
}
