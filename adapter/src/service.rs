//! The request flow: rate limit → cache → admission → download → engine → reply → record.
//! `accept` runs on the dispatcher's task and only does quick checks; the work is spawned,
//! so a long job never blocks its chat's commands and pixels never touch the runtime.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prism_engine::{Engine, EngineConfig, Error as EngineError, ErrorKind};
use teloxide::types::{ChatId, FileId, MessageId, UserId};
use tokio_util::task::TaskTracker;

use crate::admission::{Admission, Ticket};
use crate::cache::{self, CachedResult, MemoryCache};
use crate::config::{BotConfig, TELEGRAM_DOWNLOAD_LIMIT};
use crate::delivery::{self, Delivery};
use crate::metrics::{Metrics, RequestTimings};
use crate::ordering::{ChatOrder, Turn};
use crate::rate_limit::{Decision, RateLimiter};
use crate::spec::Spec;
use crate::store::{Dimensions, RequestRecord, Store};
use crate::telegram::{ResultFile, Telegram, TelegramError};

/// The backend that ran a job (the GPU backend is not built yet).
const BACKEND: &str = "cpu";

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

    /// Quick checks on the dispatcher's task, then the work is spawned.
    pub async fn accept(self: &Arc<Self>, request: ImageRequest) {
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
            return self.refuse(&request, failure, None).await;
        }
        if !self.config.is_admin(request.user)
            && let Decision::Limited { retry_after } = self.rate_limiter.check(request.user)
        {
            let text = format!(
                "You've reached {} images per hour. Your next request will be accepted in {}.",
                self.config.rate_limit_per_hour,
                human_duration(retry_after)
            );
            return self
                .refuse(&request, Failure::RateLimited, Some(text))
                .await;
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
                let text = format!(
                    "I'm at capacity ({} requests waiting). Please try again in a few minutes.",
                    full.waiting
                );
                return self.refuse(&request, Failure::QueueFull, Some(text)).await;
            }
        };
        if let Ticket::Queued { position, .. } = &ticket {
            let text = format!("You're number {position} in the queue; your image will follow.");
            self.say(&request, &text).await;
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

    async fn process(&self, turn: Turn, ticket: Ticket, request: ImageRequest, key: String) {
        let waited = Instant::now();
        let Ok(permit) = ticket.ready().await else {
            return self
                .fail(&request, Failure::ShuttingDown, RequestTimings::default())
                .await;
        };
        let mut timings = RequestTimings {
            admission_wait: Some(waited.elapsed()),
            ..RequestTimings::default()
        };
        // Shown while the work runs; not worth waiting for.
        let telegram = self.telegram.clone();
        let chat = request.chat;
        tokio::spawn(async move { telegram.show_working(chat).await });
        let download_started = Instant::now();
        let bytes = match self
            .telegram
            .download(&request.input.file_id, TELEGRAM_DOWNLOAD_LIMIT)
            .await
        {
            Ok(bytes) => bytes,
            Err(error) => return self.fail(&request, error.into(), timings).await,
        };
        timings.download = Some(download_started.elapsed());
        let input_bytes = bytes.len() as u64;
        let engine_started = Instant::now();
        let output = match self.engine.submit(bytes, request.spec.pipeline.clone()) {
            Ok(job) => job.await,
            Err(error) => Err(error),
        };
        let output = match output {
            Ok(output) => output,
            Err(error) => return self.fail(&request, error.into(), timings).await,
        };
        timings.engine = Some(engine_started.elapsed());
        Metrics::count(&self.metrics.cpu_jobs);
        let input = Dimensions {
            bytes: input_bytes,
            width: output.input.width,
            height: output.input.height,
        };
        let result = CachedResult {
            bytes: output.bytes.into(),
            format: output.format,
            width: output.width,
            height: output.height,
            has_alpha: output.has_alpha,
            file_ids: Vec::new(),
        };
        self.cache.put(key.clone(), result.clone());
        let outcome = Outcome {
            key: &key,
            result: &result,
            timings,
            input: Some(input),
            cache_hit: false,
        };
        self.reply_with(turn, &request, outcome).await;
        drop(permit);
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
        let file = match result.file_id(delivery) {
            Some(id) => ResultFile::Known(id.to_string()),
            None => ResultFile::Upload {
                bytes: result.bytes.clone(),
                name: format!("prism.{}", result.format.extension()),
            },
        };
        turn.wait().await;
        let upload_started = Instant::now();
        let sent = self
            .telegram
            .send_result(request.chat, request.reply_to, delivery, file)
            .await;
        outcome.timings.upload = Some(upload_started.elapsed());
        drop(turn);
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
                Some(Failure::from(error).kind())
            }
        };
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

    /// A request turned away before any work (size, rate limit, full queue).
    async fn refuse(&self, request: &ImageRequest, failure: Failure, text: Option<String>) {
        Metrics::count(&self.metrics.refused);
        self.say(request, &text.unwrap_or_else(|| failure.message()))
            .await;
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
        if let Err(error) = self
            .telegram
            .reply(request.chat, Some(request.reply_to), text)
            .await
        {
            tracing::warn!(%error, chat = request.chat.0, "reply failed");
        }
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
        backend: BACKEND,
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
