//! `scale:F[:FILTER]`: both sides multiplied by a factor.

use serde::{Deserialize, Serialize};

use crate::ops::operation::{self as text, OpSpec, Operation};
use crate::ops::resize::{self, Filter};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scale {
    pub factor: f64,
    #[serde(default)]
    pub filter: Filter,
}

const FACTOR: (f64, f64) = (0.01, 10.0);

impl Scale {
    pub(crate) const SPEC: OpSpec = OpSpec {
        names: &["scale"],
        syntax: "scale:F[:FILTER]",
        about: "multiply both sides by F; 0.01..=10",
        example: "scale:0.5",
    };
}

impl Operation for Scale {
    fn parse(args: Option<&str>) -> Result<Self, String> {
        let (factor, filter) = text::split_filter(text::required(args, &Self::SPEC)?, &Self::SPEC)?;
        Ok(Scale {
            factor: text::number(factor)?,
            filter,
        })
    }

    fn canonical(&self) -> String {
        format!("scale:{}{}", self.factor, text::filter_suffix(self.filter))
    }

    fn validate(&self) -> Result<(), String> {
        text::in_range("factor", self.factor, FACTOR)
    }

    fn output_size(&self, size: (u32, u32)) -> Result<(u32, u32), String> {
        Ok(resize::scaled(size, self.factor))
    }

    resize::resample_whole_image!();

    fn test_cases(_: (u32, u32)) -> Vec<Self> {
        let scale = |filter| Scale {
            factor: 0.37,
            filter,
        };
        Filter::ALL.map(scale).to_vec()
    }
}
