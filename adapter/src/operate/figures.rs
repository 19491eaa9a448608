//! One snapshot of what the bot reports about itself, read without touching the network:
//! the source of /metrics, /performance, the health report's numbers and the monitor. Data
//! only; the operator (`operator`) collects it.

use std::time::Duration;

use prism_engine::LatencySummary;

use crate::flow::service::FlowSnapshot;
use crate::operate::alert::Check;
use crate::operate::system::SystemFigures;

pub struct Figures {
    /// The request flow's own figures.
    pub flow: FlowSnapshot,
    /// The requests counted so far.
    pub requests: RequestCounts,
    pub resident_bytes: Option<u64>,
    pub memory_limit_bytes: u64,
    pub guard_active: bool,
    pub system: SystemFigures,
    /// Each monitored check, and whether its alert is raised now.
    pub alerts: Vec<(Check, bool)>,
}

/// The counted requests and their stage latencies (the metrics' events, summed).
#[derive(Debug, Clone)]
pub struct RequestCounts {
    pub uptime: Duration,
    pub accepted: u64,
    pub processed: u64,
    pub cached: u64,
    pub failed: u64,
    pub refused: u64,
    pub rate_limited: u64,
    pub cpu_jobs: u64,
    pub gpu_jobs: u64,
    /// Arrival-to-reply seconds of processed requests, summed, and their number.
    pub processing_seconds_sum: f64,
    pub processing_count: u64,
    /// Each stage's name and its p50/p95/p99.
    pub latencies: Vec<(&'static str, LatencySummary)>,
}

impl RequestCounts {
    /// Requests that have ended, however.
    pub fn ended(&self) -> u64 {
        self.processed + self.cached + self.failed + self.refused + self.rate_limited
    }

    pub fn images_per_second(&self) -> f64 {
        (self.processed + self.cached) as f64 / self.uptime.as_secs_f64().max(1e-3)
    }
}
