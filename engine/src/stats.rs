//! Counters and latency histograms for monitoring. Everything is an atomic, so reading a
//! snapshot is cheap and never blocks the workers.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::timings::Timings;

/// 2^4 = 16 buckets per doubling of the latency: percentiles are bucket upper bounds, at
/// most 6.25 % above the true value.
const SUB_BITS: u32 = 4;
const SUB_BUCKETS: u32 = 1 << SUB_BITS;
/// Enough doublings of a microsecond for over an hour.
const BUCKETS: usize = (33 * SUB_BUCKETS) as usize;

/// A lock-free log-scale histogram of durations in microseconds; the bot reuses it for its
/// own stage latencies.
pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn bucket(micros: u64) -> usize {
        if micros < 2 {
            return micros as usize;
        }
        let octave = 63 - micros.leading_zeros();
        let fraction = ((u128::from(micros) << SUB_BITS) >> octave) as u32 & (SUB_BUCKETS - 1);
        ((octave * SUB_BUCKETS + fraction) as usize).min(BUCKETS - 1)
    }

    /// The largest duration a bucket holds.
    fn upper_bound(bucket: usize) -> Duration {
        let bucket = bucket as u32;
        if bucket < 2 {
            return Duration::from_micros(u64::from(bucket));
        }
        let (octave, fraction) = (bucket / SUB_BUCKETS, bucket % SUB_BUCKETS);
        let low = (1u64 << octave) + (u64::from(fraction) << octave) / u64::from(SUB_BUCKETS);
        let width = (1u64 << octave) / u64::from(SUB_BUCKETS);
        Duration::from_micros(low + width.max(1) - 1)
    }

    pub fn record(&self, duration: Duration) {
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.counts[Histogram::bucket(micros)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn summary(&self) -> LatencySummary {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let percentile = |p: f64| {
            if total == 0 {
                return Duration::ZERO;
            }
            let rank = ((p * total as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (bucket, &count) in counts.iter().enumerate() {
                seen += count;
                if seen >= rank {
                    return Histogram::upper_bound(bucket);
                }
            }
            Histogram::upper_bound(BUCKETS - 1)
        };
        LatencySummary {
            count: total,
            p50: percentile(0.50),
            p95: percentile(0.95),
            p99: percentile(0.99),
        }
    }
}

/// Percentiles of one stage's latency (bucket upper bounds, at most 6.25 % high).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
}

/// Why a submission was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Overloaded,
    TooLarge,
    ShuttingDown,
}

/// A point-in-time view of the engine, for dashboards and the bot's /performance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsSnapshot {
    pub queued: usize,
    pub running: usize,
    pub completed: u64,
    pub failed: u64,
    pub refused_overloaded: u64,
    pub refused_too_large: u64,
    pub refused_shutting_down: u64,
    /// Jobs whose handle was dropped before they started.
    pub cancelled: u64,
    /// Jobs whose work panicked (also counted in `failed`).
    pub panicked: u64,
    pub reserved_bytes: usize,
    pub memory_budget_bytes: usize,
    pub queue_wait: LatencySummary,
    pub decode: LatencySummary,
    pub ops: LatencySummary,
    pub encode: LatencySummary,
    /// Input megapixels of completed jobs per second since the engine started.
    pub megapixels_per_second: f64,
    /// Input pixels of completed jobs since the engine started.
    pub input_pixels: u64,
    pub uptime: Duration,
}

pub(crate) struct Stats {
    started: Instant,
    memory_budget: usize,
    queued: AtomicUsize,
    running: AtomicUsize,
    reserved: AtomicUsize,
    completed: AtomicU64,
    failed: AtomicU64,
    refused_overloaded: AtomicU64,
    refused_too_large: AtomicU64,
    refused_shutting_down: AtomicU64,
    cancelled: AtomicU64,
    panicked: AtomicU64,
    pixels: AtomicU64,
    queue_wait: Histogram,
    decode: Histogram,
    ops: Histogram,
    encode: Histogram,
}

impl Stats {
    pub fn new(memory_budget: usize) -> Stats {
        Stats {
            started: Instant::now(),
            memory_budget,
            queued: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            reserved: AtomicUsize::new(0),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            refused_overloaded: AtomicU64::new(0),
            refused_too_large: AtomicU64::new(0),
            refused_shutting_down: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            pixels: AtomicU64::new(0),
            queue_wait: Histogram::new(),
            decode: Histogram::new(),
            ops: Histogram::new(),
            encode: Histogram::new(),
        }
    }

    pub fn set_load(&self, queued: usize, running: usize, reserved: usize) {
        self.queued.store(queued, Ordering::Relaxed);
        self.running.store(running, Ordering::Relaxed);
        self.reserved.store(reserved, Ordering::Relaxed);
    }

    pub fn refused(&self, why: Refusal) {
        let counter = match why {
            Refusal::Overloaded => &self.refused_overloaded,
            Refusal::TooLarge => &self.refused_too_large,
            Refusal::ShuttingDown => &self.refused_shutting_down,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn cancelled(&self) {
        self.cancelled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn panicked(&self) {
        self.panicked.fetch_add(1, Ordering::Relaxed);
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn succeeded(&self, timings: &Timings, input_pixels: u64) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        self.pixels.fetch_add(input_pixels, Ordering::Relaxed);
        self.queue_wait.record(timings.queue);
        self.decode.record(timings.decode);
        self.ops.record(timings.ops);
        self.encode.record(timings.encode);
    }

    /// A failed job; `queue_wait` is `None` when it failed at admission, before queueing.
    pub fn failed(&self, queue_wait: Option<Duration>) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Some(waited) = queue_wait {
            self.queue_wait.record(waited);
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let uptime = self.started.elapsed();
        let input_pixels = self.pixels.load(Ordering::Relaxed);
        let megapixels = input_pixels as f64 / 1e6;
        StatsSnapshot {
            queued: self.queued.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            refused_overloaded: self.refused_overloaded.load(Ordering::Relaxed),
            refused_too_large: self.refused_too_large.load(Ordering::Relaxed),
            refused_shutting_down: self.refused_shutting_down.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
            panicked: self.panicked.load(Ordering::Relaxed),
            reserved_bytes: self.reserved.load(Ordering::Relaxed),
            memory_budget_bytes: self.memory_budget,
            queue_wait: self.queue_wait.summary(),
            decode: self.decode.summary(),
            ops: self.ops.summary(),
            encode: self.encode.summary(),
            megapixels_per_second: megapixels / uptime.as_secs_f64().max(1e-9),
            input_pixels,
            uptime,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_bounds_contain_their_values() {
        let mut last = 0;
        for micros in [
            0u64,
            1,
            2,
            3,
            5,
            8,
            100,
            1000,
            1023,
            1024,
            1500,
            1_000_000,
            4_000_000_000,
        ] {
            let bucket = Histogram::bucket(micros);
            assert!(bucket >= last, "{micros}");
            last = bucket;
            assert!(
                Histogram::upper_bound(bucket) >= Duration::from_micros(micros.min(1 << 32)),
                "{micros}"
            );
        }
    }

    #[test]
    fn percentiles_within_bucket_precision() {
        let histogram = Histogram::new();
        for ms in 1..=100u64 {
            histogram.record(Duration::from_millis(ms));
        }
        let summary = histogram.summary();
        assert_eq!(summary.count, 100);
        let near = |got: Duration, want_ms: f64| {
            let got = got.as_secs_f64() * 1e3;
            (got - want_ms).abs() / want_ms < 0.07
        };
        assert!(near(summary.p50, 50.0), "{:?}", summary.p50);
        assert!(near(summary.p95, 95.0), "{:?}", summary.p95);
        assert!(near(summary.p99, 99.0), "{:?}", summary.p99);
        assert_eq!(Histogram::new().summary().p99, Duration::ZERO);
    }
}
