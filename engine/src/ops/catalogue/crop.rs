//! `crop:X,Y,W,H`: cuts out a rectangle that must lie inside the image.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::frame::Frame;
use crate::ops::geometry;
use crate::ops::operation::{self as text, OpSpec, Operation};
use crate::ops::resize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Crop {
    pub(crate) const SPEC: OpSpec = OpSpec {
        names: &["crop"],
        syntax: "crop:X,Y,W,H",
        about: "cut out W x H at X,Y (must lie inside the image)",
        example: "crop:10,20,300,200",
    };
}

impl Operation for Crop {
    fn parse(args: Option<&str>) -> Result<Self, String> {
        let parts: Vec<&str> = text::required(args, &Self::SPEC)?.split(',').collect();
        let [x, y, width, height] = parts[..] else {
            return Err(format!("crop needs X,Y,W,H, e.g. {}", Self::SPEC.example));
        };
        Ok(Crop {
            x: text::number(x)?,
            y: text::number(y)?,
            width: text::number(width)?,
            height: text::number(height)?,
        })
    }

    fn canonical(&self) -> String {
        let Crop {
            x,
            y,
            width,
            height,
        } = self;
        format!("crop:{x},{y},{width},{height}")
    }

    fn validate(&self) -> Result<(), String> {
        resize::check_box(self.width, self.height)
    }

    fn output_size(&self, (width, height): (u32, u32)) -> Result<(u32, u32), String> {
        let Crop { x, y, .. } = *self;
        if u64::from(x) + u64::from(self.width) > u64::from(width)
            || u64::from(y) + u64::from(self.height) > u64::from(height)
        {
            return Err(format!(
                "the rectangle {}x{} at {x},{y} is outside the {width}x{height} image",
                self.width, self.height
            ));
        }
        Ok((self.width, self.height))
    }

    fn apply(&self, frame: Frame, (width, height): (u32, u32)) -> Result<Frame, Error> {
        geometry::crop(&frame, self.x, self.y, width, height)
    }

    fn cpu_ns_per_pixel(&self) -> f64 {
        0.3
    }

    #[cfg(feature = "gpu")]
    fn plan_gpu(&self, planner: &mut crate::backend::gpu::Planner, output: (u32, u32)) {
        planner.shift(output, self.x, self.y);
    }

    fn test_cases((width, height): (u32, u32)) -> Vec<Self> {
        vec![Crop {
            x: width / 4,
            y: height / 4,
            width: (width / 2).max(1),
            height: (height / 2).max(1),
        }]
    }
}
