//! What the flow tells whoever counts it: a request accepted, how it ended, its stage
//! timings, which backend ran it. The flow calls this seam and never knows who listens (the
//! operator side's metrics implement it), so the flow imports nothing of the operator side.

use std::time::Duration;

use prism_engine::BackendUsed;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Processed by the engine and sent.
    Processed,
    /// Served from the cache (or another request's job).
    Cached,
    Failed,
    /// Turned away before any work: too large, queue full, shutting down.
    Refused,
    RateLimited,
}

/// Stage timings of one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestTimings {
    pub admission_wait: Option<Duration>,
    pub download: Option<Duration>,
    /// The engine job as the bot saw it (queue and work).
    pub engine: Option<Duration>,
    /// The engine's own breakdown of that job.
    pub engine_stages: Option<prism_engine::Timings>,
    pub upload: Option<Duration>,
    /// Which engine backend ran the operations (none for cache hits and refusals).
    pub backend: Option<BackendUsed>,
}

/// Receives the flow's events as they happen; calls must be cheap and never block.
pub trait FlowEvents: Send + Sync {
    fn accepted(&self);
    fn ended(&self, how: Ended);
    /// A request answered with a result: its stage latencies and arrival-to-reply time.
    fn answered(&self, timings: &RequestTimings, total: Duration, cache_hit: bool);
    fn backend_job(&self, backend: BackendUsed);
}
