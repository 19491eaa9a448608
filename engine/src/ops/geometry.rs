//! Pixel-moving operations: crop, and the eight rotations/mirrorings (rotate, flip, orient).

use crate::error::Error;
use crate::frame::{Frame, Layout};
use crate::ops::{Flip, FlipAxis, Op, Rotate};
use crate::orientation::Orientation;

/// The steps that show a picture stored with `orientation` upright, planned before the
/// pipeline's own: a quarter turn, a mirror, or a turn then a mirror (EXIF 5 and 7).
pub fn orientation_steps(orientation: Orientation) -> Vec<Op> {
    let rotate = |degrees| Op::Rotate(Rotate { degrees });
    let mirror = || Op::Flip(Flip { axis: FlipAxis::H });
    match orientation {
        Orientation::Normal => vec![],
        Orientation::FlipHorizontal => vec![mirror()],
        Orientation::Rotate180 => vec![rotate(180)],
        Orientation::FlipVertical => vec![Op::Flip(Flip { axis: FlipAxis::V })],
        Orientation::Transpose => vec![rotate(90), mirror()],
        Orientation::Rotate90 => vec![rotate(90)],
        Orientation::Transverse => vec![rotate(270), mirror()],
        Orientation::Rotate270 => vec![rotate(270)],
    }
}

/// The part of `impl Operation` that `rotate` and `flip` share: the frame turned or
/// mirrored by `self.orientation()`, on the CPU and the GPU.
macro_rules! reorients {
    () => {
        fn apply(
            &self,
            frame: $crate::frame::Frame,
            _: (u32, u32),
        ) -> Result<$crate::frame::Frame, $crate::error::Error> {
            $crate::ops::geometry::orient(frame, self.orientation())
        }

        fn cpu_ns_per_pixel(&self) -> f64 {
            9.5
        }

        #[cfg(feature = "gpu")]
        fn plan_gpu(&self, planner: &mut $crate::backend::gpu::Planner, _: (u32, u32)) {
            planner.orient(self.orientation());
        }
    };
}
pub(crate) use reorients;

/// Cuts out `width`×`height` at (`x`, `y`); the rectangle must lie inside the frame.
pub fn crop(frame: &Frame, x: u32, y: u32, width: u32, height: u32) -> Result<Frame, Error> {
    let bpp = frame.bytes_per_pixel();
    let row_bytes = width as usize * bpp;
    let mut data = Vec::with_capacity(row_bytes * height as usize);
    for row in frame
        .data()
        .chunks_exact(frame.stride())
        .skip(y as usize)
        .take(height as usize)
    {
        let start = x as usize * bpp;
        data.extend_from_slice(&row[start..start + row_bytes]);
    }
    Frame::new(width, height, frame.layout(), data)
}

/// Applies an orientation transform (also used for `rotate` and `flip`); `Normal` hands
/// the frame back untouched, without a copy.
pub fn orient(frame: Frame, orientation: Orientation) -> Result<Frame, Error> {
    match (orientation, frame.layout()) {
        (Orientation::Normal, _) => Ok(frame),
        (_, Layout::Rgb8) => transform::<3>(&frame, orientation),
        (_, Layout::Rgba8) => transform::<4>(&frame, orientation),
    }
}

fn transform<const BPP: usize>(frame: &Frame, orientation: Orientation) -> Result<Frame, Error> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let (out_w, out_h) = if orientation.swaps_dimensions() {
        (h, w)
    } else {
        (w, h)
    };
    let mut out = Frame::zeroed(out_w as u32, out_h as u32, frame.layout())?;
    let dst = out.data_mut();
    for (y, row) in frame.data().chunks_exact(w * BPP).enumerate() {
        for (x, pixel) in row.chunks_exact(BPP).enumerate() {
            let (dx, dy) = match orientation {
                Orientation::Normal => (x, y),
                Orientation::FlipHorizontal => (w - 1 - x, y),
                Orientation::Rotate180 => (w - 1 - x, h - 1 - y),
                Orientation::FlipVertical => (x, h - 1 - y),
                Orientation::Transpose => (y, x),
                Orientation::Rotate90 => (h - 1 - y, x),
                Orientation::Transverse => (h - 1 - y, w - 1 - x),
                Orientation::Rotate270 => (y, w - 1 - x),
            };
            let at = (dy * out_w + dx) * BPP;
            dst[at..at + BPP].copy_from_slice(pixel);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 3×2 RGB frame whose pixels are numbered 1..=6 row by row (all channels equal).
    fn numbered() -> Frame {
        let data = (1..=6u8).flat_map(|v| [v, v, v]).collect();
        Frame::new(3, 2, Layout::Rgb8, data).unwrap()
    }

    fn values(frame: &Frame) -> Vec<u8> {
        frame.data().chunks_exact(3).map(|p| p[0]).collect()
    }

    #[test]
    fn every_orientation_against_hand_worked_grids() {
        // 1 2 3
        // 4 5 6
        let cases = [
            (Orientation::Normal, (3, 2), vec![1, 2, 3, 4, 5, 6]),
            (Orientation::FlipHorizontal, (3, 2), vec![3, 2, 1, 6, 5, 4]),
            (Orientation::Rotate180, (3, 2), vec![6, 5, 4, 3, 2, 1]),
            (Orientation::FlipVertical, (3, 2), vec![4, 5, 6, 1, 2, 3]),
            (Orientation::Transpose, (2, 3), vec![1, 4, 2, 5, 3, 6]),
            (Orientation::Rotate90, (2, 3), vec![4, 1, 5, 2, 6, 3]),
            (Orientation::Transverse, (2, 3), vec![6, 3, 5, 2, 4, 1]),
            (Orientation::Rotate270, (2, 3), vec![3, 6, 2, 5, 1, 4]),
        ];
        for (orientation, dims, expected) in cases {
            let out = orient(numbered(), orientation).unwrap();
            assert_eq!((out.width(), out.height()), dims, "{orientation:?}");
            assert_eq!(values(&out), expected, "{orientation:?}");
            // The steps a pipeline plans for it end in the same place.
            let mut frame = numbered();
            for step in orientation_steps(orientation) {
                let size = step.output_size(frame.width(), frame.height()).unwrap();
                frame = step.apply(frame, size).unwrap();
            }
            assert_eq!(values(&frame), expected, "{orientation:?} as steps");
        }
    }

    #[test]
    fn crop_takes_the_rectangle() {
        let out = crop(&numbered(), 1, 0, 2, 2).unwrap();
        assert_eq!(values(&out), vec![2, 3, 5, 6]);
    }

    #[test]
    fn large_frames_turn_and_mirror_as_the_steps_compose() {
        // Uneven sides, every pixel distinct.
        let (w, h) = (150u32, 70u32);
        let data = (0..w * h)
            .flat_map(|i| [(i % w) as u8, (i / w) as u8, (i * 7 / 3) as u8])
            .collect();
        let frame = Frame::new(w, h, Layout::Rgb8, data).unwrap();
        let turn = |f: Frame, times: usize| {
            (0..times).fold(f, |f, _| orient(f, Orientation::Rotate90).unwrap())
        };
        let mirror = |f: Frame| orient(f, Orientation::FlipHorizontal).unwrap();
        let quarter = turn(frame.clone(), 1);
        // A quarter turn clockwise puts the top-left pixel top-right.
        assert_eq!((quarter.width(), quarter.height()), (h, w));
        assert_eq!(
            &quarter.data()[(h as usize - 1) * 3..][..3],
            &frame.data()[..3]
        );
        assert_eq!(turn(frame.clone(), 4), frame);
        assert_eq!(mirror(mirror(frame.clone())), frame);
        let cases = [
            (Orientation::Rotate180, turn(frame.clone(), 2)),
            (Orientation::Rotate270, turn(frame.clone(), 3)),
            (Orientation::Transpose, mirror(turn(frame.clone(), 1))),
            (Orientation::Transverse, mirror(turn(frame.clone(), 3))),
            (Orientation::FlipVertical, mirror(turn(frame.clone(), 2))),
        ];
        for (orientation, expected) in cases {
            assert_eq!(
                orient(frame.clone(), orientation).unwrap(),
                expected,
                "{orientation:?}"
            );
        }
    }

    #[test]
    fn rgba_pixels_move_whole() {
        let frame = Frame::new(2, 1, Layout::Rgba8, vec![1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let out = orient(frame, Orientation::Rotate90).unwrap();
        assert_eq!(out.data(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!((out.width(), out.height()), (1, 2));
    }
}
