//! Load check: 100 simulated users send Telegram-sized photos to the bot through the
//! stand-in at once, then at 80 % of the engine's own capacity, then again as cache hits.
//! Prints throughput (and its ratio to the engine alone on the same photos and threads),
//! p50/p99 reply latency and peak memory. It asserts only that every user got the right
//! answer: timings are reported, never asserted (machines are shared and noisy).
//!
//! Full run: `cargo test --release --test bot_load -- --nocapture`; PRISM_LOAD_USERS sets the
//! number of users, PRISM_LOAD_PHOTOS a folder of JPEGs (longest side ~1280) to use instead
//! of the fixture photo.

mod common;
mod standin;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use prism_bot::BotConfig;
use prism_engine::{Engine, EngineConfig, Pipeline};
use serde_json::Value;
use standin::{FileRef, StandIn, TOKEN, http_get, http_post};

// The allocator comparison (README, "The bot under load"): the same test on jemalloc or
// mimalloc with `--features alloc-jemalloc` / `alloc-mimalloc`; glibc otherwise.
#[cfg(feature = "alloc-jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
#[cfg(feature = "alloc-mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn allocator_name() -> &'static str {
    if cfg!(feature = "alloc-jemalloc") {
        "jemalloc"
    } else if cfg!(feature = "alloc-mimalloc") {
        "mimalloc"
    } else {
        "glibc, one arena"
    }
}

const PIPELINE: &str = "fit:800x800|jpeg:85";
const THREADS: usize = 2;

fn photos() -> Vec<Vec<u8>> {
    match std::env::var("PRISM_LOAD_PHOTOS") {
        Ok(folder) => common::jpegs_in(folder.as_ref()),
        Err(_) => vec![common::read("photos/dragonfly-1280.jpg")],
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Sends one photo per user (at `interval` apart) and returns each reply's latency.
async fn send_and_wait(
    standin: &StandIn,
    files: &[FileRef],
    first_user: i64,
    interval: Duration,
) -> Vec<Duration> {
    let mut sent: Vec<(i64, Value, Instant)> = Vec::new();
    let start = Instant::now();
    for (index, file) in files.iter().enumerate() {
        let due = start + interval * index as u32;
        tokio::time::sleep_until(due.into()).await;
        let user = first_user + index as i64;
        let message = standin.photo(user, user, file, Some("fit 800"));
        sent.push((user, message, Instant::now()));
    }
    let checker = Engine::new(EngineConfig {
        threads: 1,
        ..EngineConfig::default()
    })
    .expect("engine");
    let mut latencies = Vec::new();
    for (user, message, at) in sent {
        let id = message["message_id"].as_i64().expect("id");
        let reply = standin.wait_reply("sendphoto", user, id).await;
        latencies.push(reply.at.duration_since(at));
        // A fresh result is uploaded and must be the right size; a hit is a file id.
        if let Some(photo) = reply.files.get("photo") {
            let info = checker.probe(photo).expect("a valid JPEG");
            assert_eq!(info.width.max(info.height), 800);
        } else {
            assert!(
                reply.params["photo"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("sent-"))
            );
        }
    }
    latencies.sort();
    latencies
}

/// CPU seconds (user + system) used so far by this process's threads: (the bot, the rest).
/// The rest is the stand-in (Telegram's side) and this test's own thread (the users).
fn cpu_seconds() -> (f64, f64) {
    let (mut bot, mut rest) = (0.0, 0.0);
    let tasks = std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten();
    for task in tasks {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let Some((head, after)) = stat.rsplit_once(')') else {
            continue;
        };
        let name = head.split_once('(').map_or("", |(_, name)| name);
        // Fields after the name: utime and stime are the 12th and 13th (clock ticks).
        let fields: Vec<f64> = after
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0.0))
            .collect();
        let ticks = fields.get(11).copied().unwrap_or(0.0) + fields.get(12).copied().unwrap_or(0.0);
        let is_bot = ["tokio-rt", "prism-worker", "sqlx"]
            .iter()
            .any(|p| name.starts_with(p));
        if is_bot {
            bot += ticks / 100.0;
        } else {
            rest += ticks / 100.0;
        }
    }
    (bot, rest)
}

/// A `/proc/self/status` figure in MiB: `VmHWM` (peak resident) or `VmRSS` (now).
fn status_mib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

/// Images per second of one burst of fresh photos, with /metrics scraped every second
/// during it when `scrape` is set.
async fn fresh_burst(
    standin: &StandIn,
    inputs: &[Vec<u8>],
    first_user: i64,
    scrape: Option<&str>,
) -> f64 {
    let files: Vec<FileRef> = inputs.iter().map(|bytes| standin.add_file(bytes)).collect();
    let scraper = scrape.map(|address| {
        let address = address.to_string();
        tokio::spawn(async move {
            loop {
                let (status, _) = http_get(&address, "/metrics").await;
                assert_eq!(status, 200);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    });
    let start = Instant::now();
    send_and_wait(standin, &files, first_user, Duration::ZERO).await;
    let rate = files.len() as f64 / start.elapsed().as_secs_f64();
    if let Some(scraper) = scraper {
        scraper.abort();
    }
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_users_send_photos_at_once() {
    let users: usize = std::env::var("PRISM_LOAD_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    // As prism-bot's main does (here other threads exist already; new arenas are not made).
    if allocator_name().starts_with("glibc") {
        prism_engine::share_one_arena();
        prism_engine::map_large_blocks_separately();
    }
    let photos = photos();
    let inputs: Vec<Vec<u8>> = (0..users)
        .map(|i| photos[i % photos.len()].clone())
        .collect();

    // The engine alone, same photos, same threads.
    let (engine_rate, engine_cpu_per_image) = {
        let inputs = inputs.clone();
        tokio::task::spawn_blocking(move || {
            let engine = Engine::new(EngineConfig {
                threads: THREADS,
                ..EngineConfig::default()
            })
            .expect("engine");
            let pipeline: Pipeline = PIPELINE.parse().expect("pipeline");
            let start = Instant::now();
            let cpu_before = cpu_seconds().0;
            let results = engine.process_batch(inputs, &pipeline);
            let elapsed = start.elapsed();
            let cpu_per_image = (cpu_seconds().0 - cpu_before) / results.len() as f64;
            assert!(results.iter().all(Result::is_ok));
            (results.len() as f64 / elapsed.as_secs_f64(), cpu_per_image)
        })
        .await
        .expect("engine run")
    };

    let standin = StandIn::start().await;
    let dir = std::env::temp_dir().join(format!("prism-bot-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let database = format!("sqlite://{}?mode=rwc", dir.join("bot.sqlite").display());
    let intake = dir.join("intake.sqlite").display().to_string();
    let _ = std::fs::remove_file(&intake);
    let threads = THREADS.to_string();
    let queue = users.to_string();
    let env: HashMap<&str, &str> = HashMap::from([
        ("TELEGRAM_BOT_TOKEN", TOKEN),
        ("TELEGRAM_API_URL", standin.url.as_str()),
        ("DATABASE_URL", database.as_str()),
        ("INTAKE_QUEUE_PATH", intake.as_str()),
        ("POLLING_TIMEOUT", "1"),
        ("TELEGRAM_THROTTLE", "false"),
        ("THREAD_POOL_SIZE", threads.as_str()),
        ("MEMORY_LIMIT_MB", "512"),
        ("REQUEST_QUEUE_SIZE", queue.as_str()),
        ("HEALTH_ADDR", "127.0.0.1:0"),
        ("CLEANUP_TOKEN", "load-test-token-of-at-least-32-characters"),
    ]);
    // Bot settings to experiment with pass through from the environment.
    let passed = |name: &str| {
        ["MAX_CONCURRENT_REQUESTS"]
            .contains(&name)
            .then(|| std::env::var(name).ok())
            .flatten()
    };
    let config = BotConfig::from_lookup(|name| {
        passed(name).or_else(|| env.get(name).map(|v| v.to_string()))
    })
    .expect("config");
    let bot = prism_bot::start(config).await.expect("bot starts");

    // 1. Everyone at once: sustained throughput.
    let files: Vec<FileRef> = inputs.iter().map(|bytes| standin.add_file(bytes)).collect();
    let start = Instant::now();
    let cpu_before = cpu_seconds();
    let burst = send_and_wait(&standin, &files, 10_000, Duration::ZERO).await;
    let burst_wall = start.elapsed().as_secs_f64();
    let cpu_after = cpu_seconds();
    let (bot_cpu, other_cpu) = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
    let bot_rate = users as f64 / burst_wall;

    // 2. New photos offered at 80 % of the engine's capacity: reply latency.
    let fresh: Vec<FileRef> = inputs.iter().map(|bytes| standin.add_file(bytes)).collect();
    let interval = Duration::from_secs_f64(1.0 / (0.8 * engine_rate));
    let paced = send_and_wait(&standin, &fresh, 20_000, interval).await;

    // 3. The first photos again, same pipeline, other users: cache hits.
    let hits = send_and_wait(&standin, &files, 30_000, Duration::from_millis(2)).await;

    // 4. Fresh bursts without and with Prometheus scraping /metrics every second.
    let address = bot.health_address().expect("endpoint").to_string();
    let unscraped = fresh_burst(&standin, &inputs, 40_000, None).await;
    let scraped = fresh_burst(&standin, &inputs, 50_000, Some(&address)).await;
    // The cost of one scrape on its own, steadier than the bursts' difference.
    const SCRAPES: u32 = 50;
    let started = Instant::now();
    for _ in 0..SCRAPES {
        http_get(&address, "/metrics").await;
    }
    let per_scrape = started.elapsed() / SCRAPES;

    // 5. Memory once idle, then after a cleanup (what the allocator gives back).
    let peak_mib = status_mib("VmHWM:");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let settled_mib = status_mib("VmRSS:");
    let (status, _) = http_post(
        &address,
        "/cleanup",
        Some("load-test-token-of-at-least-32-characters"),
    )
    .await;
    assert_eq!(status, 200);
    let cleaned_mib = status_mib("VmRSS:");

    let errors = standin
        .calls()
        .iter()
        .filter(|c| c.method == "sendmessage" && !c.text().contains("in the queue"))
        .map(|c| c.text().to_string())
        .collect::<Vec<_>>();
    bot.stop().await;
    std::fs::remove_dir_all(&dir).ok();

    println!(
        "bot load check: {users} users, {} distinct photo(s), {PIPELINE}, {THREADS} threads",
        photos.len()
    );
    println!(
        "  throughput: engine alone {engine_rate:.1} img/s, through the bot {bot_rate:.1} img/s = {:.0} %",
        100.0 * bot_rate / engine_rate
    );
    let bot_cpu_per_image = bot_cpu / users as f64;
    println!(
        "  all at once: {:.2} cores busy; CPU per image: engine alone {:.1} ms, bot {:.1} ms (+{:.0} %), \
         stand-in and simulated users {:.1} ms",
        (bot_cpu + other_cpu) / burst_wall,
        engine_cpu_per_image * 1e3,
        bot_cpu_per_image * 1e3,
        100.0 * (bot_cpu_per_image / engine_cpu_per_image - 1.0),
        other_cpu / users as f64 * 1e3
    );
    for (name, latencies) in [
        ("all at once", &burst),
        ("80 % load", &paced),
        ("cache hits", &hits),
    ] {
        println!(
            "  {name:>11}: reply latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(percentile(latencies, 0.5)),
            ms(percentile(latencies, 0.99)),
            ms(percentile(latencies, 1.0))
        );
    }
    println!(
        "  scraping /metrics every second: {scraped:.1} img/s against {unscraped:.1} unscraped = {:.1} %; \
         one scrape takes {:.2} ms (at 1/s, {:.2} % of one core)",
        100.0 * scraped / unscraped,
        ms(per_scrape),
        per_scrape.as_secs_f64() * 100.0
    );
    println!(
        "  memory ({}), test process (bot + stand-in + baseline engine): peak {peak_mib} MiB, \
         settled {settled_mib} MiB, after POST /cleanup {cleaned_mib} MiB",
        allocator_name()
    );
    assert!(
        errors.is_empty(),
        "users got errors instead of photos: {errors:?}"
    );
    assert_eq!(
        (burst.len(), paced.len(), hits.len()),
        (users, users, users)
    );
}
