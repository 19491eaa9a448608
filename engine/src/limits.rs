//! Resource limits: sizes checked against the probed header before any pixel buffer exists,
//! the pipeline's length checked before it is planned, and each job's running time checked
//! while it runs.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::error::Error;

/// Limits that protect the engine from decompression bombs and oversized requests.
///
/// Defaults follow imgproxy: 50 MiB of input, 50 megapixels in and out; at most 32 steps,
/// and a minute of work per job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest accepted input, in bytes.
    pub max_input_bytes: usize,
    /// Largest accepted input image, in pixels (width × height).
    pub max_pixels: u64,
    /// Largest image any step of a pipeline may produce, in pixels.
    pub max_output_pixels: u64,
    /// Most operations one pipeline may chain (presets count as the steps they expand to).
    pub max_steps: usize,
    /// Longest a job may run on a worker, decode to encode; checked between steps and between
    /// rows of the long operations, so a pathological job ends with a `Limits` error instead
    /// of holding a worker for minutes.
    pub max_job_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 50 << 20,
            max_pixels: 50_000_000,
            max_output_pixels: 50_000_000,
            max_steps: 32,
            max_job_seconds: 60,
        }
    }
}

impl Limits {
    pub(crate) fn check_input_bytes(&self, len: usize) -> Result<(), Error> {
        if len > self.max_input_bytes {
            return Err(Error::Limits(format!(
                "input is {len} bytes, the limit is {} bytes",
                self.max_input_bytes
            )));
        }
        Ok(())
    }

    /// Refuses a pipeline of more than `max_steps` operations; callers that take pipelines
    /// from users (the bot) call it before fetching the image.
    pub fn check_steps(&self, steps: usize) -> Result<(), Error> {
        if steps > self.max_steps {
            return Err(Error::Limits(format!(
                "the pipeline has {steps} steps, the limit is {} (max_steps)",
                self.max_steps
            )));
        }
        Ok(())
    }

    /// When a job started now must be done.
    pub(crate) fn job_deadline(&self) -> Deadline {
        Deadline {
            at: Instant::now().checked_add(Duration::from_secs(self.max_job_seconds)),
            seconds: self.max_job_seconds,
        }
    }

    pub(crate) fn check_input_pixels(&self, width: u32, height: u32) -> Result<(), Error> {
        check_pixels("input is", width, height, self.max_pixels)
    }

    pub(crate) fn check_output_pixels(&self, width: u32, height: u32) -> Result<(), Error> {
        check_pixels(
            "a step would produce",
            width,
            height,
            self.max_output_pixels,
        )
    }
}

/// The moment a job runs out of time (`None`: so far off it cannot be represented).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Option<Instant>,
    seconds: u64,
}

impl Deadline {
    /// No limit: for the engine's single-stage calls and for tests.
    pub(crate) fn none() -> Deadline {
        Deadline {
            at: None,
            seconds: u64::MAX,
        }
    }

    /// Runs `work` with this deadline visible to [`out_of_time`] on this thread.
    pub(crate) fn run_within<T>(&self, work: impl FnOnce() -> T) -> T {
        struct Restore(Option<Instant>);
        impl Drop for Restore {
            fn drop(&mut self) {
                RUNNING_JOB_DEADLINE.set(self.0);
            }
        }
        let _restore = Restore(RUNNING_JOB_DEADLINE.replace(self.at));
        work()
    }

    /// `Limits` once the time is up; `doing` says where the job was stopped.
    pub(crate) fn check(&self, doing: impl FnOnce() -> String) -> Result<(), Error> {
        match self.at {
            Some(at) if Instant::now() >= at => Err(Error::Limits(format!(
                "the job ran longer than {} s (max_job_seconds); stopped {}",
                self.seconds,
                doing()
            ))),
            _ => Ok(()),
        }
    }
}

thread_local! {
    /// The deadline of the job this worker thread runs, for the long operations' row loops.
    static RUNNING_JOB_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// True once the job running on this thread is out of time: long operations stop between
/// rows, leaving a partial frame that the check after the step turns into an error.
pub(crate) fn out_of_time() -> bool {
    RUNNING_JOB_DEADLINE
        .get()
        .is_some_and(|deadline| Instant::now() >= deadline)
}

fn check_pixels(what: &str, width: u32, height: u32, limit: u64) -> Result<(), Error> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limit {
        return Err(Error::Limits(format!(
            "{what} {width}x{height} ({pixels} pixels), the limit is {limit} pixels"
        )));
    }
    Ok(())
}
