//! A real `prism-bot` process for the tests that need one (crash.rs, abuse.rs): started with
//! only the environment given, its standard output and error in files in its directory.
#![allow(dead_code)] // each test binary uses part of it

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A `prism-bot` process; killed (SIGKILL) when dropped.
pub struct BotProcess(Child);

impl BotProcess {
    pub fn start(env: &HashMap<&str, String>, dir: &Path) -> BotProcess {
        let log = |name: &str| {
            std::fs::File::create(dir.join(name))
                .map(Stdio::from)
                .expect("log file")
        };
        let child = Command::new(env!("CARGO_BIN_EXE_prism-bot"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(dir)
            .envs(env)
            .stdout(log("stdout.log"))
            .stderr(log("stderr.log"))
            .spawn()
            .expect("start prism-bot");
        BotProcess(child)
    }

    /// SIGKILL: no shutdown, no flush; what the process held in memory is gone.
    pub fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// SIGTERM, as a supervisor stops a process; the exit status within `limit`, if any
    /// (waited for off the async runtime).
    pub async fn terminate_within(mut self, limit: Duration) -> Option<ExitStatus> {
        let pid = i32::try_from(self.0.id()).expect("pid");
        // SAFETY: sends a signal to our own child; no memory is involved.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + limit;
            while Instant::now() < deadline {
                if let Ok(Some(status)) = self.0.try_wait() {
                    return Some(status);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            None
        })
        .await
        .expect("waiting for the bot")
    }
}

impl Drop for BotProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An empty directory for one test's process (`suite` names the test file).
pub fn workdir(suite: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prism-bot-{suite}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub fn photo() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/photos/dragonfly-1280.jpg"
    ))
    .expect("fixture")
}

pub fn message_id(update: &Value) -> i64 {
    update["message"]["message_id"]
        .as_i64()
        .expect("message id")
}
