//! The admin commands' reports: /health, /performance, /admin_stats.

use std::fmt::Write;
use std::time::Duration;

use prism_engine::LatencySummary;

use crate::metrics::resident_bytes;
use crate::service::{Service, unix_millis};
use crate::shared_redis::RedisHealth;

const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Overall state: `Degraded` still answers every request (a shared service is failing and
/// its in-process fallback is in use); `Failing` cannot (Telegram unreachable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Healthy,
    Degraded,
    Failing,
}

pub struct HealthReport {
    pub status: Status,
    pub text: String,
}

/// One line per part; every check is bounded by a timeout.
pub async fn health(service: &Service) -> HealthReport {
    let engine = service.engine.stats();
    let engine_line = format!(
        "engine: ok ({} threads, {} running, {} queued)",
        service.engine.config().threads,
        engine.running,
        engine.queued
    );
    let backend = service.store.backend_name();
    let records = service.recorder.stats();
    let backlog = format!(
        "{} records queued, {} spilled to disk",
        records.queued, records.spilled
    );
    let (store_ok, store) = match tokio::time::timeout(CHECK_TIMEOUT, service.store.ping()).await {
        Ok(Ok(())) if !records.failing => (true, format!("store: ok ({backend}, {backlog})")),
        Ok(Ok(())) => (
            false,
            format!("store: DEGRADED ({backend} answers, writes failing: {backlog})"),
        ),
        Ok(Err(error)) => (
            false,
            format!("store: DEGRADED ({backend}: {error}; {backlog}, written when it is back)"),
        ),
        Err(_) => (
            false,
            format!("store: DEGRADED ({backend}: no answer in 5 s; {backlog})"),
        ),
    };
    let reachable = tokio::time::timeout(CHECK_TIMEOUT, service.telegram.reachable()).await;
    let (telegram_ok, telegram) = match reachable {
        Ok(Ok(())) => (true, "telegram: reachable".to_string()),
        Ok(Err(error)) => (false, format!("telegram: UNREACHABLE ({error})")),
        Err(_) => (
            false,
            "telegram: UNREACHABLE (no answer in 5 s)".to_string(),
        ),
    };
    let (redis_ok, redis) = redis_line(service).await;
    let cache = service.cache.stats();
    let cache_line = format!(
        "cache: ok ({}, {} entries, {} of {} MiB in process)",
        if service.cache.is_shared() {
            "shared file ids in Redis + bytes in process"
        } else {
            "in-process"
        },
        cache.entries,
        cache.bytes >> 20,
        cache.capacity_bytes >> 20
    );
    let status = match (telegram_ok, store_ok && redis_ok) {
        (false, _) => Status::Failing,
        (true, false) => Status::Degraded,
        (true, true) => Status::Healthy,
    };
    let word = match status {
        Status::Healthy => "healthy",
        Status::Degraded => "DEGRADED (answering; a shared service is failing)",
        Status::Failing => "FAILING",
    };
    let text = format!(
        "Status: {word}\ninstance: {}\n{engine_line}\n{}\n{cache_line}\n{redis}\n{store}\n{telegram}",
        service.config.instance_id,
        backend_line(service)
    );
    HealthReport { status, text }
}

/// Redis, when configured: a ping now, and the link's own view of recent failures.
async fn redis_line(service: &Service) -> (bool, String) {
    let Some(redis) = &service.redis else {
        return (true, "redis: not configured (single instance)".to_string());
    };
    let _ = redis.ping().await;
    match redis.health() {
        RedisHealth::Connected => (
            true,
            "redis: ok (cache, limits, update ids, order and locks shared)".to_string(),
        ),
        RedisHealth::Failing { for_, error } => (
            false,
            format!(
                "redis: DEGRADED for {} ({error}); in-process cache, limits and de-duplication \
                 until it answers",
                crate::service::human_duration(for_)
            ),
        ),
    }
}

pub fn performance(service: &Service) -> String {
    let bot = service.metrics.snapshot();
    let engine = service.engine.stats();
    let cache = service.cache.stats();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Uptime {}; requests {} (done {}, failed {}, refused {}); {:.2} images/s",
        crate::service::human_duration(bot.uptime),
        bot.requests,
        bot.completed,
        bot.failed,
        bot.refused,
        bot.images_per_second
    );
    if !service.metrics.enabled() {
        text.push_str("Latency tracking is off (ENABLE_PERFORMANCE_MONITORING=false).\n");
    }
    text.push_str("Latency p50 / p95 / p99:\n");
    let stages = [
        ("waiting for a slot", bot.admission_wait),
        ("download", bot.download),
        ("engine queue", engine.queue_wait),
        ("decode", engine.decode),
        ("operations", engine.ops),
        ("encode", engine.encode),
        ("engine total", bot.engine),
        ("upload", bot.upload),
        ("reply (processed)", bot.total),
        ("reply (cache hit)", bot.total_cache_hit),
    ];
    for (name, summary) in stages {
        let _ = writeln!(text, "• {name}: {}", percentiles(&summary));
    }
    let _ = writeln!(
        text,
        "Queue: {} running, {} waiting (engine: {} running, {} queued); {} chats awaiting replies; \
         rate limit tracks {} users",
        service.admission.running(),
        service.admission.waiting(),
        engine.running,
        engine.queued,
        service.order.pending_chats(),
        service.limits.tracked_users()
    );
    let _ = writeln!(
        text,
        "Cache: {:.0}% hits ({} hits, {} of them from Redis, {} misses), {} entries, {} MiB",
        cache.hit_rate() * 100.0,
        cache.hits,
        cache.shared_hits,
        cache.misses,
        cache.entries,
        cache.bytes >> 20
    );
    let rss = resident_bytes().map_or("unknown".to_string(), |b| format!("{} MiB", b >> 20));
    let _ = writeln!(
        text,
        "Memory: resident {rss} of {} MiB limit; engine reserved {} of {} MiB",
        service.config.memory_limit_bytes >> 20,
        engine.reserved_bytes >> 20,
        engine.memory_budget_bytes >> 20
    );
    let records = service.recorder.stats();
    let _ = writeln!(
        text,
        "Records: {} written, {} queued, {} spilled to disk{}",
        records.written,
        records.queued,
        records.spilled,
        if records.failing {
            " (database failing)"
        } else {
            ""
        }
    );
    let _ = write!(
        text,
        "Backends: cpu {} jobs, gpu {} ({} rerun on the CPU after GPU faults); {} jobs led here now",
        bot.cpu_jobs,
        bot.gpu_jobs,
        service
            .engine
            .backend_status()
            .gpu_stats
            .map_or(0, |gpu| gpu.fallbacks),
        service.coalescer.in_flight_count()
    );
    text
}

/// The engine's backend choice and the GPU it uses, or why it uses none.
fn backend_line(service: &Service) -> String {
    let status = service.engine.backend_status();
    match (status.gpu, status.gpu_unavailable) {
        (Some(gpu), _) => format!(
            "backend: {} (GPU {}, {})",
            status.choice, gpu.name, gpu.device_type
        ),
        (None, Some(reason)) => format!("backend: {} (CPU only: {reason})", status.choice),
        (None, None) => format!("backend: {} (CPU)", status.choice),
    }
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
