//! The CPU/SIMD backend, the reference: orientation then each op in order.

use crate::error::Error;
use crate::frame::Frame;
use crate::ops::{Op, geometry};
use crate::orientation::Orientation;

pub fn run(
    frame: Frame,
    orientation: Orientation,
    ops: &[Op],
    sizes: &[(u32, u32)],
) -> Result<Frame, Error> {
    let mut frame = geometry::orient(frame, orientation)?;
    for (op, &size) in ops.iter().zip(sizes) {
        frame = op.apply(frame, size)?;
    }
    Ok(frame)
}
