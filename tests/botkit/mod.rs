#![allow(dead_code)] // each test binary uses a different subset

//! Starting a bot against the Telegram stand-in, for the end-to-end tests (one polling
//! instance on its own SQLite file, settings overridable per test), and reading its /metrics.

use prism_bot::{BotConfig, RunningBot};
use std::collections::HashMap;
use std::path::PathBuf;

use std::time::{Duration, Instant};

use crate::standin::{StandIn, TOKEN, http_get};

pub fn photo_bytes() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/photos/dragonfly-1280.jpg"
    ))
    .expect("fixture")
}

/// The 12-megapixel photograph (4000x3000 class) of the fixtures.
pub fn photo_12mp_bytes() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/photos/dragonfly-12mp.jpg"
    ))
    .expect("fixture")
}

/// A fresh database path per test.
pub fn database(test: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("prism-bot-e2e-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.join("bot.sqlite").display());
    (dir, url)
}

/// The settings every test bot runs with (stand-in, database, spill file next to it, two
/// workers), then `settings` on top: what the in-process bots read, and what the soak gives
/// the `prism-bot` binary as its environment.
pub fn bot_settings(
    standin: &StandIn,
    database_url: &str,
    settings: &[(&str, &str)],
) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("TELEGRAM_BOT_TOKEN", TOKEN),
        ("TELEGRAM_API_URL", standin.url.as_str()),
        ("DATABASE_URL", database_url),
        ("POLLING_TIMEOUT", "1"),
        ("TELEGRAM_THROTTLE", "false"),
        ("THREAD_POOL_SIZE", "2"),
        ("ADMIN_IDS", "1"),
        ("HEALTH_ADDR", "127.0.0.1:0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    // Records the store cannot take yet would spill next to the test's database.
    let spill = database_url
        .trim_start_matches("sqlite://")
        .trim_end_matches("?mode=rwc")
        .to_string()
        + ".spill";
    env.insert("RECORD_SPILL_PATH".into(), spill);
    env.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    // Accepted updates are kept beside the spill file: each bot its own queue.
    if !env.contains_key("INTAKE_QUEUE_PATH") {
        let intake = format!("{}.intake", env["RECORD_SPILL_PATH"]);
        env.insert("INTAKE_QUEUE_PATH".into(), intake);
    }
    env
}

pub async fn start_bot(
    standin: &StandIn,
    database_url: &str,
    settings: &[(&str, &str)],
) -> RunningBot {
    let env = bot_settings(standin, database_url, settings);
    let config = BotConfig::from_lookup(|name| env.get(name).cloned()).expect("config");
    prism_bot::start(config).await.expect("bot starts")
}

/// The value of one series of the bot's /metrics (`name{labels}` exactly as exposed).
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// Polls the bot's /metrics at `address` until `series` has a value that `wanted` accepts
/// (10 s at most); whether it came.
pub async fn wait_for_metric(address: &str, series: &str, wanted: impl Fn(f64) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let (_, metrics) = http_get(address, "/metrics").await;
        if sample(&metrics, series).is_some_and(&wanted) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
