//! `fit:WxH[:FILTER]`: inside a box, aspect kept, never enlarged.

use serde::{Deserialize, Serialize};

use crate::ops::operation::{self as text, OpSpec, Operation};
use crate::ops::resize::{self, Filter};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    pub width: u32,
    pub height: u32,
    #[serde(default)]
    pub filter: Filter,
}

impl Fit {
    pub(crate) const SPEC: OpSpec = OpSpec {
        names: &["fit"],
        syntax: "fit:WxH[:FILTER]",
        about: "fit inside the box, keep aspect, never enlarge (fit:N = NxN); W,H 1..=16384",
        example: "fit:1280x1280",
    };
}

impl Operation for Fit {
    fn parse(args: Option<&str>) -> Result<Self, String> {
        let (width, height, filter) = text::box_and_filter(args, &Self::SPEC)?;
        Ok(Fit {
            width,
            height,
            filter,
        })
    }

    fn canonical(&self) -> String {
        let filter = text::filter_suffix(self.filter);
        format!("fit:{}x{}{filter}", self.width, self.height)
    }

    fn validate(&self) -> Result<(), String> {
        resize::check_box(self.width, self.height)
    }

    fn output_size(&self, (width, height): (u32, u32)) -> Result<(u32, u32), String> {
        if width <= self.width && height <= self.height {
            return Ok((width, height));
        }
        let factor = (f64::from(self.width) / f64::from(width))
            .min(f64::from(self.height) / f64::from(height));
        Ok(resize::scaled((width, height), factor))
    }

    resize::resample_whole_image!();

    fn test_cases((width, height): (u32, u32)) -> Vec<Self> {
        let fit = |filter| Fit {
            width: (width / 2).max(1),
            height: (height / 3).max(1),
            filter,
        };
        Filter::ALL.map(fit).to_vec()
    }
}
