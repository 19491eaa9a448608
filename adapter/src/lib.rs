//! # prism-bot
//!
//! A Telegram bot on top of `prism-engine`: people send photos (or image files) with a
//! caption such as `fit 800 gray`, or pick a preset from a keyboard, and get the processed
//! image back. Per-user rate limits, a bounded queue in front of the engine's pool, a
//! results cache, a store of every request (SQLite, or PostgreSQL), and admin commands. One
//! instance runs with embedded parts; several share Redis and PostgreSQL behind a load
//! balancer and behave as one.
//!
//! [`start`] runs the bot inside a tokio runtime; [`RunningBot::stop`] stops taking
//! updates, finishes the jobs in flight and flushes the store.

mod clock;
pub mod config;
mod flow;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod operate;
pub mod redact;
mod serving;
mod shared;
mod store;
mod telegram;
mod updates;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use teloxide::prelude::*;
use teloxide::utils::command::BotCommands;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{BotConfig, ConfigError, UpdateSource};
pub use updates::commands::Command;

use flow::inbox::{Inbox, InboxError};
use flow::service::Service;
use operate::metrics::{CleanupTrigger, Metrics};
use operate::operator::Operator;
use operate::{cleanup, http as operator_http, memory_guard, monitor};
use shared::redis::SharedRedis;
use store::IntakeQueue;
use store::{Recorder, RecorderSettings, Store, StoreSettings};
use telegram::client::Telegram;
use updates::polling::{self, Poller};
use updates::{consumer, webhook};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Telegram(#[from] telegram::client::TelegramError),
    #[error("Telegram rejected the token or is unreachable: {0}")]
    GetMe(teloxide::RequestError),
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error("INTAKE_QUEUE_PATH: {0}")]
    Inbox(#[from] InboxError),
    #[error("{0}")]
    Redis(#[from] shared::redis::RedisConfigError),
    #[error("engine: {0}")]
    Engine(#[from] prism_engine::Error),
    #[error("cannot listen on {address}: {error}")]
    Listen {
        address: std::net::SocketAddr,
        error: std::io::Error,
    },
    #[error("WEBHOOK_URL {url}: {reason}")]
    WebhookUrl { url: String, reason: String },
}

/// How updates come in, and how to stop them.
enum Intake {
    Polling(Poller),
    Webhook {
        stop: CancellationToken,
        server: JoinHandle<()>,
    },
}

/// A bot taking updates; stop it with [`RunningBot::stop`].
pub struct RunningBot {
    service: Arc<Service>,
    intake: Intake,
    /// Takes updates out of the inbox; stopped before the requests in flight are finished.
    consumer: (CancellationToken, JoinHandle<()>),
    background: CancellationToken,
    /// Where the operator endpoint listens (HEALTH_ADDR, with the port picked when it was 0).
    health_address: Option<std::net::SocketAddr>,
}

/// How long shutdown gives the recorder to write what is queued before spilling it to the
/// local file (replayed at the next start).
const RECORDER_FLUSH: Duration = Duration::from_secs(5);

/// Connects to Telegram, the store and Redis, starts the engine, and starts taking updates.
/// Neither Redis nor PostgreSQL has to answer yet: the bot serves without them and uses them
/// as soon as they do.
pub async fn start(config: BotConfig) -> Result<RunningBot, StartError> {
    let telegram = Telegram::connect(&config)?;
    let me = telegram
        .bot
        .get_me()
        .send()
        .await
        .map_err(StartError::GetMe)?;
    tracing::info!(username = me.username(), "connected to Telegram");
    let store = Store::connect(&StoreSettings {
        url: config.database_url.clone(),
        replica_url: config.database_replica_url.clone(),
        pool_min: config.db_pool_min,
        pool_max: config.db_pool_max,
    })
    .await?;
    let recorder = Recorder::start(
        store.clone(),
        RecorderSettings {
            queue_capacity: config.record_queue_size,
            spill_path: config.record_spill_path.clone(),
            spill_max_bytes: config.record_spill_max_bytes,
            retention: config.record_retention,
            cleanup_interval: config.cleanup_interval,
            instance_id: config.instance_id.clone(),
        },
    );
    let redis = match &config.redis_url {
        Some(url) => Some(Arc::new(SharedRedis::connect(url, &config.redis_prefix)?)),
        None => None,
    };
    let updates = config.updates.clone();
    let health_addr = config.health_addr;
    let metrics = Arc::new(Metrics::new(config.performance_monitoring));
    let events = Arc::clone(&metrics);
    let queue = IntakeQueue::open(&config.intake_queue_path).await?;
    let inbox = Inbox::open(
        redis.clone(),
        queue,
        &config.instance_id,
        config.intake_max_backlog,
        config.intake_visibility,
    )
    .await?;
    let service = Arc::new(Service::new(
        config,
        telegram,
        store,
        recorder,
        redis,
        Arc::new(inbox),
        events,
    )?);
    let operator = Arc::new(Operator::new(Arc::clone(&service), metrics));
    service.start_intake();
    if let Err(error) = service
        .telegram()
        .bot
        .set_my_commands(Command::bot_commands())
        .send()
        .await
    {
        tracing::warn!(%error, "could not publish the command list");
    }
    let background = CancellationToken::new();
    if let Some(redis) = service.redis() {
        redis.spawn_probe(background.clone());
    }
    spawn_cleanup(&operator, background.clone());
    monitor::spawn(Arc::clone(&operator), background.clone());
    memory_guard::spawn(Arc::clone(&operator), background.clone());
    let health_address = match health_addr {
        Some(address) => Some(
            operator_http::serve(Arc::clone(&operator), address, background.clone())
                .await
                .map_err(|error| StartError::Listen { address, error })?,
        ),
        None => None,
    };
    let intake = match updates {
        UpdateSource::Polling => {
            if service.is_shared() {
                tracing::warn!(
                    "REDIS_URL with long polling: polling serves one instance only and removes \
                     any webhook; run several instances with WEBHOOK_URL"
                );
            }
            Intake::Polling(polling::start(Arc::clone(&service)).await)
        }
        UpdateSource::Webhook {
            url,
            listen,
            secret,
            max_connections,
        } => {
            let url = url::Url::parse(&url).map_err(|e| StartError::WebhookUrl {
                url: redact::url(&url),
                reason: e.to_string(),
            })?;
            let listener = webhook::bind(listen)
                .await
                .map_err(|error| StartError::Listen {
                    address: listen,
                    error,
                })?;
            let stop = CancellationToken::new();
            let server = webhook::serve(
                Arc::clone(&service),
                listener,
                &url,
                secret.clone(),
                stop.clone(),
            );
            // Listening first: Telegram may post as soon as the webhook is set.
            service
                .telegram()
                .set_webhook(&url, &secret, max_connections)
                .await?;
            tracing::info!(url = %redact::url(url.as_str()), "webhook set");
            Intake::Webhook { stop, server }
        }
    };
    let consumer_stop = CancellationToken::new();
    let consumer = consumer::spawn(
        Arc::clone(&operator),
        me,
        consumer_stop.clone(),
        background.clone(),
    );
    Ok(RunningBot {
        service,
        intake,
        consumer: (consumer_stop, consumer),
        background,
        health_address,
    })
}

/// The cleanup every CLEANUP_INTERVAL (record retention runs in the recorder).
fn spawn_cleanup(operator: &Arc<Operator>, stop: CancellationToken) {
    let operator = Arc::clone(operator);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(operator.config().cleanup_interval);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {
                    cleanup::run_blocking(Arc::clone(&operator), CleanupTrigger::interval).await;
                }
            }
        }
    });
}

impl RunningBot {
    /// The operator endpoint's address (HEALTH_ADDR; `None` when turned off).
    pub fn health_address(&self) -> Option<std::net::SocketAddr> {
        self.health_address
    }

    /// The engine this bot runs on (clones share its pool), for embedders and tests.
    pub fn engine(&self) -> prism_engine::Engine {
        self.service.engine().clone()
    }

    /// False once update intake has ended by itself (for example Telegram refused the token
    /// after start-up, or another instance polls); the process should then stop.
    pub fn is_dispatching(&self) -> bool {
        match &self.intake {
            Intake::Polling(poller) => !poller.task.is_finished(),
            Intake::Webhook { server, .. } => !server.is_finished(),
        }
    }

    /// True when polling stopped because another instance polls with the same token.
    pub fn lost_to_another_poller(&self) -> bool {
        match &self.intake {
            Intake::Polling(poller) => poller.conflict.load(Ordering::Relaxed),
            Intake::Webhook { .. } => false,
        }
    }

    /// Stops taking updates (answering those already received), lets every accepted request
    /// finish (reply and record), stops the engine, and flushes the records (what the
    /// database does not take in time is spilled to the local file).
    pub async fn stop(self) {
        self.stop_within(Duration::MAX).await;
    }

    /// As [`RunningBot::stop`], but requests still unfinished after `grace` are abandoned;
    /// the records of every request are flushed or spilled either way. False when some
    /// requests were abandoned.
    pub async fn stop_within(self, grace: Duration) -> bool {
        match self.intake {
            Intake::Polling(poller) => {
                poller.stop.cancel();
                if let Err(error) = poller.task.await {
                    tracing::error!(%error, "the polling task failed");
                }
            }
            Intake::Webhook { stop, server } => {
                stop.cancel();
                if let Err(error) = server.await {
                    tracing::error!(%error, "the webhook server task failed");
                }
            }
        }
        // Updates not taken yet stay in the inbox for the next run (or another instance).
        let (stop_consuming, consumer) = self.consumer;
        stop_consuming.cancel();
        if let Err(error) = consumer.await {
            tracing::error!(%error, "the inbox consumer failed");
        }
        let finished = self.service.finish_requests(grace).await;
        self.background.cancel();
        if !finished {
            tracing::error!("requests still unfinished after {grace:?}: abandoned");
        }
        self.service.shut_down(finished, RECORDER_FLUSH).await;
        self.service.inbox().close().await;
        tracing::info!("stopped");
        finished
    }
}
