//! `prism-bot`: reads its configuration (environment and `.env`), runs until SIGTERM or
//! Ctrl-C, then shuts down gracefully.

use anyhow::Context;
use prism_bot::BotConfig;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    // Before any thread exists: async threads free buffers the engine's workers allocated,
    // and one arena avoids page faults and keeps freed memory reusable
    // (see prism_engine::share_one_arena).
    prism_engine::share_one_arena();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    // A missing .env is normal; a malformed one is worth knowing about.
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        eprintln!("ignoring .env: {error}");
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = BotConfig::from_env().context("configuration")?;
    if std::env::var_os("REDIS_URL").is_some() {
        tracing::warn!("REDIS_URL is set, but this build caches in-process only");
    }
    tracing::info!(?config, "starting");
    let bot = prism_bot::start(config).await.context("start-up")?;
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    bot.stop().await;
    Ok(())
}

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
