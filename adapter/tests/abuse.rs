//! A real `prism-bot` process against what an attacker (or a broken client) does to its
//! HTTP side and what a debug log would show: a client that stops half-way through a request
//! neither blocks SIGTERM nor loses a record; bodies are refused by their secret before they
//! are read, and by their size; no secret, password or token reaches the log at debug level
//! or a start-up error.
#![cfg(unix)]

mod botprocess;
#[path = "../../tests/faultproxy/mod.rs"]
mod faultproxy;
#[path = "../../tests/scale/mod.rs"]
mod scale;
#[path = "../../tests/standin/mod.rs"]
mod standin;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use botprocess::{BotProcess, message_id, photo, workdir};
use sqlx::Connection;
use standin::{StandIn, TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A webhook instance on `port` with its files in `dir`, then `extra` on top.
fn webhook_settings(
    standin: &StandIn,
    dir: &Path,
    port: u16,
    extra: &[(&'static str, String)],
) -> HashMap<&'static str, String> {
    let mut env: HashMap<&str, String> = [
        ("TELEGRAM_BOT_TOKEN", TOKEN.to_string()),
        ("TELEGRAM_API_URL", standin.url.clone()),
        ("TELEGRAM_THROTTLE", "false".into()),
        ("HEALTH_ADDR", "off".into()),
        ("THREAD_POOL_SIZE", "1".into()),
        ("WEBHOOK_URL", "http://127.0.0.1:9/telegram".into()),
        ("WEBHOOK_LISTEN", format!("127.0.0.1:{port}")),
        ("WEBHOOK_SECRET", scale::SECRET.into()),
        (
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("bot.sqlite").display()),
        ),
        (
            "RECORD_SPILL_PATH",
            dir.join("records.spill").display().to_string(),
        ),
        (
            "INTAKE_QUEUE_PATH",
            dir.join("intake.sqlite").display().to_string(),
        ),
        ("RUST_LOG", "warn".into()),
    ]
    .into_iter()
    .collect();
    env.extend(extra.iter().cloned());
    env
}

/// Sends `request` raw and reads the status line's code (0 when the server closed first).
async fn status_of(port: u16, request: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.write_all(request).await.expect("send");
    let mut answer = vec![0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("an answer without the body being read")
        .unwrap_or(0);
    std::str::from_utf8(&answer[..read])
        .ok()
        .and_then(|text| text.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// Starts the bot, waits for its webhook, and has it answer one photo.
async fn start_and_answer_a_photo(
    standin: &StandIn,
    env: &HashMap<&'static str, String>,
    dir: &Path,
    port: u16,
) -> BotProcess {
    let bot = BotProcess::start(env, dir);
    standin
        .wait_for("the webhook to be set", |c| c.method == "setwebhook")
        .await;
    let hook = format!("http://127.0.0.1:{port}/telegram");
    let file = standin.add_file(&photo());
    let update = standin.photo_update(100, 100, &file, Some("fit 64"));
    assert_eq!(standin.deliver_to(&hook, &update).await, 200);
    standin
        .wait_reply("sendphoto", 100, message_id(&update))
        .await;
    bot
}

async fn records_in(database: &Path) -> i64 {
    let url = format!("sqlite://{}", database.display());
    let mut db = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("the bot's database");
    sqlx::query_scalar("SELECT COUNT(*) FROM requests")
        .fetch_one(&mut db)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_neither_hold_sigterm_nor_cost_a_record() {
    let standin = StandIn::start().await;
    let dir = workdir("abuse", "stalled");
    let port = scale::free_port();
    let bot = start_and_answer_a_photo(
        &standin,
        &webhook_settings(&standin, &dir, port, &[]),
        &dir,
        port,
    )
    .await;

    // Without the secret, a body announced as 10 MB is refused before a byte of it is read.
    let unsigned = "POST /telegram HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n\
                    Content-Length: 10000000\r\n\r\n";
    assert_eq!(status_of(port, unsigned.as_bytes()).await, 401);
    // With it, a body over 1 MiB is refused.
    let mut oversized = format!(
        "POST /telegram HTTP/1.1\r\nHost: bot\r\nX-Telegram-Bot-Api-Secret-Token: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        scale::SECRET,
        2 << 20
    )
    .into_bytes();
    oversized.extend(std::iter::repeat_n(b' ', 2 << 20));
    assert_eq!(status_of(port, &oversized).await, 413);

    // Two clients stop half-way: one in its head, one in its body (after the secret).
    let mut half_head = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    half_head
        .write_all(b"POST /telegram HTTP/1.1\r\nHost: bot\r\n")
        .await
        .expect("send");
    let mut half_body = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "POST /telegram HTTP/1.1\r\nHost: bot\r\nX-Telegram-Bot-Api-Secret-Token: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"update_id\":",
        scale::SECRET
    );
    half_body.write_all(head.as_bytes()).await.expect("send");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let status = bot
        .terminate_within(Duration::from_secs(40))
        .await
        .expect("SIGTERM ended the process within 40 s");
    assert!(status.success(), "exit status {status}");
    assert_eq!(records_in(&dir.join("bot.sqlite")).await, 1);
    drop((half_head, half_body));
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debug_log_and_start_up_errors_show_no_secret() {
    let standin = StandIn::start().await;
    let dir = workdir("abuse", "debug-log");
    let port = scale::free_port();
    let (webhook_secret, cleanup_token) = (
        "webhook-secret-that-must-never-be-logged",
        "cleanup-token-that-must-never-be-logged",
    );
    let (database_password, redis_password) = (
        "database-password-never-logged",
        "redis-password-never-logged",
    );
    // Nothing listens on these ports: connection errors, which quote what they tried, are
    // logged all the time the bot runs.
    let (database_port, redis_port) = (scale::free_port(), scale::free_port());
    let env = webhook_settings(
        &standin,
        &dir,
        port,
        &[
            ("RUST_LOG", "debug".into()),
            ("WEBHOOK_SECRET", webhook_secret.into()),
            ("CLEANUP_TOKEN", cleanup_token.into()),
            ("HEALTH_ADDR", "127.0.0.1:0".into()),
            (
                "DATABASE_URL",
                format!("postgres://prism:{database_password}@127.0.0.1:{database_port}/prism"),
            ),
            (
                "REDIS_URL",
                format!("redis://:{redis_password}@127.0.0.1:{redis_port}/0"),
            ),
        ],
    );
    let bot = start_and_answer_a_photo(&standin, &env, &dir, port).await;
    // A few rounds of reconnecting to the missing servers.
    tokio::time::sleep(Duration::from_secs(3)).await;
    bot.terminate_within(Duration::from_secs(40)).await;

    // A configuration error quotes the URL it refuses.
    let refused = Command::new(env!("CARGO_BIN_EXE_prism-bot"))
        .env_clear()
        .current_dir(&dir)
        .env("TELEGRAM_BOT_TOKEN", TOKEN)
        .env(
            "DATABASE_URL",
            format!("mysql://prism:{database_password}@db/prism"),
        )
        .output()
        .expect("run prism-bot");
    assert!(!refused.status.success());
    let refusal = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(refusal.contains("DATABASE_URL"), "{refusal}");
    // A guessable secret is refused at start, naming the variable (and not showing it).
    let weak = Command::new(env!("CARGO_BIN_EXE_prism-bot"))
        .env_clear()
        .current_dir(&dir)
        .env("TELEGRAM_BOT_TOKEN", TOKEN)
        .env("WEBHOOK_URL", "https://bot.example.com/hook")
        .env("WEBHOOK_SECRET", "short-secret")
        .output()
        .expect("run prism-bot");
    assert!(!weak.status.success());
    let weak = String::from_utf8_lossy(&weak.stderr).to_string();
    assert!(
        weak.contains("WEBHOOK_SECRET") && weak.contains("at least 32"),
        "{weak}"
    );
    assert!(!weak.contains("short-secret"), "{weak}");

    let log = ["stdout.log", "stderr.log"]
        .iter()
        .map(|name| std::fs::read_to_string(dir.join(name)).unwrap_or_default())
        .collect::<String>()
        + &refusal;
    assert!(log.contains("DEBUG"), "a debug-level log: {log}");
    let token_key = TOKEN.split_once(':').map_or(TOKEN, |(_, key)| key);
    for secret in [
        token_key,
        webhook_secret,
        cleanup_token,
        database_password,
        redis_password,
    ] {
        let shown = log.lines().find(|line| line.contains(secret));
        assert!(shown.is_none(), "{secret} in the log: {shown:?}");
    }
    std::fs::remove_dir_all(dir).ok();
}
