//! The health report: each part's state and the overall one, as JSON for GET /health and
//! /health/ready and as text for the /health command (one report, two renderings).
//!
//! `degraded` still answers every request (a shared service is failing and its in-process
//! fallback is in use, or Telegram is slow to answer): a load balancer keeps sending work.
//! `down` cannot take work (the engine is stopped or the bot is shutting down): 503.

use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::clock::human_duration;
use crate::flow::service::FlowSnapshot;
use crate::operate::operator::Operator;
use crate::shared::redis::RedisHealth;

/// Each network check gives up after this, so a readiness probe answers in time.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the network checks' answers serve every readiness probe: probes from many load
/// balancers cost one round of checks a second at most.
const REPORT_REUSED_FOR: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Degraded,
    Down,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Degraded => "DEGRADED",
            Status::Down => "DOWN",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Component {
    pub name: &'static str,
    pub status: Status,
    /// Left out of the JSON when empty (the public report).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    pub resident_bytes: Option<u64>,
    pub limit_bytes: u64,
    /// True while the memory guard holds new work back.
    pub guard_active: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub status: Status,
    pub instance: String,
    pub uptime_seconds: f64,
    pub memory: MemoryReport,
    pub components: Vec<Component>,
}

impl HealthReport {
    /// The /health command's text.
    pub fn text(&self) -> String {
        let mut text = format!(
            "Status: {}\ninstance: {}, up {}\n",
            self.status.word(),
            self.instance,
            human_duration(Duration::from_secs_f64(self.uptime_seconds))
        );
        for component in &self.components {
            let _ = writeln!(
                text,
                "{}: {} ({})",
                component.name,
                component.status.word(),
                component.detail
            );
        }
        let resident = self
            .memory
            .resident_bytes
            .map_or("unknown".to_string(), |b| format!("{} MiB", b >> 20));
        let _ = write!(
            text,
            "memory: resident {resident} of {} MiB{}",
            self.memory.limit_bytes >> 20,
            if self.memory.guard_active {
                " (over the limit: new work held back)"
            } else {
                ""
            }
        );
        text
    }
}

impl HealthReport {
    /// The report for anyone who may ask: each part's name and status, without the details
    /// (error texts name hosts, queries and addresses).
    pub fn without_details(&self) -> HealthReport {
        HealthReport {
            components: self
                .components
                .iter()
                .map(|component| Component {
                    detail: String::new(),
                    ..component.clone()
                })
                .collect(),
            ..self.clone()
        }
    }
}

/// Readiness for frequent probes: the network checks' answers are reused for
/// [`REPORT_REUSED_FOR`] (one caller runs the next round while the others wait for it: a
/// single flight); the process's own state (engine, queues, memory) is read on every call, so
/// a stopped engine shows at once.
#[derive(Default)]
pub struct RecentReport(tokio::sync::Mutex<Option<(Instant, Arc<Probes>)>>);

impl RecentReport {
    pub async fn get(&self, operator: &Operator) -> HealthReport {
        let probes = {
            let mut recent = self.0.lock().await;
            match &*recent {
                Some((at, probes)) if at.elapsed() < REPORT_REUSED_FOR => Arc::clone(probes),
                _ => {
                    let probes = Arc::new(probe(operator).await);
                    *recent = Some((Instant::now(), Arc::clone(&probes)));
                    probes
                }
            }
        };
        assemble(operator, &probes)
    }
}

fn component(name: &'static str, ok: bool, detail: String) -> Component {
    Component {
        name,
        status: if ok { Status::Ok } else { Status::Degraded },
        detail,
    }
}

/// What the network checks answered: the costly part of a report.
#[derive(Clone)]
pub struct Probes {
    store: StorePing,
    telegram: Result<(), String>,
    redis: Option<RedisHealth>,
}

#[derive(Clone)]
enum StorePing {
    Answered,
    Failed(String),
    NoAnswer,
}

/// Runs the network checks at once, each bounded by a timeout.
async fn probe(operator: &Operator) -> Probes {
    let service = operator.service();
    let (store_ping, telegram, redis) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, service.store_answers()),
        service.telegram().reachable(),
        service.redis_health(),
    );
    Probes {
        store: match store_ping {
            Ok(Ok(())) => StorePing::Answered,
            Ok(Err(error)) => StorePing::Failed(error.to_string()),
            Err(_) => StorePing::NoAnswer,
        },
        telegram,
        redis,
    }
}

/// Checks every part now.
pub async fn report(operator: &Operator) -> HealthReport {
    let probes = probe(operator).await;
    assemble(operator, &probes)
}

/// The report from `probes` and the process's own state, read now.
fn assemble(operator: &Operator, probes: &Probes) -> HealthReport {
    let figures = operator.figures();
    let f = &figures.flow;
    let redis = probes.redis.clone();
    let mut components = vec![
        engine(f),
        backend(f),
        cache(f, redis.as_ref()),
        store(f, &probes.store),
        rate_limiter(operator.config().rate_limit_per_hour, f, redis.as_ref()),
        intake(f, operator.config().alerts.intake_age_seconds),
        match &probes.telegram {
            Ok(()) => component("telegram", true, "reachable".into()),
            Err(error) => component("telegram", false, format!("unreachable: {error}")),
        },
    ];
    if let Some(redis) = redis {
        components.push(match redis {
            RedisHealth::Connected => component(
                "redis",
                true,
                "cache, limits, update ids, order and locks shared".into(),
            ),
            RedisHealth::Failing { for_, error } => component(
                "redis",
                false,
                format!(
                    "failing for {} ({error}); in-process fallbacks in use",
                    human_duration(for_)
                ),
            ),
        });
    }
    HealthReport {
        status: components
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Ok),
        instance: operator.config().instance_id.clone(),
        uptime_seconds: figures.requests.uptime.as_secs_f64(),
        memory: MemoryReport {
            resident_bytes: figures.resident_bytes,
            limit_bytes: figures.memory_limit_bytes,
            guard_active: figures.guard_active,
        },
        components,
    }
}

fn engine(f: &FlowSnapshot) -> Component {
    let counts = format!(
        "{} workers, {} running, {} queued; {} requests in progress, {} waiting",
        f.workers, f.engine.running, f.engine.queued, f.in_progress, f.admission_waiting
    );
    if !f.accepting {
        Component {
            name: "engine",
            status: Status::Down,
            detail: format!("shutting down; {counts}"),
        }
    } else {
        component("engine", true, counts)
    }
}

/// The engine's backend choice and the GPU it uses, or why it uses none.
fn backend(f: &FlowSnapshot) -> Component {
    let status = &f.backend;
    let detail = match (&status.gpu, &status.gpu_unavailable) {
        (Some(gpu), _) => format!("{} (GPU {}, {})", status.choice, gpu.name, gpu.device_type),
        (None, Some(reason)) => format!("{} (CPU only: {reason})", status.choice),
        (None, None) => format!("{} (CPU)", status.choice),
    };
    component("backend", true, detail)
}

fn cache(f: &FlowSnapshot, redis: Option<&RedisHealth>) -> Component {
    let c = &f.cache;
    let usage = format!(
        "{} entries, {} of {} MiB in process, {:.0}% hits",
        c.entries,
        c.bytes >> 20,
        c.capacity_bytes >> 20,
        c.hit_rate() * 100.0
    );
    match redis {
        _ if !f.cache_shared => component("cache", true, format!("in-process; {usage}")),
        Some(RedisHealth::Failing { .. }) => component(
            "cache",
            false,
            format!("Redis failing: in-process only; {usage}"),
        ),
        _ => component(
            "cache",
            true,
            format!("Redis file ids + bytes in process; {usage}"),
        ),
    }
}

fn store(f: &FlowSnapshot, ping: &StorePing) -> Component {
    let backend = f.store_backend;
    let backlog = format!(
        "{} records queued, {} spilled to disk",
        f.records.queued, f.records.spilled
    );
    match ping {
        StorePing::Answered if !f.records.failing => {
            component("store", true, format!("{backend}; {backlog}"))
        }
        StorePing::Answered => component(
            "store",
            false,
            format!("{backend} answers, writes failing; {backlog}"),
        ),
        StorePing::Failed(error) => component(
            "store",
            false,
            format!("{backend}: {error}; {backlog}, written when it is back"),
        ),
        StorePing::NoAnswer => component(
            "store",
            false,
            format!("{backend}: no answer in 2 s; {backlog}"),
        ),
    }
}

fn rate_limiter(per_hour: u32, f: &FlowSnapshot, redis: Option<&RedisHealth>) -> Component {
    match redis {
        None => component(
            "rate_limiter",
            true,
            format!(
                "{per_hour}/hour per user, in process ({} users tracked)",
                f.tracked_users
            ),
        ),
        Some(RedisHealth::Connected) => component(
            "rate_limiter",
            true,
            format!("{per_hour}/hour per user, shared in Redis"),
        ),
        Some(RedisHealth::Failing { .. }) => component(
            "rate_limiter",
            false,
            format!("{per_hour}/hour per user, per instance while Redis fails"),
        ),
    }
}

/// The inbox: accepted updates not yet answered, and how long the oldest has waited.
fn intake(f: &FlowSnapshot, alert_after_seconds: f64) -> Component {
    let inbox = &f.inbox;
    let age = inbox.oldest.unwrap_or_default();
    let detail = format!(
        "{} accepted updates unanswered (oldest {}), {} in progress here; {} taken over from \
         silent instances, {} delivered again",
        inbox.backlog,
        human_duration(age),
        inbox.in_progress,
        inbox.reclaimed,
        inbox.redelivered
    );
    component("intake", age.as_secs_f64() <= alert_after_seconds, detail)
}
