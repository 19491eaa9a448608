//! The bot's own counters and stage latencies (the engine keeps its own), for /performance.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prism_engine::{Histogram, LatencySummary};

pub struct Metrics {
    started: Instant,
    enabled: bool,
    pub requests: AtomicU64,
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    pub refused: AtomicU64,
    pub cpu_jobs: AtomicU64,
    pub gpu_jobs: AtomicU64,
    pub admission_wait: Histogram,
    pub download: Histogram,
    pub engine: Histogram,
    pub upload: Histogram,
    /// From the update's arrival to the reply being sent, processed requests.
    pub total: Histogram,
    /// The same for cache hits.
    pub total_cache_hit: Histogram,
}

/// Stage timings of one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestTimings {
    pub admission_wait: Option<Duration>,
    pub download: Option<Duration>,
    pub engine: Option<Duration>,
    pub upload: Option<Duration>,
    /// Which engine backend ran the operations (none for cache hits and refusals).
    pub backend: Option<prism_engine::BackendUsed>,
}

impl Metrics {
    pub fn new(enabled: bool) -> Metrics {
        Metrics {
            started: Instant::now(),
            enabled,
            requests: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            cpu_jobs: AtomicU64::new(0),
            gpu_jobs: AtomicU64::new(0),
            admission_wait: Histogram::new(),
            download: Histogram::new(),
            engine: Histogram::new(),
            upload: Histogram::new(),
            total: Histogram::new(),
            total_cache_hit: Histogram::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a finished request's stage latencies (when monitoring is on).
    pub fn record(&self, timings: &RequestTimings, total: Duration, cache_hit: bool) {
        if !self.enabled {
            return;
        }
        let stages = [
            (&self.admission_wait, timings.admission_wait),
            (&self.download, timings.download),
            (&self.engine, timings.engine),
            (&self.upload, timings.upload),
        ];
        for (histogram, value) in stages {
            if let Some(value) = value {
                histogram.record(value);
            }
        }
        if cache_hit {
            self.total_cache_hit.record(total);
        } else {
            self.total.record(total);
        }
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let uptime = self.started.elapsed();
        let completed = self.completed.load(Ordering::Relaxed);
        MetricsSnapshot {
            uptime,
            requests: self.requests.load(Ordering::Relaxed),
            completed,
            failed: self.failed.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            cpu_jobs: self.cpu_jobs.load(Ordering::Relaxed),
            gpu_jobs: self.gpu_jobs.load(Ordering::Relaxed),
            images_per_second: completed as f64 / uptime.as_secs_f64().max(1e-3),
            admission_wait: self.admission_wait.summary(),
            download: self.download.summary(),
            engine: self.engine.summary(),
            upload: self.upload.summary(),
            total: self.total.summary(),
            total_cache_hit: self.total_cache_hit.summary(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct MetricsSnapshot {
    pub uptime: Duration,
    pub requests: u64,
    pub completed: u64,
    pub failed: u64,
    pub refused: u64,
    pub cpu_jobs: u64,
    pub gpu_jobs: u64,
    pub images_per_second: f64,
    pub admission_wait: LatencySummary,
    pub download: LatencySummary,
    pub engine: LatencySummary,
    pub upload: LatencySummary,
    pub total: LatencySummary,
    pub total_cache_hit: LatencySummary,
}

/// Resident memory of this process (Linux; `None` elsewhere).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
