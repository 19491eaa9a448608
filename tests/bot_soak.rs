//! Soak (not in CI; `scripts/soak.sh` runs it): photos streamed through the bot, via the
//! Telegram stand-in, for SOAK_SECONDS (default 1800) under MEMORY_LIMIT_MB = SOAK_MEMORY_LIMIT_MB
//! (default 512). Resident memory of this process (bot and stand-in) is written every
//! SOAK_SAMPLE_SECONDS (default 5) to SOAK_CSV as `seconds,resident_mib,answered`; the
//! script judges and plots it. Photos: the JPEGs in SOAK_PHOTOS, or the fixture photos.

mod botkit;
mod standin;

use std::io::Write;
use std::time::{Duration, Instant};

use standin::{FileRef, StandIn};

/// Photos sent at once, then waited for: more than the bot runs at once, so its queue fills.
const ROUND: usize = 24;
/// Users taking turns, so the per-user rate limit never interferes.
const USERS: i64 = 500;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn photos() -> Vec<Vec<u8>> {
    let folder = std::env::var("SOAK_PHOTOS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/photos").into());
    let mut paths: Vec<_> = std::fs::read_dir(&folder)
        .expect("SOAK_PHOTOS folder")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "jpg" || e == "jpeg"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no JPEGs in {folder}");
    paths
        .iter()
        .map(|p| std::fs::read(p).expect("photo"))
        .collect()
}

fn resident_mib() -> f64 {
    let pages: f64 = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 30-minute soak: scripts/soak.sh"]
async fn bot_memory_stays_flat_under_a_stream_of_photos() {
    let seconds = env_number("SOAK_SECONDS", 1800);
    let sample_every = Duration::from_secs(env_number("SOAK_SAMPLE_SECONDS", 5));
    let limit_mb = env_number("SOAK_MEMORY_LIMIT_MB", 512).to_string();
    let csv_path = std::env::var("SOAK_CSV").unwrap_or_else(|_| "soak-bot.csv".into());
    // As prism-bot's main does.
    prism_engine::share_one_arena();

    let standin = StandIn::start().await;
    let (dir, database) = botkit::database("soak");
    let bot = botkit::start_bot(
        &standin,
        &database,
        &[
            ("MEMORY_LIMIT_MB", limit_mb.as_str()),
            ("HEALTH_ADDR", "off"),
            ("RATE_LIMIT_PER_USER", "1000000"),
        ],
    )
    .await;
    let files: Vec<FileRef> = photos()
        .iter()
        .map(|bytes| standin.add_file(bytes))
        .collect();

    let mut csv = std::fs::File::create(&csv_path).expect("SOAK_CSV");
    writeln!(csv, "seconds,resident_mib,answered").expect("write");
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut next_sample = start;
    let (mut sent, mut answered) = (0u64, 0u64);
    // Rounds: send a batch, wait for every answer, then forget the stand-in's record of them.
    while Instant::now() < deadline {
        let mut round = Vec::with_capacity(ROUND);
        for _ in 0..ROUND {
            let user = 1000 + (sent as i64 % USERS);
            let file = &files[sent as usize % files.len()];
            // Sizes cycle over 600 values, so results keep missing the cache and refilling it.
            let caption = format!("fit {} jpeg 85", 600 + sent % 600);
            let message = standin.photo(user, user, file, Some(&caption));
            round.push((user, message["message_id"].as_i64().expect("id")));
            sent += 1;
        }
        for (user, id) in round {
            let reply = standin.wait_reply("sendphoto", user, id).await;
            assert!(
                reply.files.contains_key("photo"),
                "a fresh result is uploaded"
            );
            answered += 1;
            if Instant::now() >= next_sample {
                let at = start.elapsed().as_secs_f64();
                writeln!(csv, "{at:.1},{:.1},{answered}", resident_mib()).expect("write");
                csv.flush().expect("flush");
                next_sample += sample_every;
            }
        }
        standin.forget_calls();
    }
    bot.stop().await;
    let _ = std::fs::remove_dir_all(dir);
    println!("soak: {answered} photos answered in {seconds} s");
}
