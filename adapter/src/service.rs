//! The request flow: rate limit → cache → admission → download → engine → reply → record.
//! `accept` runs on the dispatcher's task and only does quick checks; the work is spawned,
//! so a long job never blocks its chat's commands and pixels never touch the runtime.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prism_engine::{BackendUsed, Engine, EngineConfig, Error as EngineError, ErrorKind};
use teloxide::RequestError;
use teloxide::types::{ChatId, FileId, MessageId, UserId};
use tokio_util::task::TaskTracker;

use crate::admission::{Admission, Ticket};
use crate::cache::{self, CachedResult, MemoryCache};
use crate::config::{BotConfig, TELEGRAM_DOWNLOAD_LIMIT, TELEGRAM_UPLOAD_LIMIT};
use crate::delivery::{self, Delivery};
use crate::metrics::{Metrics, RequestTimings};
use crate::ordering::{ChatOrder, Turn};
use crate::rate_limit::{Decision, RateLimiter};
use crate::spec::Spec;
use crate::store::{Dimensions, RequestRecord, Store};
use crate::telegram::{ResultFile, Telegram, TelegramError};

/// Everything a handler needs; one per running bot.
pub struct Service {
    pub config: BotConfig,
    pub engine: Engine,
    pub telegram: Telegram,
    pub cache: MemoryCache,
    pub store: Store,
    pub rate_limiter: RateLimiter,
    pub admission: Admission,
    pub order: Arc<ChatOrder>,
    pub metrics: Arc<Metrics>,
    /// Spawned jobs and store writes; shutdown waits for all of them.
    pub tasks: TaskTracker,
}

/// An image the user sent (a photo's largest size, or an image document).
#[derive(Debug, Clone)]
pub struct ImageInput {
    pub file_id: FileId,
    pub unique_id: String,
    /// `None` when Telegram did not say.
    pub size: Option<u64>,
    pub is_document: bool,
}

/// One request to process an image.
#[derive(Debug, Clone)]
pub struct ImageRequest {
    pub chat: ChatId,
    pub reply_to: MessageId,
    pub user: UserId,
    pub username: Option<String>,
    pub input: ImageInput,
    pub spec: Spec,
    pub arrived: Instant,
}

/// A result ready to go back to the user, and what to record about it.
struct Outcome<'a> {
    key: &'a str,
    result: &'a CachedResult,
    timings: RequestTimings,
    input: Option<Dimensions>,
    cache_hit: bool,
}

/// Why a request ended without a result; the kind is what the store and stats count.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Telegram(#[from] TelegramError),
    #[error("rate limited")]
    RateLimited,
    #[error("queue full")]
    QueueFull,
    #[error("shutting down")]
    ShuttingDown,
}

impl Failure {
    fn kind(&self) -> String {
        match self {
            Failure::Engine(error) => error.kind().to_string(),
            Failure::Telegram(TelegramError::TooLarge { .. }) => "too_large".into(),
            Failure::Telegram(_) => "telegram".into(),
            Failure::RateLimited => "rate_limited".into(),
            Failure::QueueFull => "queue_full".into(),
            Failure::ShuttingDown => "shutting_down".into(),
        }
    }

    /// What the user reads.
    fn message(&self) -> String {
        match self {
            Failure::Engine(error) => match error.kind() {
                ErrorKind::Malformed | ErrorKind::Unsupported => {
                    format!("I couldn't read that image: {error}. Send a JPEG, PNG, WebP or GIF.")
                }
                ErrorKind::Limits => format!("That image is too large for me: {error}."),
                ErrorKind::Pipeline => format!("{error}. Try e.g. `{}`.", crate::spec::EXAMPLE),
                ErrorKind::Overloaded => {
                    "I'm very busy right now; please try again in a minute.".into()
                }
                ErrorKind::ShuttingDown => {
                    "I'm restarting; please send it again in a minute.".into()
                }
                ErrorKind::Config | ErrorKind::Internal => {
                    "Something went wrong on my side (it has been logged); please try again.".into()
                }
            },
            Failure::Telegram(TelegramError::TooLarge { limit, .. })
                if *limit == TELEGRAM_UPLOAD_LIMIT =>
            {
                "The result is larger than the 50 MB a bot may send; try JPEG or a smaller size."
                    .into()
            }
            Failure::Telegram(TelegramError::TooLarge { limit, .. }) => format!(
                "That file is larger than {} MB, the most a bot may download from Telegram.",
                limit >> 20
            ),
            Failure::Telegram(_) => {
                "I couldn't fetch or send the image through Telegram; please try again.".into()
            }
            Failure::RateLimited => "You're sending images too fast; please wait a while.".into(),
            Failure::QueueFull => "I'm at capacity; please try again in a few minutes.".into(),
            Failure::ShuttingDown => "I'm restarting; please send it again in a minute.".into(),
        }
    }
}

impl Service {
    pub fn new(
        config: BotConfig,
        telegram: Telegram,
        store: Store,
    ) -> Result<Service, EngineError> {
        let engine = Engine::new(EngineConfig {
            threads: config.threads,
            max_in_flight: config.threads,
            // The bot's admission bounds work in flight; the engine queue only holds those.
            max_queue: config.max_concurrent,
            memory_budget_bytes: config.engine_memory_budget(),
            ..EngineConfig::default()
        })?;
        Ok(Service {
            cache: MemoryCache::new(config.cache_bytes, config.cache_ttl),
            rate_limiter: RateLimiter::new(config.rate_limit_per_hour),
            admission: Admission::new(config.max_concurrent, config.queue_size),
            order: Arc::new(ChatOrder::default()),
            metrics: Arc::new(Metrics::new(config.performance_monitoring)),
            tasks: TaskTracker::new(),
            config,
            engine,
            telegram,
            store,
        })
    }

    /// Quick checks on the dispatcher's task, then the work is spawned. Nothing here waits
    /// for Telegram, so one busy chat never holds up the dispatcher.
    pub fn accept(self: &Arc<Self>, request: ImageRequest) {
        Metrics::count(&self.metrics.requests);
        if let Some(size) = request
            .input
            .size
            .filter(|&size| size > TELEGRAM_DOWNLOAD_LIMIT)
        {
            let failure = Failure::Telegram(TelegramError::TooLarge {
                size,
                limit: TELEGRAM_DOWNLOAD_LIMIT,
            });
            return self.refuse(&request, failure, None, true);
        }
        let admin = self.config.is_admin(request.user);
        if !admin
            && let Decision::Limited {
                retry_after,
                notify,
            } = self.rate_limiter.check(request.user)
        {
            let text = format!(
                "You've reached {} images per hour. Your next request will be accepted in {}.",
                self.config.rate_limit_per_hour,
                human_duration(retry_after)
            );
            // Told once a minute at most: a flood of refusals would be a flood of messages.
            return self.refuse(&request, Failure::RateLimited, Some(text), notify);
        }
        let key = cache::key(&request.input.unique_id, &request.spec.pipeline.canonical());
        let turn = self.order.join(request.chat);
        if let Some(hit) = self.cache.get(&key) {
            let service = Arc::clone(self);
            self.tasks
                .spawn(async move { service.deliver_cached(turn, request, key, hit).await });
            return;
        }
        let ticket = match self.admission.enter() {
            Ok(ticket) => ticket,
            Err(full) => {
                if !admin {
                    // Not the user's doing: the request does not count against their hour.
                    self.rate_limiter.refund(request.user);
                }
                let text = format!(
                    "I'm at capacity ({} requests waiting). Please try again in a few minutes.",
                    full.waiting
                );
                return self.refuse(&request, Failure::QueueFull, Some(text), true);
            }
        };
        if let Ticket::Queued { position, .. } = &ticket {
            let text = format!("You're number {position} in the queue; your image will follow.");
            self.say_later(&request, text);
        }
        let service = Arc::clone(self);
        self.tasks
            .spawn(async move { service.process(turn, ticket, request, key).await });
    }

    async fn deliver_cached(
        &self,
        turn: Turn,
        request: ImageRequest,
        key: String,
        hit: CachedResult,
    ) {
        let outcome = Outcome {
            key: &key,
            result: &hit,
            timings: RequestTimings::default(),
            input: None,
            cache_hit: true,
        };
        self.reply_with(turn, &request, outcome).await;
    }

    async fn process(&self, mut turn: Turn, ticket: Ticket, request: ImageRequest, key: String) {
        let mut timings = RequestTimings::default();
        match self.produce(ticket, &request, &mut timings).await {
            Ok((result, input)) => {
                self.cache.put(key.clone(), result.clone());
                let outcome = Outcome {
                    key: &key,
                    result: &result,
                    timings,
                    input: Some(input),
                    cache_hit: false,
                };
                self.reply_with(turn, &request, outcome).await;
            }
            Err(failure) => {
                // Error messages keep the chat's order too.
                turn.wait().await;
                self.fail(&request, failure, timings).await;
            }
        }
    }

    /// Download and engine work under an admission slot. The slot is released before the
    /// reply waits for the chat's earlier requests: holding it there could leave those
    /// requests waiting for a slot for ever.
    async fn produce(
        &self,
        ticket: Ticket,
        request: &ImageRequest,
        timings: &mut RequestTimings,
    ) -> Result<(CachedResult, Dimensions), Failure> {
        let waited = Instant::now();
        let _slot = ticket.ready().await.map_err(|_| Failure::ShuttingDown)?;
        timings.admission_wait = Some(waited.elapsed());
        // Shown while the work runs; not worth waiting for.
        let telegram = self.telegram.clone();
        let chat = request.chat;
        tokio::spawn(async move { telegram.show_working(chat).await });
        let download_started = Instant::now();
        let bytes = self
            .telegram
            .download(&request.input.file_id, TELEGRAM_DOWNLOAD_LIMIT)
            .await?;
        timings.download = Some(download_started.elapsed());
        let input_bytes = bytes.len() as u64;
        let engine_started = Instant::now();
        let output = self
            .engine
            .submit(bytes, request.spec.pipeline.clone())?
            .await?;
        timings.engine = Some(engine_started.elapsed());
        timings.backend = Some(output.backend);
        Metrics::count(match output.backend {
            BackendUsed::Cpu => &self.metrics.cpu_jobs,
            BackendUsed::Gpu => &self.metrics.gpu_jobs,
        });
        let input = Dimensions {
            bytes: input_bytes,
            width: output.input.width,
            height: output.input.height,
        };
        let result = CachedResult {
            // Exact-size storage: the cache counts `len()` bytes per entry.
            bytes: output.bytes.into_boxed_slice().into(),
            format: output.format,
            width: output.width,
            height: output.height,
            has_alpha: output.has_alpha,
            file_ids: Vec::new(),
        };
        Ok((result, input))
    }

    fn delivery_for(&self, request: &ImageRequest, result: &CachedResult) -> Delivery {
        let shape = delivery::Shape {
            bytes: result.bytes.len(),
            width: result.width,
            height: result.height,
            has_alpha: result.has_alpha,
            format: result.format,
        };
        let wants_file = request.spec.as_file || request.input.is_document;
        delivery::choose(&shape, wants_file, request.spec.sticker)
    }

    /// Sends a result when the chat's earlier requests have replied (by `file_id` when
    /// Telegram already has it), then counts and records the request.
    async fn reply_with(&self, mut turn: Turn, request: &ImageRequest, mut outcome: Outcome<'_>) {
        let result = outcome.result;
        let delivery = self.delivery_for(request, result);
        let upload = || ResultFile::Upload {
            bytes: result.bytes.clone(),
            name: format!("prism.{}", result.format.extension()),
        };
        turn.wait().await;
        let upload_started = Instant::now();
        let (chat, to) = (request.chat, request.reply_to);
        let sent = if result.bytes.len() as u64 > TELEGRAM_UPLOAD_LIMIT {
            Err(TelegramError::TooLarge {
                size: result.bytes.len() as u64,
                limit: TELEGRAM_UPLOAD_LIMIT,
            })
        } else if let Some(id) = result.file_id(delivery) {
            let known = ResultFile::Known(id.to_string());
            match self.telegram.send_result(chat, to, delivery, known).await {
                // A file id Telegram no longer honours: send the bytes instead.
                Err(TelegramError::Request(RequestError::Api(_))) => {
                    self.telegram
                        .send_result(chat, to, delivery, upload())
                        .await
                }
                sent => sent,
            }
        } else {
            self.telegram
                .send_result(chat, to, delivery, upload())
                .await
        };
        outcome.timings.upload = Some(upload_started.elapsed());
        let total = request.arrived.elapsed();
        let error_kind = match sent {
            Ok(file_id) => {
                if let Some(file_id) = file_id {
                    self.cache.remember_file_id(outcome.key, delivery, file_id);
                }
                Metrics::count(&self.metrics.completed);
                self.metrics
                    .record(&outcome.timings, total, outcome.cache_hit);
                None
            }
            Err(error) => {
                tracing::warn!(%error, chat = request.chat.0, "sending a result failed");
                Metrics::count(&self.metrics.failed);
                let failure = Failure::from(error);
                self.say(request, &failure.message()).await;
                Some(failure.kind())
            }
        };
        drop(turn);
        self.record(RequestRecord {
            input: outcome.input,
            output: Some(Dimensions {
                bytes: result.bytes.len() as u64,
                width: result.width,
                height: result.height,
            }),
            cache_hit: outcome.cache_hit,
            delivery: Some(delivery.name()),
            error_kind,
            ..record_base(request, &outcome.timings, total)
        });
    }

    /// A request that could not be processed: tell the user, count and record it.
    async fn fail(&self, request: &ImageRequest, failure: Failure, timings: RequestTimings) {
        match &failure {
            Failure::Engine(error) if error.kind() == ErrorKind::Internal => {
                tracing::error!(%error, "engine failure")
            }
            _ => tracing::info!(error = %failure, chat = request.chat.0, "request failed"),
        }
        Metrics::count(&self.metrics.failed);
        self.say(request, &failure.message()).await;
        self.record(RequestRecord {
            error_kind: Some(failure.kind()),
            ..record_base(request, &timings, request.arrived.elapsed())
        });
    }

    /// A request turned away before any work (size, rate limit, full queue): count and
    /// record it, and tell the user from a task, so the dispatcher never waits on Telegram.
    fn refuse(&self, request: &ImageRequest, failure: Failure, text: Option<String>, notify: bool) {
        Metrics::count(&self.metrics.refused);
        if notify {
            self.say_later(request, text.unwrap_or_else(|| failure.message()));
        }
        self.record(RequestRecord {
            error_kind: Some(failure.kind()),
            ..record_base(
                request,
                &RequestTimings::default(),
                request.arrived.elapsed(),
            )
        });
    }

    async fn say(&self, request: &ImageRequest, text: &str) {
        let (chat, to) = (request.chat, request.reply_to);
        if let Err(error) = self.telegram.reply(chat, Some(to), text).await {
            tracing::warn!(%error, chat = chat.0, "reply failed");
        }
    }

    fn say_later(&self, request: &ImageRequest, text: String) {
        self.reply_later(request.chat, request.reply_to, text);
    }

    /// Replies from a tracked task (shutdown waits for it), so no handler waits on
    /// Telegram's throttle or retries.
    pub fn reply_later(&self, chat: ChatId, to: MessageId, text: String) {
        let telegram = self.telegram.clone();
        self.tasks.spawn(async move {
            if let Err(error) = telegram.reply(chat, Some(to), &text).await {
                tracing::warn!(%error, chat = chat.0, "reply failed");
            }
        });
    }

    /// Writes a record in the background; shutdown waits for pending writes.
    fn record(&self, record: RequestRecord) {
        let store = self.store.clone();
        let metrics = Arc::clone(&self.metrics);
        self.tasks.spawn(async move {
            // A busy or briefly failing database gets a few more tries before the record is
            // given up (and counted).
            for delay_ms in [50, 250, 1000, 0] {
                match store.record(&record).await {
                    Ok(()) => return,
                    Err(error) if delay_ms > 0 => {
                        tracing::warn!(%error, "recording a request failed; retrying");
                        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    }
                    Err(error) => {
                        tracing::error!(%error, "could not record a request");
                        Metrics::count(&metrics.store_errors);
                    }
                }
            }
        });
    }
}

fn record_base(request: &ImageRequest, timings: &RequestTimings, total: Duration) -> RequestRecord {
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
    RequestRecord {
        at: unix_millis(),
        user_id: request.user.0,
        username: request.username.clone(),
        chat_id: request.chat.0,
        pipeline: request.spec.pipeline.canonical(),
        queue_ms: ms(timings.admission_wait),
        download_ms: ms(timings.download),
        engine_ms: ms(timings.engine),
        upload_ms: ms(timings.upload),
        total_ms: total.as_secs_f64() * 1e3,
        backend: timings.backend.map_or("none", BackendUsed::name),
        ..RequestRecord::default()
    }
}

pub fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// "42 min", "3 s", "1 h 5 min".
pub fn human_duration(duration: Duration) -> String {
    let seconds = duration.as_secs().max(1);
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds.div_ceil(60)),
        _ => format!("{} h {} min", seconds / 3600, (seconds % 3600) / 60),
    }
}
