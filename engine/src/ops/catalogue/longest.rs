//! `longest:N[:FILTER]`: the longest side becomes exactly N, aspect kept.

use serde::{Deserialize, Serialize};

use crate::ops::operation::{self as text, OpSpec, Operation};
use crate::ops::resize::{self, Filter};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Longest {
    pub size: u32,
    #[serde(default)]
    pub filter: Filter,
}

impl Longest {
    pub(crate) const SPEC: OpSpec = OpSpec {
        names: &["longest"],
        syntax: "longest:N[:FILTER]",
        about: "longest side becomes exactly N, aspect kept; 1..=16384",
        example: "longest:512",
    };
}

impl Operation for Longest {
    fn parse(args: Option<&str>) -> Result<Self, String> {
        let (size, filter) = text::split_filter(text::required(args, &Self::SPEC)?, &Self::SPEC)?;
        Ok(Longest {
            size: text::number(size)?,
            filter,
        })
    }

    fn canonical(&self) -> String {
        format!("longest:{}{}", self.size, text::filter_suffix(self.filter))
    }

    fn validate(&self) -> Result<(), String> {
        text::in_range("size", self.size, resize::SIDE)
    }

    fn output_size(&self, (width, height): (u32, u32)) -> Result<(u32, u32), String> {
        let factor = f64::from(self.size) / f64::from(width.max(height));
        Ok(resize::scaled((width, height), factor))
    }

    resize::resample_whole_image!();

    fn test_cases(_: (u32, u32)) -> Vec<Self> {
        let longest = |filter| Longest { size: 50, filter };
        Filter::ALL.map(longest).to_vec()
    }
}
