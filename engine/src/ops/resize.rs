//! Resampling. The only place fast_image_resize is called; it picks SSE4.1/AVX2/NEON at
//! run time and premultiplies alpha while resampling RGBA.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::frame::{Frame, Layout};
use crate::ops::operation::{in_range, pixels};

/// Resampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Filter {
    #[default]
    Lanczos3,
    Mitchell,
    Catmull,
    Bilinear,
    Nearest,
}

impl Filter {
    pub const ALL: [Filter; 5] = [
        Filter::Lanczos3,
        Filter::Mitchell,
        Filter::Catmull,
        Filter::Bilinear,
        Filter::Nearest,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Filter::Lanczos3 => "lanczos3",
            Filter::Mitchell => "mitchell",
            Filter::Catmull => "catmull",
            Filter::Bilinear => "bilinear",
            Filter::Nearest => "nearest",
        }
    }

    pub fn from_name(name: &str) -> Option<Filter> {
        Filter::ALL.into_iter().find(|f| f.name() == name)
    }

    fn algorithm(self) -> ResizeAlg {
        match self {
            Filter::Lanczos3 => ResizeAlg::Convolution(FilterType::Lanczos3),
            Filter::Mitchell => ResizeAlg::Convolution(FilterType::Mitchell),
            Filter::Catmull => ResizeAlg::Convolution(FilterType::CatmullRom),
            Filter::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
            Filter::Nearest => ResizeAlg::Nearest,
        }
    }
}

/// CPU nanoseconds per pixel of one core for a resample with `filter` (the cost model's
/// measurement, shared by every resampling step).
pub(crate) fn ns_per_pixel(filter: Filter) -> f64 {
    match filter {
        Filter::Nearest => 0.5,
        Filter::Bilinear => 2.5,
        _ => 4.2,
    }
}

/// Bytes a resample holds: input, output, and the intermediate (output width × input
/// height) between its vertical and horizontal passes.
pub(crate) fn working_bytes(input: (u32, u32), output: (u32, u32), bytes_per_pixel: u64) -> u64 {
    let intermediate = (output.0, input.1);
    (pixels(input) + pixels(output) + pixels(intermediate)) * bytes_per_pixel
}

/// Both sides multiplied by `factor`, rounded, at least 1.
pub(crate) fn scaled((width, height): (u32, u32), factor: f64) -> (u32, u32) {
    let side = |v: u32| ((f64::from(v) * factor).round().max(1.0)).min(f64::from(u32::MAX)) as u32;
    (side(width), side(height))
}

/// A target box's sides within `1..=MAX_SIDE`.
pub(crate) fn check_box(width: u32, height: u32) -> Result<(), String> {
    in_range("width", width, SIDE)?;
    in_range("height", height, SIDE)
}

/// The range of a target side.
pub(crate) const SIDE: (u32, u32) = (1, super::MAX_SIDE);

/// The cost, memory and kind of a resampling step, for its `impl Operation` (the step
/// has a `filter` field).
macro_rules! resampling_cost {
    () => {
        fn cpu_ns_per_pixel(&self) -> f64 {
            $crate::ops::resize::ns_per_pixel(self.filter)
        }

        fn working_bytes(
            &self,
            input: (u32, u32),
            output: (u32, u32),
            bytes_per_pixel: u64,
        ) -> u64 {
            $crate::ops::resize::working_bytes(input, output, bytes_per_pixel)
        }

        fn resamples(&self) -> bool {
            true
        }
    };
}
pub(crate) use resampling_cost;

/// The whole of `impl Operation` that `fit`, `resize`, `scale` and `longest` share: the
/// whole frame resampled to the planned size with `self.filter`, on the CPU and the GPU.
macro_rules! resample_whole_image {
    () => {
        $crate::ops::resize::resampling_cost!();

        fn apply(
            &self,
            frame: $crate::frame::Frame,
            (width, height): (u32, u32),
        ) -> Result<$crate::frame::Frame, $crate::error::Error> {
            $crate::ops::resize::resize(&frame, width, height, self.filter, None)
        }

        #[cfg(feature = "gpu")]
        fn plan_gpu(&self, planner: &mut $crate::backend::gpu::Planner, output: (u32, u32)) {
            planner.resample_whole(output, self.filter);
        }
    };
}
pub(crate) use resample_whole_image;

/// Resamples to exactly `width`×`height`. With `cover`, the source is cropped to the
/// target's aspect ratio first (the `fill` mode), the overflow cut at these fractions from
/// the start of each axis (0.5: centred); otherwise it is stretched.
pub fn resize(
    frame: &Frame,
    width: u32,
    height: u32,
    filter: Filter,
    cover: Option<(f64, f64)>,
) -> Result<Frame, Error> {
    if (width, height) == (frame.width(), frame.height()) {
        return Ok(frame.clone());
    }
    let pixel_type = match frame.layout() {
        Layout::Rgb8 => PixelType::U8x3,
        Layout::Rgba8 => PixelType::U8x4,
    };
    let internal = |e: &dyn std::fmt::Display| Error::Internal(format!("resize: {e}"));
    let source = ImageRef::new(frame.width(), frame.height(), frame.data(), pixel_type)
        .map_err(|e| internal(&e))?;
    let mut target = Image::new(width, height, pixel_type);
    let mut options = ResizeOptions::new().resize_alg(filter.algorithm());
    if let Some(centering) = cover {
        options = options.fit_into_destination(Some(centering));
    }
    Resizer::new()
        .resize(&source, &mut target, &options)
        .map_err(|e| internal(&e))?;
    Frame::new(width, height, frame.layout(), target.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_colour_survives_every_filter() {
        let frame = Frame::new(7, 5, Layout::Rgb8, [10u8, 200, 90].repeat(35)).unwrap();
        for filter in Filter::ALL {
            let out = resize(&frame, 3, 11, filter, None).unwrap();
            assert_eq!((out.width(), out.height()), (3, 11));
            assert!(
                out.data().chunks_exact(3).all(|p| p == [10, 200, 90]),
                "{filter:?}"
            );
        }
    }

    #[test]
    fn cover_crops_the_centre() {
        // Left third red, middle third green, right third blue; a 1×1 cover keeps green.
        let row: Vec<u8> = [[255, 0, 0], [0, 255, 0], [0, 0, 255]].concat();
        let frame = Frame::new(3, 1, Layout::Rgb8, row).unwrap();
        let out = resize(&frame, 1, 1, Filter::Nearest, Some((0.5, 0.5))).unwrap();
        assert_eq!(out.data(), &[0, 255, 0]);
    }

    #[test]
    fn transparent_pixels_do_not_bleed() {
        // Opaque white next to fully transparent red: the average must not turn pink.
        let frame =
            Frame::new(2, 1, Layout::Rgba8, vec![255, 255, 255, 255, 255, 0, 0, 0]).unwrap();
        let out = resize(&frame, 1, 1, Filter::Bilinear, None).unwrap();
        assert_eq!(&out.data()[..3], &[255, 255, 255]);
    }

    #[test]
    fn filter_names_round_trip() {
        for filter in Filter::ALL {
            assert_eq!(Filter::from_name(filter.name()), Some(filter));
        }
    }
}
