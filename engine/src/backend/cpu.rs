//! The CPU/SIMD backend, the reference: each planned step in order.

use crate::error::Error;
use crate::frame::Frame;
use crate::ops::Op;

pub fn run(frame: Frame, ops: &[Op], sizes: &[(u32, u32)]) -> Result<Frame, Error> {
    let mut frame = frame;
    for (op, &size) in ops.iter().zip(sizes) {
        frame = op.apply(frame, size)?;
    }
    Ok(frame)
}
