//! Soak (not in CI; `scripts/soak.sh` runs it): photos streamed through the real `prism-bot`
//! binary (SOAK_BOT_BIN, default target/release/prism-bot), in its own process, via the
//! Telegram stand-in in this one, for SOAK_SECONDS (default 1800) under MEMORY_LIMIT_MB =
//! SOAK_MEMORY_LIMIT_MB (default 512). The bot's memory (its own process only, not the
//! stand-in's) is written every SOAK_SAMPLE_SECONDS (default 5) to SOAK_CSV as
//! `seconds,resident_mib,peak_mib,answered`, the peak being the highest since the previous
//! sample; the script judges and plots it. Photos: the JPEGs in SOAK_PHOTOS, or the fixture
//! photos.

mod botkit;
mod common;
mod standin;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command};
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
    let folder =
        std::env::var("SOAK_PHOTOS").map_or_else(|_| common::fixture("photos"), Into::into);
    let photos = common::jpegs_in(&folder);
    assert!(!photos.is_empty(), "no JPEGs in {}", folder.display());
    photos
}

/// Resident memory of process `pid` in MiB: now (VmRSS) and at its highest since the last
/// call (VmHWM, then reset through clear_refs, so a peak between two samples is not missed;
/// where the reset is refused, the peak since start). Zeros once the process is gone.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The bot process; stopped with SIGTERM (a graceful shutdown) when dropped, even when the
/// soak fails half-way.
struct BotProcess(Child);

impl BotProcess {
    fn start(
        standin: &StandIn,
        database: &str,
        work_dir: &std::path::Path,
        limit_mb: &str,
    ) -> Self {
        let binary = std::env::var("SOAK_BOT_BIN").map_or_else(
            |_| {
                PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/target/release/prism-bot"
                ))
            },
            PathBuf::from,
        );
        assert!(
            binary.exists(),
            "{}: build it first (cargo build --release -p prism-bot)",
            binary.display()
        );
        // A clean environment (none of the caller's REDIS_URL or DATABASE_URL) and a working
        // directory without a .env: only these settings.
        let child = Command::new(&binary)
            .env_clear()
            .current_dir(work_dir)
            .envs(botkit::bot_settings(
                standin,
                database,
                &[
                    ("MEMORY_LIMIT_MB", limit_mb),
                    ("HEALTH_ADDR", "off"),
                    ("RATE_LIMIT_PER_USER", "1000000"),
                    ("RUST_LOG", "warn"),
                ],
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
        BotProcess(child)
    }
}

impl Drop for BotProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 30-minute soak: scripts/soak.sh"]
async fn bot_memory_stays_flat_under_a_stream_of_photos() {
    let seconds = env_number("SOAK_SECONDS", 1800);
    let sample_every = Duration::from_secs(env_number("SOAK_SAMPLE_SECONDS", 5));
    let limit_mb = env_number("SOAK_MEMORY_LIMIT_MB", 512).to_string();
    let csv_path = std::env::var("SOAK_CSV").unwrap_or_else(|_| "soak-bot.csv".into());
    let standin = StandIn::start().await;
    let (dir, database) = botkit::database("soak");
    let mut bot = BotProcess::start(&standin, &database, &dir, &limit_mb);
    let files: Vec<FileRef> = photos()
        .iter()
        .map(|bytes| standin.add_file(bytes))
        .collect();

    let mut csv = std::fs::File::create(&csv_path).expect("SOAK_CSV");
    writeln!(csv, "seconds,resident_mib,peak_mib,answered").expect("write");
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
                if let Ok(Some(status)) = bot.0.try_wait() {
                    panic!("the bot exited during the soak: {status}");
                }
                let at = start.elapsed().as_secs_f64();
                let (resident, peak) = memory_mib(bot.0.id());
                writeln!(csv, "{at:.1},{resident:.1},{peak:.1},{answered}").expect("write");
                csv.flush().expect("flush");
                next_sample += sample_every;
            }
        }
        standin.forget_calls();
    }
    drop(bot);
    let _ = std::fs::remove_dir_all(dir);
    println!("soak: {answered} photos answered in {seconds} s");
}
