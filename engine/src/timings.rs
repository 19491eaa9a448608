//! How long one image spent in each stage: filled in by the engine, summed by the stats.

use std::time::Duration;

use serde::Serialize;

/// Time spent on one image, stage by stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Waiting in the pool's queue (including for memory) before a worker took the job.
    pub queue: Duration,
    pub probe: Duration,
    pub decode: Duration,
    pub ops: Duration,
    pub encode: Duration,
}

impl Timings {
    /// Working time, without the queue wait.
    pub fn work(&self) -> Duration {
        self.probe + self.decode + self.ops + self.encode
    }
}
