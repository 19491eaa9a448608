//! The CPU/SIMD backend, the reference: each planned step in order.

use crate::error::Error;
use crate::frame::Frame;
use crate::limits::Deadline;
use crate::ops::Op;

pub fn run(frame: Frame, ops: &[Op], sizes: &[(u32, u32)]) -> Result<Frame, Error> {
    run_until(frame, ops, sizes, &Deadline::none())
}

/// As [`run`], checking the job's deadline before and after each step (long steps also
/// stop between rows once it has passed).
pub(crate) fn run_until(
    frame: Frame,
    ops: &[Op],
    sizes: &[(u32, u32)],
    deadline: &Deadline,
) -> Result<Frame, Error> {
    let mut frame = frame;
    for (index, (op, &size)) in ops.iter().zip(sizes).enumerate() {
        deadline.check(|| format!("before step {} of {}", index + 1, ops.len()))?;
        frame = deadline.run_within(|| op.apply(frame, size))?;
    }
    deadline.check(|| "at the last step".into())?;
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Layout;
    use crate::limits::Limits;

    fn test_frame() -> Frame {
        let data = (0..64 * 48 * 3).map(|i| (i * 7 % 251) as u8).collect();
        Frame::new(64, 48, Layout::Rgb8, data).expect("a valid frame")
    }

    #[test]
    fn a_job_out_of_time_stops_with_a_limits_error_naming_the_setting() {
        let pipeline: crate::Pipeline = "blur:2|gray".parse().expect("a valid pipeline");
        let ops = pipeline.ops;
        let sizes = [(64, 48), (64, 48)];
        let expired = Limits {
            max_job_seconds: 0,
            ..Limits::default()
        }
        .job_deadline();
        let error = run_until(test_frame(), &ops, &sizes, &expired).expect_err("out of time");
        assert_eq!(error.kind(), crate::ErrorKind::Limits);
        assert!(error.to_string().contains("max_job_seconds"), "{error}");
        assert!(error.to_string().contains("before step 1 of 2"), "{error}");
        let in_time = Limits::default().job_deadline();
        assert!(run_until(test_frame(), &ops, &sizes, &in_time).is_ok());
    }

    #[test]
    fn a_long_step_stops_between_rows_once_the_time_is_up() {
        let mut frame = test_frame();
        let expired = Limits {
            max_job_seconds: 0,
            ..Limits::default()
        }
        .job_deadline();
        // Within an expired deadline the blur's row loops do nothing at all.
        expired.run_within(|| crate::ops::blur::blur(&mut frame, 8.0));
        assert_eq!(frame.data(), test_frame().data());
        assert!(
            !crate::limits::out_of_time(),
            "the deadline ends with the job"
        );
    }
}
