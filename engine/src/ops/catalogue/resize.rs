//! `resize:WxH[:FILTER]`: exactly that size, aspect not kept.

use serde::{Deserialize, Serialize};

use crate::ops::operation::{self as text, OpSpec, Operation};
use crate::ops::resize::{self as resampler, Filter};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Resize {
    pub width: u32,
    pub height: u32,
    #[serde(default)]
    pub filter: Filter,
}

impl Resize {
    pub(crate) const SPEC: OpSpec = OpSpec {
        names: &["resize"],
        syntax: "resize:WxH[:FILTER]",
        about: "exactly WxH, aspect not kept",
        example: "resize:800x600:mitchell",
    };
}

impl Operation for Resize {
    fn parse(args: Option<&str>) -> Result<Self, String> {
        let (width, height, filter) = text::box_and_filter(args, &Self::SPEC)?;
        Ok(Resize {
            width,
            height,
            filter,
        })
    }

    fn canonical(&self) -> String {
        let filter = text::filter_suffix(self.filter);
        format!("resize:{}x{}{filter}", self.width, self.height)
    }

    fn validate(&self) -> Result<(), String> {
        resampler::check_box(self.width, self.height)
    }

    fn output_size(&self, _: (u32, u32)) -> Result<(u32, u32), String> {
        Ok((self.width, self.height))
    }

    resampler::resample_whole_image!();

    fn test_cases((width, height): (u32, u32)) -> Vec<Self> {
        let resize = |filter| Resize {
            width: width * 2 + 3,
            height: height + 4,
            filter,
        };
        Filter::ALL.map(resize).to_vec()
    }
}
