//! The monitoring loop (ENABLE_PERFORMANCE_MONITORING, every HEALTH_CHECK_INTERVAL):
//! samples CPU, memory, disk, processing time, error rate and cache hit rate, hands each to
//! its alert (`alert`), and logs and tells the admins in Telegram once per episode, with a
//! message when it clears.

use std::sync::Arc;
use std::time::{Duration, Instant};

use teloxide::types::ChatId;
use tokio_util::sync::CancellationToken;

use crate::operate::alert::{Check, Level, Notice};
use crate::operate::figures::Figures;
use crate::operate::health;
use crate::operate::operator::Operator;
use crate::telegram::outbound::Weight;

/// A cache hit rate is judged over at least this many lookups.
const MIN_CACHE_LOOKUPS: u64 = 50;

/// Turns cumulative figures into per-interval values.
#[derive(Default)]
struct Sampler {
    last: Option<Previous>,
    /// Cache lookups and hits not yet judged (fewer than MIN_CACHE_LOOKUPS so far).
    cache_lookups: u64,
    cache_hits: u64,
}

struct Previous {
    at: Instant,
    cpu_seconds: Option<f64>,
    ended: u64,
    failed: u64,
    processing_sum: f64,
    processing_count: u64,
    lookups: u64,
    hits: u64,
    records_left_out: u64,
}

impl Sampler {
    fn sample(&mut self, f: &Figures, now: Instant) -> Vec<(Check, Option<f64>)> {
        let lookups = f.flow.cache.hits + f.flow.cache.misses;
        let current = Previous {
            at: now,
            cpu_seconds: f.system.cpu_seconds,
            ended: f.requests.ended(),
            failed: f.requests.failed,
            processing_sum: f.requests.processing_seconds_sum,
            processing_count: f.requests.processing_count,
            lookups,
            hits: f.flow.cache.hits,
            records_left_out: left_out(f),
        };
        let memory = f
            .resident_bytes
            .map(|resident| resident as f64 / f.memory_limit_bytes.max(1) as f64 * 100.0);
        let disk = f.system.disk_used_ratio.map(|ratio| ratio * 100.0);
        let Some(last) = self.last.replace(current) else {
            return vec![(Check::Memory, memory), (Check::Disk, disk)];
        };
        let elapsed = now.duration_since(last.at).as_secs_f64().max(1e-3);
        let cpu = match (f.system.cpu_seconds, last.cpu_seconds) {
            (Some(now), Some(before)) => {
                Some((now - before) / (elapsed * f.system.cpu_cores.max(1) as f64) * 100.0)
            }
            _ => None,
        };
        // No requests since the last check judge nothing: an alert raised by a slow or
        // failing burst stays raised until requests show it has passed.
        let processed = f.requests.processing_count - last.processing_count;
        let processing = (processed > 0)
            .then(|| (f.requests.processing_seconds_sum - last.processing_sum) / processed as f64);
        let ended = f.requests.ended() - last.ended;
        let errors =
            (ended > 0).then(|| (f.requests.failed - last.failed) as f64 / ended as f64 * 100.0);
        self.cache_lookups += lookups - last.lookups;
        self.cache_hits += f.flow.cache.hits - last.hits;
        let cache = (self.cache_lookups >= MIN_CACHE_LOOKUPS).then(|| {
            let rate = self.cache_hits as f64 / self.cache_lookups as f64 * 100.0;
            (self.cache_lookups, self.cache_hits) = (0, 0);
            rate
        });
        vec![
            (Check::Cpu, cpu),
            (Check::Memory, memory),
            (Check::Disk, disk),
            (Check::ProcessingTime, processing),
            (Check::ErrorRate, errors),
            (Check::CacheHitRate, cache),
            (
                Check::IntakeAge,
                Some(f.flow.inbox.oldest.map_or(0.0, |age| age.as_secs_f64())),
            ),
            (
                Check::RecordsLeftOut,
                Some(left_out(f).saturating_sub(last.records_left_out) as f64),
            ),
        ]
    }
}

/// Records left out of the store since start.
fn left_out(f: &Figures) -> u64 {
    let records = &f.flow.records;
    records.refusals_counted + records.dropped + records.dead_lettered + records.lost
}

/// Runs the checks every HEALTH_CHECK_INTERVAL until `stop`: alerts when monitoring is on,
/// and a log line whenever the health report is not ok.
pub fn spawn(operator: Arc<Operator>, stop: CancellationToken) {
    let interval = operator.config().health_check_interval;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sampler = Sampler::default();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            if operator.config().performance_monitoring {
                let figures = operator.figures();
                let values = sampler.sample(&figures, Instant::now());
                tracing::debug!(
                    ?values,
                    in_progress = figures.flow.in_progress,
                    "monitoring sample"
                );
                for (check, value, notice) in operator.alerts().update(&values) {
                    announce(&operator, check, value, notice).await;
                }
            }
            let report = health::report(&operator).await;
            if report.status != health::Status::Ok {
                tracing::warn!(report = %report.text(), "health check: not ok");
            }
            operator.metrics().health_checked();
        }
    });
}

async fn announce(operator: &Operator, check: Check, value: f64, notice: Notice) {
    let instance = &operator.config().instance_id;
    let text = match notice {
        Notice::Raised(level) => {
            let threshold = operator.alerts().threshold(check, level);
            let word = if level == Level::Critical {
                "CRITICAL"
            } else {
                "warning"
            };
            tracing::warn!(check = check.name(), value, threshold, "alert: {word}");
            format!(
                "⚠️ {word} on {instance}: {} (threshold {threshold})",
                check.describe(value)
            )
        }
        Notice::Cleared => {
            tracing::info!(check = check.name(), value, "alert cleared");
            format!("✅ recovered on {instance}: {}", check.describe(value))
        }
    };
    for admin in &operator.config().admins {
        let chat = ChatId(admin.0 as i64);
        // Bounded: an unreachable Telegram must not stall the next check.
        let sent = tokio::time::timeout(
            Duration::from_secs(30),
            operator
                .service()
                .telegram()
                .reply(chat, None, &text, Weight::Answer),
        )
        .await;
        if !matches!(sent, Ok(Ok(_))) {
            tracing::warn!(admin = admin.0, "could not send an alert to an admin");
        }
    }
}
