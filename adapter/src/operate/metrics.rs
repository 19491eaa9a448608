//! The bot's request counters and stage latencies, and their Prometheus export (all
//! prometheus-client calls are here). Events are counted as they happen; figures that other
//! parts already keep (the engine's stats, the cache's, the recorder's backlog, memory) are
//! read at scrape time from a [`Figures`] snapshot, so there is one source for /metrics,
//! /health and the admin commands.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prism_engine::{BackendUsed, Histogram as Percentiles};
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::flow::events::{Ended, FlowEvents, RequestTimings};
use crate::operate::figures::{Figures, RequestCounts};

// Label enums: each variant is spelled as its label value (prometheus-client's derive).

/// How a request ended (the label of the flow's [`Ended`]).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum Outcome {
    /// Processed by the engine and sent.
    processed,
    /// Served from the cache (or another request's job).
    cached,
    failed,
    /// Turned away before any work: too large, queue full, shutting down.
    refused,
    rate_limited,
}

/// A stage of a request, for latency histograms.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Stage {
    /// Waiting for a MAX_CONCURRENT_REQUESTS slot.
    slot_wait,
    download,
    /// Waiting for an engine worker.
    queue,
    decode,
    ops,
    encode,
    upload,
    /// From the update's arrival to the reply, processed requests.
    total,
    /// The same for requests served from the cache.
    cache_hit,
}

impl Stage {
    /// The label value, for the reports.
    pub fn name(self) -> &'static str {
        match self {
            Stage::slot_wait => "slot_wait",
            Stage::download => "download",
            Stage::queue => "queue",
            Stage::decode => "decode",
            Stage::ops => "ops",
            Stage::encode => "encode",
            Stage::upload => "upload",
            Stage::total => "total",
            Stage::cache_hit => "cache_hit",
        }
    }

    pub const ALL: [Stage; 9] = [
        Stage::slot_wait,
        Stage::download,
        Stage::queue,
        Stage::decode,
        Stage::ops,
        Stage::encode,
        Stage::upload,
        Stage::total,
        Stage::cache_hit,
    ];
}

/// Why a cleanup ran.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue, serde::Serialize)]
#[allow(non_camel_case_types)]
pub enum CleanupTrigger {
    interval,
    endpoint,
    memory_guard,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum Backend {
    cpu,
    gpu,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: Outcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: Stage,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabel {
    backend: Backend,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabel {
    trigger: CleanupTrigger,
}

fn duration_histogram() -> Histogram {
    // 1 ms to 65 s, doubling: covers a cache hit and a 12 MP photo on a slow link.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

pub struct Metrics {
    started: Instant,
    enabled: bool,
    accepted: AtomicU64,
    outcomes: Family<OutcomeLabel, Counter>,
    durations: Family<StageLabel, Histogram, fn() -> Histogram>,
    backend_jobs: Family<BackendLabel, Counter>,
    cleanups: Family<TriggerLabel, Counter>,
    guard_engagements: Counter,
    health_checks: Counter,
    /// Arrival-to-reply time of processed requests, summed, and their number (the monitor's
    /// mean processing time).
    processing_micros: AtomicU64,
    processing_count: AtomicU64,
    /// The same latencies, for the p50/p95/p99 of /performance.
    percentiles: [Percentiles; Stage::ALL.len()],
    registry: Registry,
}

impl Metrics {
    pub fn new(enabled: bool) -> Metrics {
        let outcomes = Family::<OutcomeLabel, Counter>::default();
        let durations = Family::<StageLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        let backend_jobs = Family::<BackendLabel, Counter>::default();
        let cleanups = Family::<TriggerLabel, Counter>::default();
        let guard_engagements = Counter::default();
        let health_checks = Counter::default();
        let mut registry = Registry::with_prefix("prism");
        registry.register("requests", "Requests by how they ended", outcomes.clone());
        registry.register(
            "request_duration_seconds",
            "Time spent in each stage of a request",
            durations.clone(),
        );
        registry.register(
            "backend_jobs",
            "Engine jobs by the backend that ran the operations",
            backend_jobs.clone(),
        );
        registry.register(
            "cleanups",
            "Cleanups run, by what triggered them",
            cleanups.clone(),
        );
        registry.register(
            "memory_guard_engagements",
            "Times resident memory went above MEMORY_LIMIT_MB and new work was held back",
            guard_engagements.clone(),
        );
        registry.register(
            "health_checks",
            "Health checks run (every HEALTH_CHECK_INTERVAL), their alerts sent",
            health_checks.clone(),
        );
        Metrics {
            started: Instant::now(),
            enabled,
            accepted: AtomicU64::new(0),
            outcomes,
            durations,
            backend_jobs,
            cleanups,
            guard_engagements,
            health_checks,
            processing_micros: AtomicU64::new(0),
            processing_count: AtomicU64::new(0),
            percentiles: std::array::from_fn(|_| Percentiles::new()),
            registry,
        }
    }

    /// Latency tracking (ENABLE_PERFORMANCE_MONITORING); counters always count.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn cleanup_ran(&self, trigger: CleanupTrigger) {
        self.cleanups.get_or_create(&TriggerLabel { trigger }).inc();
    }

    pub fn guard_engaged(&self) {
        self.guard_engagements.inc();
    }

    pub fn health_checked(&self) {
        self.health_checks.inc();
    }

    fn observe(&self, stage: Stage, value: Duration) {
        self.durations
            .get_or_create(&StageLabel { stage })
            .observe(value.as_secs_f64());
        self.percentiles[stage as usize].record(value);
    }

    pub fn snapshot(&self) -> RequestCounts {
        let count = |outcome| {
            self.outcomes
                .get(&OutcomeLabel { outcome })
                .map_or(0, |counter| counter.get())
        };
        let jobs = |backend| {
            self.backend_jobs
                .get(&BackendLabel { backend })
                .map_or(0, |counter| counter.get())
        };
        RequestCounts {
            uptime: self.uptime(),
            cpu_jobs: jobs(Backend::cpu),
            gpu_jobs: jobs(Backend::gpu),
            accepted: self.accepted.load(Ordering::Relaxed),
            processed: count(Outcome::processed),
            cached: count(Outcome::cached),
            failed: count(Outcome::failed),
            refused: count(Outcome::refused),
            rate_limited: count(Outcome::rate_limited),
            processing_seconds_sum: self.processing_micros.load(Ordering::Relaxed) as f64 / 1e6,
            processing_count: self.processing_count.load(Ordering::Relaxed),
            latencies: Stage::ALL
                .iter()
                .map(|&stage| (stage.name(), self.percentiles[stage as usize].summary()))
                .collect(),
        }
    }

    /// The Prometheus text exposition: this registry's events, then `figures` read now.
    pub fn render(&self, figures: &Figures) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        encode_registry(&mut text, &self.registry)?;
        encode_registry(&mut text, &live_registry(figures))?;
        encode_eof(&mut text)?;
        Ok(text)
    }
}

/// The flow's events, counted as they happen.
impl FlowEvents for Metrics {
    fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    fn ended(&self, how: Ended) {
        let outcome = match how {
            Ended::Processed => Outcome::processed,
            Ended::Cached => Outcome::cached,
            Ended::Failed => Outcome::failed,
            Ended::Refused => Outcome::refused,
            Ended::RateLimited => Outcome::rate_limited,
        };
        self.outcomes.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// Counts a processed request's time; records stage latencies when monitoring is on.
    fn answered(&self, timings: &RequestTimings, total: Duration, cache_hit: bool) {
        if !cache_hit {
            let micros = u64::try_from(total.as_micros()).unwrap_or(u64::MAX);
            self.processing_micros.fetch_add(micros, Ordering::Relaxed);
            self.processing_count.fetch_add(1, Ordering::Relaxed);
        }
        if !self.enabled {
            return;
        }
        let engine = timings.engine_stages;
        let stages = [
            (Stage::slot_wait, timings.admission_wait),
            (Stage::download, timings.download),
            (Stage::queue, engine.map(|e| e.queue)),
            (Stage::decode, engine.map(|e| e.probe + e.decode)),
            (Stage::ops, engine.map(|e| e.ops)),
            (Stage::encode, engine.map(|e| e.encode)),
            (Stage::upload, timings.upload),
            (
                if cache_hit {
                    Stage::cache_hit
                } else {
                    Stage::total
                },
                Some(total),
            ),
        ];
        for (stage, value) in stages {
            if let Some(value) = value {
                self.observe(stage, value);
            }
        }
    }

    fn backend_job(&self, used: BackendUsed) {
        let backend = match used {
            BackendUsed::Cpu => Backend::cpu,
            BackendUsed::Gpu => Backend::gpu,
        };
        self.backend_jobs
            .get_or_create(&BackendLabel { backend })
            .inc();
    }
}

type Labels = Vec<(&'static str, &'static str)>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn gauge(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let gauge = FloatGauge::default();
    gauge.set(value);
    registry.register(name, help, gauge);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let counter = Counter::<u64>::default();
    counter.inc_by(value);
    registry.register(name, help, counter);
}

/// A gauge family: one series per label set.
fn gauges(registry: &mut Registry, name: &str, help: &str, series: &[(Labels, f64)]) {
    let family = Family::<Labels, FloatGauge>::default();
    for (labels, value) in series {
        family.get_or_create(labels).set(*value);
    }
    registry.register(name, help, family);
}

/// A counter family: one series per label set.
fn counters(registry: &mut Registry, name: &str, help: &str, series: &[(Labels, u64)]) {
    let family = Family::<Labels, Counter>::default();
    for (labels, value) in series {
        family.get_or_create(labels).inc_by(*value);
    }
    registry.register(name, help, family);
}

/// Figures read at scrape time, as fresh metrics (they are not events this module counts).
fn live_registry(f: &Figures) -> Registry {
    let mut r = Registry::with_prefix("prism");
    gauge(
        &mut r,
        "uptime_seconds",
        "Seconds since start",
        f.requests.uptime.as_secs_f64(),
    );
    let inbox = &f.flow.inbox;
    gauge(
        &mut r,
        "intake_backlog",
        "Accepted updates not yet answered (the deployment's stream and this instance's local queue)",
        inbox.backlog as f64,
    );
    gauge(
        &mut r,
        "intake_oldest_seconds",
        "Age of the oldest accepted update not yet answered",
        inbox.oldest.map_or(0.0, |age| age.as_secs_f64()),
    );
    counter(
        &mut r,
        "intake_reclaimed",
        "Accepted updates of a silent instance taken over by this one",
        inbox.reclaimed,
    );
    counter(
        &mut r,
        "intake_redelivered",
        "Accepted updates handed out again (taken over, or left by this instance's previous run)",
        inbox.redelivered,
    );
    gauge(
        &mut r,
        "requests_in_progress",
        "Requests holding a slot (downloading, processing or uploading)",
        f.flow.in_progress as f64,
    );
    gauges(
        &mut r,
        "queue_depth",
        "Requests waiting: for a slot (admission) or for an engine worker (engine)",
        &[
            (
                vec![("queue", "admission")],
                f.flow.admission_waiting as f64,
            ),
            (vec![("queue", "engine")], f.flow.engine.queued as f64),
        ],
    );
    gauge(
        &mut r,
        "workers",
        "Engine worker threads",
        f.flow.workers as f64,
    );
    gauge(
        &mut r,
        "worker_utilization",
        "Share of engine workers running a job",
        f.flow.engine.running as f64 / f.flow.workers.max(1) as f64,
    );
    let cache = &f.flow.cache;
    // Every lookup tries this process first; its misses go on to Redis when configured.
    let mut lookups = vec![
        (
            vec![("layer", "memory"), ("result", "hit")],
            // Read apart from `hits`, so a scrape may see one more shared hit than hits.
            cache.hits.saturating_sub(cache.shared_hits),
        ),
        (
            vec![("layer", "memory"), ("result", "miss")],
            cache.shared_hits + cache.misses,
        ),
    ];
    if f.flow.cache_shared {
        lookups.push((
            vec![("layer", "redis"), ("result", "hit")],
            cache.shared_hits,
        ));
        lookups.push((vec![("layer", "redis"), ("result", "miss")], cache.misses));
    }
    counters(
        &mut r,
        "cache_requests",
        "Result cache lookups by layer (memory, then Redis) and result",
        &lookups,
    );
    gauge(
        &mut r,
        "cache_entries",
        "Results cached in process",
        cache.entries as f64,
    );
    gauge(
        &mut r,
        "cache_bytes",
        "Bytes of results cached in process",
        cache.bytes as f64,
    );
    counter(
        &mut r,
        "rate_limited",
        "Requests refused by the per-user rate limit",
        f.requests.rate_limited,
    );
    counter(
        &mut r,
        "gpu_fallbacks",
        "Jobs rerun on the CPU after a GPU fault",
        f.flow.gpu_fallbacks,
    );
    counter(
        &mut r,
        "telegram_retries",
        "Bot API calls repeated after Telegram asked to retry later",
        f.flow.telegram_retries,
    );
    gauges(
        &mut r,
        "store_backlog",
        "Records not yet in the database: queued in memory, or spilled to disk",
        &[
            (vec![("where", "memory")], f.flow.records.queued as f64),
            (vec![("where", "disk")], f.flow.records.spilled as f64),
        ],
    );
    counter(
        &mut r,
        "store_records_written",
        "Records written to the database",
        f.flow.records.written,
    );
    let records = &f.flow.records;
    let reason = |name| vec![("reason", name)];
    counters(
        &mut r,
        "store_records_left_out",
        "Records not stored one by one: refusals only counted near RECORD_SPILL_MAX_MB, \
         records dropped at it, records the database refused for good (in the dead-letter \
         file), records lost when even the spill file failed",
        &[
            (reason("refusal_counted"), records.refusals_counted),
            (reason("spill_full"), records.dropped),
            (reason("dead_letter"), records.dead_lettered),
            (reason("lost"), records.lost),
        ],
    );
    counter(
        &mut r,
        "telegram_notices_dropped",
        "Notices (help, refusals, keyboards) dropped because their chat had a couple waiting",
        f.flow.notices_dropped,
    );
    // Figures the system could not give are left out rather than exported as 0.
    if let Some(resident) = f.resident_bytes {
        gauge(
            &mut r,
            "resident_memory_bytes",
            "Resident memory of the process",
            resident as f64,
        );
    }
    gauge(
        &mut r,
        "memory_limit_bytes",
        "MEMORY_LIMIT_MB in bytes",
        f.memory_limit_bytes as f64,
    );
    gauge(
        &mut r,
        "memory_guard_active",
        "1 while resident memory is over the limit and new work is held back",
        f64::from(u8::from(f.guard_active)),
    );
    let e = &f.flow.engine;
    let result = |name| vec![("result", name)];
    counters(
        &mut r,
        "engine_jobs",
        "Engine jobs by result",
        &[
            (result("completed"), e.completed),
            (result("failed"), e.failed),
            (result("refused_overloaded"), e.refused_overloaded),
            (result("refused_too_large"), e.refused_too_large),
            (result("refused_shutting_down"), e.refused_shutting_down),
            (result("cancelled"), e.cancelled),
            (result("panicked"), e.panicked),
        ],
    );
    gauge(
        &mut r,
        "engine_reserved_bytes",
        "Memory reserved by engine jobs in flight",
        e.reserved_bytes as f64,
    );
    gauge(
        &mut r,
        "engine_memory_budget_bytes",
        "The engine's memory budget",
        e.memory_budget_bytes as f64,
    );
    counter(
        &mut r,
        "engine_input_pixels",
        "Input pixels of the jobs the engine completed",
        e.input_pixels,
    );
    if let Some(seconds) = f.system.cpu_seconds {
        let cpu = Counter::<f64, AtomicU64>::default();
        cpu.inc_by(seconds);
        r.register(
            "process_cpu_seconds",
            "CPU time used by the process (user and system)",
            cpu,
        );
    }
    gauge(
        &mut r,
        "cpu_cores",
        "CPU cores available to the process",
        f.system.cpu_cores as f64,
    );
    if let Some(ratio) = f.system.disk_used_ratio {
        gauge(
            &mut r,
            "disk_usage_ratio",
            "Used share of the disk holding the working directory",
            ratio,
        );
    }
    let alerts: Vec<(Labels, f64)> = f
        .alerts
        .iter()
        .map(|&(check, active)| (vec![("check", check.name())], f64::from(u8::from(active))))
        .collect();
    gauges(
        &mut r,
        "alert_active",
        "1 while the bot's own monitor has raised this alert",
        &alerts,
    );
    r
}
