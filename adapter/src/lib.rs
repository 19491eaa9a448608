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
mod shared;
mod store;
mod telegram;
mod updates;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use teloxide::dispatching::Dispatcher;
use teloxide::error_handlers::{ErrorHandler, LoggingErrorHandler};
use teloxide::prelude::*;
use teloxide::stop::StopToken;
use teloxide::update_listeners::Polling;
use teloxide::utils::command::BotCommands;
use teloxide::{ApiError, RequestError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{BotConfig, ConfigError, UpdateSource};
pub use updates::commands::Command;

use flow::service::Service;
use operate::metrics::{CleanupTrigger, Metrics};
use operate::operator::Operator;
use operate::{cleanup, http as operator_http, memory_guard, monitor};
use shared::redis::SharedRedis;
use store::{Recorder, RecorderSettings, Store, StoreSettings};
use telegram::client::Telegram;
use updates::{handlers, webhook};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Telegram(#[from] telegram::client::TelegramError),
    #[error("Telegram rejected the token or is unreachable: {0}")]
    GetMe(teloxide::RequestError),
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
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
    Polling {
        stop_token: StopToken,
        dispatcher: JoinHandle<()>,
        conflict: Arc<AtomicBool>,
    },
    Webhook {
        stop: CancellationToken,
        server: JoinHandle<()>,
    },
}

/// A bot taking updates; stop it with [`RunningBot::stop`].
pub struct RunningBot {
    service: Arc<Service>,
    intake: Intake,
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
    let service = Arc::new(Service::new(
        config, telegram, store, recorder, redis, events,
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
            let listener = Polling::builder(service.telegram().bot.clone())
                .timeout(service.config().polling_timeout)
                .delete_webhook()
                .await
                .build();
            poll(&operator, listener)
        }
        UpdateSource::Webhook {
            url,
            listen,
            secret,
        } => {
            let url = url::Url::parse(&url).map_err(|e| StartError::WebhookUrl {
                url: url.clone(),
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
                Arc::clone(&operator),
                me,
                listener,
                &url,
                secret.clone(),
                stop.clone(),
            );
            // Listening first: Telegram may post as soon as the webhook is set.
            if service.telegram().ensure_webhook(&url, &secret).await? {
                tracing::info!(%url, "webhook set");
            }
            Intake::Webhook { stop, server }
        }
    };
    Ok(RunningBot {
        service,
        intake,
        background,
        health_address,
    })
}

fn poll<L>(operator: &Arc<Operator>, mut listener: L) -> Intake
where
    L: teloxide::update_listeners::UpdateListener<Err = RequestError> + Send + 'static,
{
    let stop_token = listener.stop_token();
    let conflict = Arc::new(AtomicBool::new(false));
    let service = operator.service();
    let mut dispatcher = Dispatcher::builder(service.telegram().bot.clone(), handlers::schema())
        .dependencies(dptree::deps![Arc::clone(service), Arc::clone(operator)])
        .error_handler(LoggingErrorHandler::with_custom_text("a handler failed"))
        .build();
    let errors = Arc::new(PollingErrors {
        stop_token: stop_token.clone(),
        conflict: Arc::clone(&conflict),
    });
    let dispatcher = tokio::spawn(async move {
        if let Err(error) = dispatcher
            .try_dispatch_with_listener(listener, errors)
            .await
        {
            tracing::error!(%error, "dispatching stopped");
        }
    });
    Intake::Polling {
        stop_token,
        dispatcher,
        conflict,
    }
}

/// getUpdates errors: logged; a 409 Conflict means another process polls with this token,
/// and two pollers would steal each other's updates, so this one stops.
struct PollingErrors {
    stop_token: StopToken,
    conflict: Arc<AtomicBool>,
}

impl ErrorHandler<RequestError> for PollingErrors {
    fn handle_error(
        self: Arc<Self>,
        error: RequestError,
    ) -> futures::future::BoxFuture<'static, ()> {
        if matches!(
            error,
            RequestError::Api(ApiError::TerminatedByOtherGetUpdates)
        ) && !self.conflict.swap(true, Ordering::Relaxed)
        {
            tracing::error!(
                "another instance is polling Telegram with this token (409 Conflict); long \
                 polling serves one instance only: stopping. Run several instances with \
                 WEBHOOK_URL behind a load balancer"
            );
            self.stop_token.stop();
        } else if !self.conflict.load(Ordering::Relaxed) {
            tracing::error!(%error, "receiving updates failed");
        }
        Box::pin(async {})
    }
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
            Intake::Polling { dispatcher, .. } => !dispatcher.is_finished(),
            Intake::Webhook { server, .. } => !server.is_finished(),
        }
    }

    /// True when polling stopped because another instance polls with the same token.
    pub fn lost_to_another_poller(&self) -> bool {
        match &self.intake {
            Intake::Polling { conflict, .. } => conflict.load(Ordering::Relaxed),
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
            Intake::Polling {
                stop_token,
                dispatcher,
                ..
            } => {
                stop_token.stop();
                if let Err(error) = dispatcher.await {
                    tracing::error!(%error, "the dispatcher task failed");
                }
            }
            Intake::Webhook { stop, server } => {
                stop.cancel();
                if let Err(error) = server.await {
                    tracing::error!(%error, "the webhook server task failed");
                }
            }
        }
        let finished = self.service.finish_requests(grace).await;
        self.background.cancel();
        if !finished {
            tracing::error!("requests still unfinished after {grace:?}: abandoned");
        }
        self.service.shut_down(finished, RECORDER_FLUSH).await;
        tracing::info!("stopped");
        finished
    }
}
