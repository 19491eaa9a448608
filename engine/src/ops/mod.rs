//! Image operations: what each one is, which arguments it accepts, the size it produces,
//! and how it runs on the CPU. Parsing and printing live in `pipeline`.

mod alpha;
pub(crate) mod blur;
pub(crate) mod color;
pub(crate) mod geometry;
mod gravity;
mod pixelate;
pub(crate) mod resize;

use serde::{Deserialize, Serialize};

pub use gravity::Gravity;
pub use resize::Filter;

use crate::error::Error;
use crate::frame::Frame;
use crate::orientation::Orientation;

/// Largest width or height a resize step may ask for.
pub const MAX_SIDE: u32 = 16384;

/// One step of a pipeline. Build them by parsing pipeline text, or directly and then
/// [`Op::validate`] them (deserialising a [`crate::Pipeline`] validates).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Inside a `width`×`height` box, aspect kept, never enlarged.
    Fit {
        width: u32,
        height: u32,
        #[serde(default)]
        filter: Filter,
    },
    /// Covers the box exactly (enlarging if needed), cropping what overflows where
    /// `gravity` says (the centre by default).
    Fill {
        width: u32,
        height: u32,
        #[serde(default)]
        filter: Filter,
        #[serde(default)]
        gravity: Gravity,
    },
    /// Exactly `width`×`height`, aspect not kept.
    Resize {
        width: u32,
        height: u32,
        #[serde(default)]
        filter: Filter,
    },
    /// Both sides multiplied by `factor`.
    Scale {
        factor: f64,
        #[serde(default)]
        filter: Filter,
    },
    /// Longest side becomes exactly `size` (enlarging if needed), aspect kept.
    Longest {
        size: u32,
        #[serde(default)]
        filter: Filter,
    },
    Crop {
        x: u32,
        y: u32,
        width: u32,
        height: u32,
    },
    Rotate {
        degrees: u32,
    },
    Flip {
        axis: FlipAxis,
    },
    Gray,
    Brightness {
        value: i32,
    },
    Contrast {
        value: i32,
    },
    Saturation {
        value: i32,
    },
    Gamma {
        value: f64,
    },
    Sepia,
    Invert,
    Blur {
        sigma: f64,
    },
    Sharpen {
        amount: f64,
    },
    Pixelate {
        size: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlipAxis {
    /// Mirror left-right.
    H,
    /// Mirror top-bottom.
    V,
}

/// Documented ranges, shared by the parser, validation and `prism ops`.
pub mod range {
    pub const SIDE: (u32, u32) = (1, super::MAX_SIDE);
    pub const SCALE: (f64, f64) = (0.01, 10.0);
    pub const ADJUST: (i32, i32) = (-100, 100);
    pub const GAMMA: (f64, f64) = (0.1, 10.0);
    pub const BLUR_SIGMA: (f64, f64) = (0.1, 50.0);
    pub const SHARPEN_AMOUNT: (f64, f64) = (0.1, 10.0);
    pub const PIXELATE: (u32, u32) = (2, 1024);
    pub const ROTATE: [u32; 3] = [90, 180, 270];
}

fn check<T: PartialOrd + std::fmt::Display>(
    name: &str,
    value: T,
    (low, high): (T, T),
) -> Result<(), String> {
    if value >= low && value <= high {
        Ok(())
    } else {
        Err(format!("{name} {value} is out of range {low}..={high}"))
    }
}

impl Op {
    /// Checks every argument against its documented range.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Op::Fit { width, height, .. }
            | Op::Fill { width, height, .. }
            | Op::Resize { width, height, .. } => {
                check("width", width, range::SIDE)?;
                check("height", height, range::SIDE)
            }
            Op::Scale { factor, .. } => check("factor", factor, range::SCALE),
            Op::Longest { size, .. } => check("size", size, range::SIDE),
            Op::Crop { width, height, .. } => {
                check("width", width, range::SIDE)?;
                check("height", height, range::SIDE)
            }
            Op::Rotate { degrees } if !range::ROTATE.contains(&degrees) => {
                Err(format!("rotation {degrees} must be 90, 180 or 270"))
            }
            Op::Brightness { value } | Op::Contrast { value } | Op::Saturation { value } => {
                check("value", value, range::ADJUST)
            }
            Op::Gamma { value } => check("gamma", value, range::GAMMA),
            Op::Blur { sigma } => check("sigma", sigma, range::BLUR_SIGMA),
            Op::Sharpen { amount } => check("amount", amount, range::SHARPEN_AMOUNT),
            Op::Pixelate { size } => check("block size", size, range::PIXELATE),
            Op::Rotate { .. } | Op::Flip { .. } | Op::Gray | Op::Sepia | Op::Invert => Ok(()),
        }
    }

    /// The size this step turns a `width`×`height` image into, without touching pixels,
    /// so a pipeline's limits can be checked before decoding.
    pub fn output_size(&self, width: u32, height: u32) -> Result<(u32, u32), String> {
        let scaled = |factor: f64| {
            let side =
                |v: u32| ((f64::from(v) * factor).round().max(1.0)).min(f64::from(u32::MAX)) as u32;
            (side(width), side(height))
        };
        Ok(match *self {
            Op::Fit {
                width: w,
                height: h,
                ..
            } => {
                if width <= w && height <= h {
                    (width, height)
                } else {
                    scaled((f64::from(w) / f64::from(width)).min(f64::from(h) / f64::from(height)))
                }
            }
            Op::Fill {
                width: w,
                height: h,
                ..
            }
            | Op::Resize {
                width: w,
                height: h,
                ..
            } => (w, h),
            Op::Scale { factor, .. } => scaled(factor),
            Op::Longest { size, .. } => scaled(f64::from(size) / f64::from(width.max(height))),
            Op::Crop {
                x,
                y,
                width: w,
                height: h,
            } => {
                if u64::from(x) + u64::from(w) > u64::from(width)
                    || u64::from(y) + u64::from(h) > u64::from(height)
                {
                    return Err(format!(
                        "the rectangle {w}x{h} at {x},{y} is outside the {width}x{height} image"
                    ));
                }
                (w, h)
            }
            Op::Rotate { degrees: 90 | 270 } => (height, width),
            _ => (width, height),
        })
    }

    /// Whether the op places its geometry by looking at the pixels (a smart `fill`), which
    /// the GPU's pass plan, made before any pixel is there, cannot do.
    pub fn places_by_content(&self) -> bool {
        matches!(self, Op::Fill { gravity, .. } if gravity.reads_pixels())
    }

    /// Runs the step on the CPU, producing the size [`Op::output_size`] planned.
    pub fn apply(&self, frame: Frame, (width, height): (u32, u32)) -> Result<Frame, Error> {
        let mut frame = frame;
        match *self {
            Op::Fit { filter, .. }
            | Op::Scale { filter, .. }
            | Op::Longest { filter, .. }
            | Op::Resize { filter, .. } => {
                return resize::resize(&frame, width, height, filter, None);
            }
            Op::Fill {
                filter, gravity, ..
            } => {
                let centering = gravity.centering(&frame, (width, height));
                return resize::resize(&frame, width, height, filter, Some(centering));
            }
            Op::Crop { x, y, .. } => return geometry::crop(&frame, x, y, width, height),
            Op::Rotate { degrees } => {
                let orientation = match degrees {
                    90 => Orientation::Rotate90,
                    180 => Orientation::Rotate180,
                    _ => Orientation::Rotate270,
                };
                return geometry::orient(frame, orientation);
            }
            Op::Flip { axis: FlipAxis::H } => {
                return geometry::orient(frame, Orientation::FlipHorizontal);
            }
            Op::Flip { axis: FlipAxis::V } => {
                return geometry::orient(frame, Orientation::FlipVertical);
            }
            Op::Gray => color::gray(&mut frame),
            Op::Brightness { value } => color::brightness(&mut frame, value),
            Op::Contrast { value } => color::contrast(&mut frame, value),
            Op::Saturation { value } => color::saturation(&mut frame, value),
            Op::Gamma { value } => color::gamma(&mut frame, value),
            Op::Sepia => color::sepia(&mut frame),
            Op::Invert => color::invert(&mut frame),
            Op::Blur { sigma } => blur::blur(&mut frame, sigma),
            Op::Sharpen { amount } => blur::sharpen(&mut frame, amount),
            Op::Pixelate { size } => pixelate::pixelate(&mut frame, size),
        }
        Ok(frame)
    }

    /// Whether the step resamples the whole image.
    pub fn is_resample(&self) -> bool {
        matches!(
            self,
            Op::Fit { .. }
                | Op::Fill { .. }
                | Op::Resize { .. }
                | Op::Scale { .. }
                | Op::Longest { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_sizes() {
        let fit = Op::Fit {
            width: 1280,
            height: 1280,
            filter: Filter::Lanczos3,
        };
        assert_eq!(fit.output_size(4000, 3000), Ok((1280, 960)));
        assert_eq!(
            fit.output_size(800, 600),
            Ok((800, 600)),
            "fit never enlarges"
        );
        assert_eq!(
            Op::Longest {
                size: 512,
                filter: Filter::Lanczos3
            }
            .output_size(100, 50),
            Ok((512, 256))
        );
        assert_eq!(
            Op::Scale {
                factor: 0.5,
                filter: Filter::Nearest
            }
            .output_size(3, 1),
            Ok((2, 1))
        );
        assert_eq!(Op::Rotate { degrees: 90 }.output_size(3, 1), Ok((1, 3)));
        assert!(
            Op::Crop {
                x: 5,
                y: 0,
                width: 6,
                height: 1
            }
            .output_size(10, 10)
            .is_err()
        );
    }

    #[test]
    fn validation_refuses_out_of_range() {
        assert!(Op::Brightness { value: 101 }.validate().is_err());
        assert!(Op::Rotate { degrees: 45 }.validate().is_err());
        assert!(
            Op::Fit {
                width: 0,
                height: 10,
                filter: Filter::Nearest
            }
            .validate()
            .is_err()
        );
        assert!(Op::Blur { sigma: 0.0 }.validate().is_err());
        assert!(Op::Gamma { value: f64::NAN }.validate().is_err());
        assert!(Op::Pixelate { size: 8 }.validate().is_ok());
    }
}
