//! Scale-out benchmark on the real Redis and PostgreSQL: throughput of two instances sharing
//! them against one embedded-default instance, the latency of a repeat answered by the other
//! instance from the shared cache, and steady load through three faults (Redis cut, PostgreSQL
//! cut, one instance stopped as on SIGTERM) with latency before, during and after each.
//! Figures are printed, never asserted (machines are shared and noisy); what is asserted is
//! that no reply and no record is lost or duplicated.
//!
//! `cargo test --release --test bot_scale_load -- --nocapture`. PRISM_SCALE_USERS (default 100)
//! sets the burst size, PRISM_FAULT_SECS (default 10) each fault's length, PRISM_FAULT_RATE
//! (default 20) the steady load in requests per second.

mod faultproxy;
mod scale;
mod standin;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use faultproxy::FaultProxy;
use prism_bot::BotConfig;
use scale::{
    Instance, Services, message_id, photo_bytes, postgres_url, redis_url, service_address,
    start_instance, stop_all,
};
use serde_json::Value;
use standin::{FileRef, StandIn, TOKEN};

const CAPTION: &str = "fit 800";

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

fn summary(latencies: &mut [Duration]) -> String {
    latencies.sort();
    format!(
        "n={:>4} p50 {:>6.1} ms, p99 {:>7.1} ms, max {:>7.1} ms",
        latencies.len(),
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        percentile(latencies, 1.0)
    )
}

/// Posts updates to the instances in turn, as HAProxy does: a target that refuses (stopped
/// or stopping) is skipped and the update redispatched to the next one.
struct Balancer {
    targets: Vec<String>,
    next: usize,
}

impl Balancer {
    async fn post(&mut self, standin: &StandIn, update: &Value) {
        for _ in 0..self.targets.len() * 20 {
            let target = self.targets[self.next % self.targets.len()].clone();
            self.next += 1;
            if standin.deliver_to(&target, update).await == 200 {
                return;
            }
        }
        panic!("no instance took update {}", update["update_id"]);
    }
}

/// One sent request: its user (= chat), message id and when it was sent.
struct Sent {
    user: i64,
    message: i64,
    at: Instant,
}

/// Waits for every reply; returns each one's latency from update to reply.
async fn replies(standin: &StandIn, sent: &[Sent]) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(sent.len());
    for request in sent {
        let reply = standin
            .wait_reply("sendphoto", request.user, request.message)
            .await;
        latencies.push(reply.at.duration_since(request.at));
    }
    latencies
}

/// `files.len()` users send a photo each, all at once, through the balancer (or to
/// getUpdates without one); returns images/s.
async fn burst(
    standin: &StandIn,
    files: &[FileRef],
    first_user: i64,
    mut balancer: Option<&mut Balancer>,
) -> f64 {
    let start = Instant::now();
    let mut sent = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let user = first_user + i as i64;
        let update = standin.photo_update(user, user, file, Some(CAPTION));
        let message = message_id(&update);
        match balancer.as_deref_mut() {
            Some(balancer) => balancer.post(standin, &update).await,
            None => standin.push_update(update),
        }
        sent.push(Sent {
            user,
            message,
            at: Instant::now(),
        });
    }
    replies(standin, &sent).await;
    files.len() as f64 / start.elapsed().as_secs_f64()
}

/// The single-process default: polling, in-process parts, SQLite, both cores for its engine.
async fn embedded_throughput(standin: &StandIn, services: &Services, files: &[FileRef]) -> f64 {
    let db = format!(
        "sqlite://{}?mode=rwc",
        services.dir.join("embedded.sqlite").display()
    );
    let spill = services.dir.join("embedded.spill").display().to_string();
    let intake = services.dir.join("embedded.intake").display().to_string();
    let queue = files.len().to_string();
    let env: HashMap<&str, String> = [
        ("TELEGRAM_BOT_TOKEN", TOKEN.to_string()),
        ("TELEGRAM_API_URL", standin.url.clone()),
        ("TELEGRAM_THROTTLE", "false".into()),
        ("POLLING_TIMEOUT", "1".into()),
        ("DATABASE_URL", db),
        ("RECORD_SPILL_PATH", spill),
        ("INTAKE_QUEUE_PATH", intake),
        ("THREAD_POOL_SIZE", "2".into()),
        ("REQUEST_QUEUE_SIZE", queue),
        ("HEALTH_ADDR", "off".into()),
    ]
    .into_iter()
    .collect();
    let config = BotConfig::from_lookup(|key| env.get(key).cloned()).expect("config");
    let bot = prism_bot::start(config).await.expect("embedded bot");
    let rate = burst(standin, files, 10_000, None).await;
    bot.stop().await;
    rate
}

/// What a steady load saw: latencies before, during and after a fault.
struct FaultRun {
    name: &'static str,
    phases: [Vec<Duration>; 3],
    requests: usize,
}

/// Sends `rate` new photos per second for three windows of `window`: calls `fault` at the
/// start of the second and `heal` at the start of the third.
async fn steady_load(
    standin: &StandIn,
    balancer: &mut Balancer,
    photo: &[u8],
    first_user: i64,
    rate: u64,
    window: Duration,
    mut on_phase: impl AsyncFnMut(usize, &mut Balancer),
) -> [Vec<Duration>; 3] {
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut sent: [Vec<Sent>; 3] = Default::default();
    let mut user = first_user;
    for (phase, requests) in sent.iter_mut().enumerate() {
        on_phase(phase, balancer).await;
        let start = Instant::now();
        let mut due = start;
        while start.elapsed() < window {
            tokio::time::sleep_until(due.into()).await;
            due += interval;
            // A new upload each time: every request is real engine work.
            let file = standin.add_file(photo);
            let update = standin.photo_update(user, user, &file, Some(CAPTION));
            let message = message_id(&update);
            let at = Instant::now();
            balancer.post(standin, &update).await;
            requests.push(Sent { user, message, at });
            user += 1;
        }
    }
    let mut phases: [Vec<Duration>; 3] = Default::default();
    for (phase, requests) in sent.iter().enumerate() {
        phases[phase] = replies(standin, requests).await;
    }
    phases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_shared_services_under_load_and_faults() {
    let Some(services) = Services::create("load").await else {
        return;
    };
    // As prism-bot's main does.
    prism_engine::share_one_arena();
    prism_engine::map_large_blocks_separately();
    let users = setting("PRISM_SCALE_USERS", 100) as usize;
    let window = Duration::from_secs(setting("PRISM_FAULT_SECS", 10));
    let rate = setting("PRISM_FAULT_RATE", 20);
    let photo = photo_bytes();
    let standin = StandIn::start().await;

    // 1. Throughput: one embedded instance, then two instances on Redis + PostgreSQL, each
    //    with one engine thread (the same two cores in all).
    let files: Vec<FileRef> = (0..users).map(|_| standin.add_file(&photo)).collect();
    let embedded = embedded_throughput(&standin, &services, &files).await;

    let redis_proxy = FaultProxy::start(service_address(&redis_url()));
    let pg_proxy = FaultProxy::start(service_address(&postgres_url()));
    let one_thread = [("THREAD_POOL_SIZE", "1"), ("REQUEST_QUEUE_SIZE", "1000")];
    let start = |name: &'static str| {
        start_instance(
            &standin,
            &services,
            name,
            Some(&redis_proxy),
            Some(&pg_proxy),
            &one_thread,
        )
    };
    let mut instances: Vec<Instance> = vec![start("a").await, start("b").await];
    let mut balancer = Balancer {
        targets: instances.iter().map(|i| i.hook.clone()).collect(),
        next: 0,
    };
    let files: Vec<FileRef> = (0..users).map(|_| standin.add_file(&photo)).collect();
    let shared = burst(&standin, &files, 20_000, Some(&mut balancer)).await;

    // 2. Each result again, from another user, at the instance that did not make it (the
    //    balancer alternated, so the i-th went to instance i % 2): answered from Redis.
    let mut repeat_latencies = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let user = 30_000 + i as i64;
        let update = standin.photo_update(user, user, file, Some(CAPTION));
        let other = &instances[(i + 1) % 2];
        let at = Instant::now();
        assert_eq!(standin.deliver_to(&other.hook, &update).await, 200);
        let reply = standin
            .wait_reply("sendphoto", user, message_id(&update))
            .await;
        assert!(reply.files.is_empty(), "a repeat is sent by file id");
        repeat_latencies.push(reply.at.duration_since(at));
    }
    let downloads_after_repeats = standin.count("download");

    // 3. Faults under a steady load.
    let mut runs = Vec::new();
    let mut first_user = 100_000;
    for name in ["Redis cut", "PostgreSQL cut", "instance a stopped"] {
        let phases = steady_load(
            &standin,
            &mut balancer,
            &photo,
            first_user,
            rate,
            window,
            async |phase, balancer: &mut Balancer| match (name, phase) {
                ("Redis cut", 1) => redis_proxy.cut(),
                ("Redis cut", 2) => redis_proxy.restore(),
                ("PostgreSQL cut", 1) => pg_proxy.cut(),
                ("PostgreSQL cut", 2) => pg_proxy.restore(),
                ("instance a stopped", 1) => {
                    // As on SIGTERM: stop taking updates, finish and record what was taken.
                    let stopping = instances.remove(0);
                    balancer.targets.retain(|t| *t != stopping.hook);
                    stopping.bot.stop().await;
                }
                ("instance a stopped", 2) => {
                    let restarted = start("a").await;
                    balancer.targets.push(restarted.hook.clone());
                    instances.push(restarted);
                }
                _ => {}
            },
        )
        .await;
        let requests: usize = phases.iter().map(Vec::len).sum();
        first_user += 100_000;
        runs.push(FaultRun {
            name,
            phases,
            requests,
        });
    }
    let total = (2 * users + runs.iter().map(|r| r.requests).sum::<usize>()) as i64;
    let (records, distinct) = services.wait_for_records(total).await;
    stop_all(instances).await;
    let lost_replies: usize = 0; // every reply was awaited above; a missing one fails the test

    println!("scale-out check: {users} users, {CAPTION}, two cores");
    println!(
        "  throughput: one embedded instance {embedded:.1} img/s; two instances on Redis + \
         PostgreSQL {shared:.1} img/s = {:.2}x",
        shared / embedded
    );
    println!(
        "  repeat on the other instance (shared cache, by file id): {}",
        summary(&mut repeat_latencies)
    );
    for run in &mut runs {
        println!(
            "  {} ({} s, {rate} req/s, {} requests):",
            run.name,
            window.as_secs(),
            run.requests
        );
        for (phase, latencies) in ["before", "during", "after"]
            .iter()
            .zip(run.phases.iter_mut())
        {
            println!("    {phase:>6}: {}", summary(latencies));
        }
    }
    println!(
        "  lost replies {lost_replies}; records {records} for {total} requests ({distinct} distinct)"
    );
    assert_eq!(
        (records, distinct),
        (total, total),
        "every request recorded exactly once"
    );
    assert_eq!(downloads_after_repeats, 2 * users, "repeats never download");
    services.remove().await;
}
