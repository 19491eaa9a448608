//! The admin commands' reports: /performance and /admin_stats (/health is `health`).

use std::fmt::Write;
use std::time::Duration;

use prism_engine::LatencySummary;

use crate::clock::human_duration;
use crate::flow::service::Service;
use crate::operate::operator::Operator;

/// The /performance text, from the same figures as /metrics.
pub fn performance(operator: &Operator) -> String {
    let f = operator.figures();
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
    if !operator.metrics().enabled() {
        text.push_str("Latency tracking is off (ENABLE_PERFORMANCE_MONITORING=false).\n");
    }
    text.push_str("Latency p50 / p95 / p99:\n");
    for (stage, summary) in &r.latencies {
        let _ = writeln!(text, "• {stage}: {}", percentiles(summary));
    }
    let _ = writeln!(
        text,
        "Queue: {} in progress, {} waiting (engine: {} of {} workers busy, {} queued); {} chats \
         awaiting replies; rate limit tracks {} users",
        f.flow.in_progress,
        f.flow.admission_waiting,
        f.flow.engine.running,
        f.flow.workers,
        f.flow.engine.queued,
        f.flow.pending_chats,
        f.flow.tracked_users
    );
    let c = &f.flow.cache;
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
        f.flow.engine.reserved_bytes >> 20,
        f.flow.engine.memory_budget_bytes >> 20
    );
    let _ = writeln!(
        text,
        "Records: {} written, {} queued, {} spilled to disk{}",
        f.flow.records.written,
        f.flow.records.queued,
        f.flow.records.spilled,
        if f.flow.records.failing {
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
        r.cpu_jobs, r.gpu_jobs, f.flow.gpu_fallbacks, f.flow.telegram_retries, f.flow.jobs_led_here
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
    let stats = match service.admin_stats().await {
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
