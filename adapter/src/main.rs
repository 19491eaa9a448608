//! `prism-bot`: reads its configuration (environment and `.env`), runs until SIGTERM or
//! Ctrl-C, then shuts down gracefully.

use std::time::Duration;

use std::process::ExitCode;

use anyhow::Context;
use prism_bot::{BotConfig, redact};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // Before any thread exists: one arena, because async threads free buffers the engine's
    // workers allocated; large blocks mapped on their own, so the heap does not creep up over
    // hours (see engine/src/allocator.rs).
    prism_engine::share_one_arena();
    prism_engine::map_large_blocks_separately();
    // SAFETY: no other thread exists yet.
    unsafe { prism_engine::quiet_mesa_device_select() };
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(run()));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Errors quote what failed (a URL, a server's answer): redacted like the log.
            eprintln!("Error: {}", redact::text(&format!("{error:#}")));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    // A missing .env is normal; a malformed one is worth knowing about.
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        eprintln!("ignoring .env: {}", redact::text(&error.to_string()));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(redact::Redacted)
        .init();
    let config = BotConfig::from_env().context("configuration")?;
    redact::hide(config.secrets());
    tracing::info!(?config, "starting");
    let bot = prism_bot::start(config).await.context("start-up")?;
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut check = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut signal => break,
            _ = check.tick() => {
                if !bot.is_dispatching() {
                    tracing::error!("taking updates stopped by itself; shutting down");
                    break;
                }
            }
        }
    }
    tracing::info!("shutting down: finishing requests in flight");
    let lost_to_another_poller = bot.lost_to_another_poller();
    // The grace covers the requests; the records are flushed (or spilled) after it anyway.
    if !bot.stop_within(SHUTDOWN_GRACE).await {
        anyhow::bail!("requests were still in flight after {SHUTDOWN_GRACE:?}; stopped anyway");
    }
    if lost_to_another_poller {
        anyhow::bail!(
            "another instance polls Telegram with this token (409 Conflict): run one poller, \
             or several instances with WEBHOOK_URL and WEBHOOK_SECRET"
        );
    }
    Ok(())
}

/// How long shutdown waits for requests in flight (Telegram retries included); below
/// systemd's and Kubernetes' usual grace periods.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
