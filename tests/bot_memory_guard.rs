//! The memory guard, in a test binary of its own so that this process's resident memory is
//! the bot's (and the stand-in's) alone: above MEMORY_LIMIT_MB new work waits, one request
//! at a time still runs, and everything finishes once memory is back under the limit.
//! Then a stream of 12 MP photos under MEMORY_LIMIT_MB=300, with the peak reported.

mod botkit;
mod standin;

use std::time::{Duration, Instant};

use botkit::{database, photo_12mp_bytes, photo_bytes, sample, start_bot, wait_for_metric};
use serde_json::Value;
use standin::{StandIn, http_get};

fn resident_mib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| (pages * 4096) >> 20)
}

fn message_id(message: &Value) -> i64 {
    message["message_id"].as_i64().expect("message id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limit_work_waits_and_finishes_afterwards() {
    let _serial = SERIAL.lock().await;
    let standin = StandIn::start().await;
    let (dir, db) = database("memory-guard");
    // Room for the bot's own work, but not for the ballast below.
    let limit = resident_mib() + 150;
    let bot = start_bot(
        &standin,
        &db,
        &[
            ("MEMORY_LIMIT_MB", &limit.to_string()),
            ("MAX_CONCURRENT_REQUESTS", "4"),
        ],
    )
    .await;
    let address = bot.health_address().expect("endpoint").to_string();
    let ballast = vec![1u8; ((limit + 100) << 20) as usize];
    std::hint::black_box(&ballast);
    assert!(
        wait_for_metric(&address, "prism_memory_guard_active", |v| v == 1.0).await,
        "the guard trips above {limit} MiB"
    );
    standin.hold_downloads();
    let file = standin.add_file(&photo_bytes());
    let messages: Vec<(i64, Value)> = (0..4)
        .map(|i| {
            let user = 300 + i;
            let caption = format!("fit {}", 100 + i);
            (user, standin.photo(user, user, &file, Some(&caption)))
        })
        .collect();
    // One request runs, the others wait for a slot.
    assert!(wait_for_metric(&address, "prism_requests_in_progress", |v| v == 1.0).await);
    assert!(
        wait_for_metric(&address, r#"prism_queue_depth{queue="admission"}"#, |v| v
            == 3.0)
        .await,
        "three requests held back"
    );
    // Held back for as long as the guard holds: only its letting go releases them, and it
    // has not let go in between (still active, engaged once).
    let (_, metrics) = http_get(&address, "/metrics").await;
    assert_eq!(sample(&metrics, "prism_requests_in_progress"), Some(1.0));
    assert_eq!(sample(&metrics, "prism_memory_guard_active"), Some(1.0));
    assert_eq!(
        sample(&metrics, "prism_memory_guard_engagements_total"),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, r#"prism_cleanups_total{trigger="memory_guard"}"#),
        Some(1.0)
    );
    drop(ballast);
    assert!(
        wait_for_metric(&address, "prism_memory_guard_active", |v| v == 0.0).await,
        "the guard lets go once memory is back"
    );
    assert!(
        wait_for_metric(&address, "prism_requests_in_progress", |v| v == 4.0).await,
        "full concurrency again"
    );
    standin.release_downloads();
    for (user, message) in &messages {
        standin
            .wait_reply("sendphoto", *user, message_id(message))
            .await;
    }
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

/// The issue's bar: with MEMORY_LIMIT_MB=300 and a stream of 12 MP photos, resident memory
/// stays under the limit and every request is answered. Memory is reported, not asserted
/// (it depends on the allocator and the machine); answers are asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_12mp_photos_under_a_300_mib_limit() {
    // After the other test's ballast is gone (both run in this process).
    let _serial = SERIAL.lock().await;
    let standin = StandIn::start().await;
    let (dir, db) = database("memory-stream");
    let bot = start_bot(&standin, &db, &[("MEMORY_LIMIT_MB", "300")]).await;
    let address = bot.health_address().expect("endpoint").to_string();
    let files: Vec<_> = (0..3)
        .map(|_| standin.add_file(&photo_12mp_bytes()))
        .collect();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(resident_mib(), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let started = Instant::now();
    let mut sent = Vec::new();
    for round in 0..4 {
        for (index, file) in files.iter().enumerate() {
            let user = 1000 + round * 10 + index as i64;
            let caption = format!("fit {}", 1600 + round * 100);
            sent.push((user, standin.photo(user, user, file, Some(&caption))));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for (user, message) in &sent {
        standin
            .wait_reply("sendphoto", *user, message_id(message))
            .await;
    }
    let wall = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.join().expect("sampler");
    let (_, metrics) = http_get(&address, "/metrics").await;
    let engaged = sample(&metrics, "prism_memory_guard_engagements_total").unwrap_or(0.0);
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
    println!(
        "memory guard: {} 12 MP photos in {:.1} s under MEMORY_LIMIT_MB=300: peak resident {} MiB \
         (whole test process: bot, stand-in and its copies of the photos), guard engaged {} times",
        sent.len(),
        wall.as_secs_f64(),
        peak.load(std::sync::atomic::Ordering::Relaxed),
        engaged
    );
}

/// The two tests measure this process's memory: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
