//! Engine settings and their machine-sized defaults.

use serde::{Deserialize, Serialize};

use crate::backend::BackendChoice;
use crate::backend::gpu::GpuConfig;
use crate::error::Error;
use crate::limits::Limits;

/// Engine settings. `EngineConfig::default()` sizes itself for the machine it runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    pub limits: Limits,
    /// Worker threads (default: the number of cores).
    pub threads: usize,
    /// Jobs running at once (default: `threads`; more than `threads` has no effect).
    pub max_in_flight: usize,
    /// Jobs waiting beyond those running; when full, `submit` fails with `Overloaded`
    /// (default: 16 per thread).
    pub max_queue: usize,
    /// Estimated working memory all running jobs may reserve together (default: a quarter
    /// of physical memory, at least 512 MiB).
    pub memory_budget_bytes: usize,
    /// Which backend runs the pixel operations (default `auto`: the GPU where it pays).
    pub backend: BackendChoice,
    /// Batching and failure handling of the GPU backend.
    pub gpu: GpuConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        EngineConfig {
            limits: Limits::default(),
            threads,
            max_in_flight: threads,
            max_queue: 16 * threads,
            memory_budget_bytes: default_memory_budget(),
            backend: BackendChoice::default(),
            gpu: GpuConfig::default(),
        }
    }
}

impl EngineConfig {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.limits.max_steps == 0 || self.limits.max_job_seconds == 0 {
            return Err(Error::Config(
                "limits.max_steps and limits.max_job_seconds must be at least 1".into(),
            ));
        }
        if self.threads == 0 || self.max_in_flight == 0 {
            return Err(Error::Config(
                "threads and max_in_flight must be at least 1".into(),
            ));
        }
        let gpu = &self.gpu;
        if gpu.max_batch_frames == 0 || gpu.max_batch_bytes == 0 || gpu.batches_in_flight == 0 {
            return Err(Error::Config(
                "gpu.max_batch_frames, gpu.max_batch_bytes and gpu.batches_in_flight must be at least 1"
                    .into(),
            ));
        }
        if self.memory_budget_bytes == 0 {
            return Err(Error::Config("memory_budget_bytes must be above 0".into()));
        }
        Ok(())
    }
}

/// A quarter of MemTotal from /proc/meminfo; 2 GiB where that cannot be read.
fn default_memory_budget() -> usize {
    const FLOOR: usize = 512 << 20;
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|line| line.starts_with("MemTotal:"))?;
            let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
            kib.checked_mul(1024)
        });
    total.map_or(2 << 30, |bytes| (bytes / 4).max(FLOOR))
}
