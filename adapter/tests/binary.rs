//! The `prism-bot` binary as an operator runs it: settings from `.env`, a clear message and
//! a failing exit status for bad configuration, and SIGTERM finishing the job in flight.
#![cfg(unix)]

#[path = "../../tests/standin/mod.rs"]
mod standin;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use standin::{StandIn, TOKEN};

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prism-bot-binary-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn bot_command(dir: &PathBuf) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_prism-bot"));
    command
        .current_dir(dir)
        .env_remove("TELEGRAM_BOT_TOKEN")
        .env_remove("TELEGRAM_API_URL")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn");
    command
}

#[test]
fn bad_configuration_is_named_and_fails() {
    let dir = workdir("config");
    let output = bot_command(&dir).output().expect("run prism-bot");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("TELEGRAM_BOT_TOKEN is required"),
        "{stderr}"
    );

    let output = bot_command(&dir)
        .env("TELEGRAM_BOT_TOKEN", "1:x")
        .env("MAX_CONCURRENT_REQUESTS", "zero")
        .output()
        .expect("run prism-bot");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("MAX_CONCURRENT_REQUESTS=\"zero\""),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_dotenv_and_sigterm_finishes_the_job_in_flight() {
    let standin = StandIn::start().await;
    let dir = workdir("sigterm");
    let database = format!("sqlite://{}?mode=rwc", dir.join("bot.sqlite").display());
    let dotenv = format!(
        "TELEGRAM_BOT_TOKEN={TOKEN}\nTELEGRAM_API_URL={}\nDATABASE_URL={database}\nPOLLING_TIMEOUT=1\nTELEGRAM_THROTTLE=false\n",
        standin.url
    );
    std::fs::write(dir.join(".env"), dotenv).expect("write .env");
    let mut child = bot_command(&dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("start prism-bot");
    standin
        .wait_for("the bot to start polling", |c| c.method == "getupdates")
        .await;

    standin.set_download_delay(Duration::from_millis(500));
    let photo = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/photos/dragonfly-1280.jpg"
    ))
    .expect("fixture");
    let file = standin.add_file(&photo);
    let message = standin.photo(7, 7, &file, Some("fit 90"));
    standin
        .wait_for("the job to start", |c| c.method == "getfile")
        .await;
    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(terminated.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "{status}");
    // The photo was delivered before the process exited, and the store file exists.
    let id = message["message_id"].as_i64().expect("id");
    let sent = standin.wait_reply("sendphoto", 7, id).await;
    assert!(sent.files.contains_key("photo"));
    assert!(dir.join("bot.sqlite").exists());
    std::fs::remove_dir_all(dir).ok();
}
