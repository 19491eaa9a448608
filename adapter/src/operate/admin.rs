//! The admin commands' reports: /performance and /admin_stats (/health is `health`).

use std::fmt::Write;
use std::time::Duration;

use prism_engine::LatencySummary;

use crate::flow::service::{Service, human_duration, unix_millis};
use crate::operate::figures::Figures;

/// The /performance text, from the same figures as /metrics.
pub fn performance(service: &Service) -> String {
    let f = Figures::collect(service);
    let r = &f.requests;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Uptime {}; requests {} (done {}, failed {}, refused {}, rate limited {}); {} of the \
         done from the cache; {:.2} images/s",
        human_duration(r.uptime),
        r.accepted,
        r.processed + r.cached,
        r.failed,
        r.refused,
        r.rate_limited,
        r.cached,
        r.images_per_second()
    );
    if !service.metrics.enabled() {
        text.push_str("Latency tracking is off (ENABLE_PERFORMANCE_MONITORING=false).\n");
    }
    text.push_str("Latency p50 / p95 / p99:\n");
    for (stage, summary) in &r.latencies {
        let _ = writeln!(text, "• {stage:?}: {}", percentiles(summary));
    }
    let _ = writeln!(
        text,
        "Queue: {} in progress, {} waiting (engine: {} of {} workers busy, {} queued); {} chats \
         awaiting replies; rate limit tracks {} users",
        f.in_progress,
        f.admission_waiting,
        f.engine.running,
        f.workers,
        f.engine.queued,
        service.order.pending_chats(),
        service.limits.tracked_users()
    );
    let c = &f.cache;
    let _ = writeln!(
        text,
        "Cache: {:.0}% hits ({} hits, {} of them from Redis, {} misses), {} entries, {} MiB",
        c.hit_rate() * 100.0,
        c.hits,
        c.shared_hits,
        c.misses,
        c.entries,
        c.bytes >> 20
    );
    let rss = f
        .resident_bytes
        .map_or("unknown".to_string(), |b| format!("{} MiB", b >> 20));
    let _ = writeln!(
        text,
        "Memory: resident {rss} of {} MiB limit{}; engine reserved {} of {} MiB",
        f.memory_limit_bytes >> 20,
        if f.guard_active {
            " (over it: new work held back)"
        } else {
            ""
        },
        f.engine.reserved_bytes >> 20,
        f.engine.memory_budget_bytes >> 20
    );
    let _ = writeln!(
        text,
        "Records: {} written, {} queued, {} spilled to disk{}",
        f.records.written,
        f.records.queued,
        f.records.spilled,
        if f.records.failing {
            " (database failing)"
        } else {
            ""
        }
    );
    let alerts: Vec<&str> = f
        .alerts
        .iter()
        .filter(|(_, active)| *active)
        .map(|(check, _)| check.name())
        .collect();
    let _ = writeln!(
        text,
        "Alerts: {}",
        if alerts.is_empty() {
            "none".to_string()
        } else {
            alerts.join(", ")
        }
    );
    let _ = write!(
        text,
        "Backends: cpu {} jobs, gpu {} ({} rerun on the CPU after GPU faults); {} Telegram \
         retries; {} jobs led here now",
        r.cpu_jobs,
        r.gpu_jobs,
        f.gpu_fallbacks,
        f.telegram_retries,
        service.coalescer.in_flight_count()
    );
    text
}

fn percentiles(summary: &LatencySummary) -> String {
    if summary.count == 0 {
        return "no data".into();
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "{:.1} / {:.1} / {:.1} ms (n={})",
        ms(summary.p50),
        ms(summary.p95),
        ms(summary.p99),
        summary.count
    )
}

pub async fn admin_stats(service: &Service) -> String {
    let stats = match service.store.admin_stats(unix_millis()).await {
        Ok(stats) => stats,
        Err(error) => return format!("The store is not answering: {error}"),
    };
    let mut text = format!(
        "Users: {}\nRequests: {} in the last 24 h, {} in total\n",
        stats.users, stats.requests_today, stats.requests_total
    );
    text.push_str("Top operations:\n");
    if stats.top_operations.is_empty() {
        text.push_str("• none yet\n");
    }
    for (name, count) in &stats.top_operations {
        let _ = writeln!(text, "• {name}: {count}");
    }
    text.push_str("Errors by kind:\n");
    if stats.errors_by_kind.is_empty() {
        text.push_str("• none\n");
    }
    for (kind, count) in &stats.errors_by_kind {
        let _ = writeln!(text, "• {kind}: {count}");
    }
    text
}
