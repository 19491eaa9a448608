//! # prism-bot
//!
//! A Telegram bot on top of `prism-engine`: people send photos (or image files) with a
//! caption such as `fit 800 gray`, or pick a preset from a keyboard, and get the processed
//! image back. Per-user rate limits, a bounded queue in front of the engine's pool, an
//! in-process results cache, an SQLite store of every request, and admin commands.
//!
//! [`start`] runs the bot inside a tokio runtime; [`RunningBot::stop`] stops taking
//! updates, finishes the jobs in flight and flushes the store.

mod admin;
mod admission;
mod cache;
mod commands;
pub mod config;
mod delivery;
mod handlers;
mod health_http;
mod metrics;
mod ordering;
mod rate_limit;
mod service;
mod spec;
mod store;
mod telegram;

use std::sync::Arc;

use teloxide::dispatching::Dispatcher;
use teloxide::error_handlers::LoggingErrorHandler;
use teloxide::prelude::*;
use teloxide::stop::StopToken;
use teloxide::update_listeners::{Polling, UpdateListener, webhooks};
use teloxide::utils::command::BotCommands;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use commands::Command;
pub use config::{BotConfig, ConfigError, UpdateSource};

use service::Service;
use store::Store;
use telegram::Telegram;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Telegram(#[from] telegram::TelegramError),
    #[error("Telegram rejected the token or is unreachable: {0}")]
    GetMe(teloxide::RequestError),
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error("engine: {0}")]
    Engine(#[from] prism_engine::Error),
    #[error("cannot listen on {address}: {error}")]
    Listen {
        address: std::net::SocketAddr,
        error: std::io::Error,
    },
    #[error("setting the webhook failed: {0}")]
    Webhook(teloxide::RequestError),
}

/// A bot taking updates; stop it with [`RunningBot::stop`].
pub struct RunningBot {
    service: Arc<Service>,
    stop_token: StopToken,
    dispatcher: JoinHandle<()>,
    background: CancellationToken,
}

/// Connects to Telegram and the store, starts the engine, and starts taking updates.
pub async fn start(config: BotConfig) -> Result<RunningBot, StartError> {
    let telegram = Telegram::connect(&config)?;
    let me = telegram
        .bot
        .get_me()
        .send()
        .await
        .map_err(StartError::GetMe)?;
    tracing::info!(username = me.username(), "connected to Telegram");
    let store =
        Store::connect(&config.database_url, config.db_pool_min, config.db_pool_max).await?;
    let updates = config.updates.clone();
    let health_addr = config.health_addr;
    let service = Arc::new(Service::new(config, telegram, store)?);
    if let Err(error) = service
        .telegram
        .bot
        .set_my_commands(Command::bot_commands())
        .send()
        .await
    {
        tracing::warn!(%error, "could not publish the command list");
    }
    let background = CancellationToken::new();
    spawn_maintenance(&service, background.clone());
    if let Some(address) = health_addr {
        health_http::serve(Arc::clone(&service), address, background.clone())
            .await
            .map_err(|error| StartError::Listen { address, error })?;
    }
    let api = service.telegram.bot.clone();
    let (stop_token, dispatcher) = match updates {
        UpdateSource::Polling => {
            let listener = Polling::builder(api)
                .timeout(service.config.polling_timeout)
                .delete_webhook()
                .await
                .build();
            dispatch(&service, listener)
        }
        UpdateSource::Webhook { url, listen } => {
            let url = url::Url::parse(&url).map_err(|e| {
                StartError::Telegram(telegram::TelegramError::ApiUrl(format!(
                    "WEBHOOK_URL {url}: {e}"
                )))
            })?;
            let options = webhooks::Options::new(listen, url);
            let (listener, stopped, router) = webhooks::axum_to_router(api, options)
                .await
                .map_err(StartError::Webhook)?;
            let tcp = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|error| StartError::Listen {
                    address: listen,
                    error,
                })?;
            tokio::spawn(async move {
                if let Err(error) = axum::serve(tcp, router)
                    .with_graceful_shutdown(stopped)
                    .await
                {
                    tracing::error!(%error, "webhook server failed");
                }
            });
            dispatch(&service, listener)
        }
    };
    Ok(RunningBot {
        service,
        stop_token,
        dispatcher,
        background,
    })
}

fn dispatch<L>(service: &Arc<Service>, mut listener: L) -> (StopToken, JoinHandle<()>)
where
    L: UpdateListener + Send + 'static,
    L::Err: std::fmt::Debug + Send,
{
    let stop_token = listener.stop_token();
    let mut dispatcher = Dispatcher::builder(service.telegram.bot.clone(), handlers::schema())
        .dependencies(dptree::deps![Arc::clone(service)])
        .error_handler(LoggingErrorHandler::with_custom_text("a handler failed"))
        .build();
    let task = tokio::spawn(async move {
        let errors = LoggingErrorHandler::with_custom_text("receiving updates failed");
        if let Err(error) = dispatcher
            .try_dispatch_with_listener(listener, errors)
            .await
        {
            tracing::error!(%error, "dispatching stopped");
        }
    });
    (stop_token, task)
}

/// Periodic cleanup of the rate limiter and cache, and health checks that log problems.
fn spawn_maintenance(service: &Arc<Service>, stop: CancellationToken) {
    let cleanup = service.config.cleanup_interval;
    let checks = service.config.health_check_interval;
    let service = Arc::clone(service);
    tokio::spawn(async move {
        let mut cleanup_tick = tokio::time::interval(cleanup);
        let mut health_tick = tokio::time::interval(checks);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = cleanup_tick.tick() => {
                    service.rate_limiter.cleanup();
                    service.cache.cleanup();
                }
                _ = health_tick.tick() => {
                    let (healthy, report) = admin::health(&service).await;
                    if !healthy {
                        tracing::warn!(%report, "health check failed");
                    }
                }
            }
        }
    });
}

impl RunningBot {
    /// False once dispatching has ended by itself (for example Telegram refused the token
    /// after start-up); the process should then stop rather than idle.
    pub fn is_dispatching(&self) -> bool {
        !self.dispatcher.is_finished()
    }

    /// Stops taking updates, lets every accepted request finish (reply and record), stops
    /// the engine and closes the store.
    pub async fn stop(self) {
        self.stop_token.stop();
        if let Err(error) = self.dispatcher.await {
            tracing::error!(%error, "the dispatcher task failed");
        }
        self.service.tasks.close();
        self.service.tasks.wait().await;
        self.background.cancel();
        self.service.engine.shutdown();
        self.service.store.close().await;
        tracing::info!("stopped");
    }
}
