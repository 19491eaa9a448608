//! The request flow: rate limit → cache → coalescing → admission → download → engine →
//! reply → record. `accept` runs on the dispatcher's task and only takes the request's place
//! in its chat's order; the rest is spawned, so a long job (or a slow Redis) never blocks the
//! chat's commands, and pixels never touch the runtime.
//!
//! Each shared part (results cache, rate limit, update ids, order, coalescing) is a seam
//! with an in-process behaviour and, with REDIS_URL, a shared one that falls back to the
//! in-process behaviour while Redis fails. Records go to the [`Recorder`], which never makes
//! a reply wait on the database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prism_engine::{
    BackendStatus, BackendUsed, Engine, EngineConfig, Error as EngineError, ErrorKind,
    StatsSnapshot,
};
use teloxide::types::{ChatId, FileId, MessageId, UserId};
use tokio_util::task::TaskTracker;

use crate::clock::{human_duration, unix_millis};
use crate::config::{BotConfig, TELEGRAM_DOWNLOAD_LIMIT, TELEGRAM_UPLOAD_LIMIT};
use crate::flow::admission::{Admission, Ticket};
use crate::flow::cache::{self, CacheStats, CachedResult, ResultsCache};
use crate::flow::coalesce::{Coalescer, Follow, LeadGuard, Role};
use crate::flow::events::{Ended, FlowEvents, RequestTimings};
use crate::flow::inbox::{Inbox, InboxFigures, Receipt};
use crate::flow::intake::Intake;
use crate::flow::ordering::{ChatOrder, Turn};
use crate::flow::rate_limit::{Counted, Decision, UserLimits};
use crate::flow::spec::Spec;
use crate::flow::user_slots::{UserSlot, UserSlots};
use crate::shared::redis::{RedisHealth, SharedRedis};
use crate::store::{
    AdminStats, Dimensions, Recorder, RecorderStats, RequestRecord, Store, StoreError,
};
use crate::telegram::client::{ResultFile, Telegram, TelegramError};
use crate::telegram::delivery::{self, Delivery};
use crate::telegram::outbound::Weight;

/// The request flow's parts; one per running bot. Everything outside the flow reaches it
/// through its methods: handlers hand requests in, the operator side reads a [`FlowSnapshot`].
pub struct Service {
    config: BotConfig,
    engine: Engine,
    telegram: Telegram,
    cache: ResultsCache,
    /// Read by the admin commands; written only through `recorder`.
    store: Store,
    recorder: Recorder,
    limits: UserLimits,
    coalescer: Arc<Coalescer>,
    intake: Intake<(Turn, ImageRequest)>,
    admission: Admission,
    /// Each user's requests in flight (USER_MAX_IN_FLIGHT; admins take none).
    user_slots: UserSlots,
    order: Arc<ChatOrder>,
    /// Who counts what happens (the operator side's metrics).
    events: Arc<dyn FlowEvents>,
    /// Shared state for several instances (REDIS_URL); `None`: everything in process.
    redis: Option<Arc<SharedRedis>>,
    /// Accepted updates, kept until answered.
    inbox: Arc<Inbox>,
    /// Unasked-for notices each chat got in the last minute (by text): not repeated.
    told: moka::sync::Cache<(ChatId, u64), ()>,
    /// Spawned jobs and replies; shutdown waits for all of them.
    tasks: TaskTracker,
}

/// What the flow holds now, read without touching the network: the operator side's view.
pub struct FlowSnapshot {
    /// Requests holding a slot.
    pub in_progress: usize,
    /// Requests waiting for a slot.
    pub admission_waiting: usize,
    pub workers: usize,
    pub engine: StatsSnapshot,
    /// False once the engine or the flow is shutting down.
    pub accepting: bool,
    pub backend: BackendStatus,
    pub gpu_fallbacks: u64,
    pub cache: CacheStats,
    pub cache_shared: bool,
    pub records: RecorderStats,
    pub store_backend: &'static str,
    pub telegram_retries: u64,
    /// Notices dropped because their chat already had a couple waiting.
    pub notices_dropped: u64,
    /// Chats with replies still to send in order.
    pub pending_chats: usize,
    /// Users the in-process rate limit remembers.
    pub tracked_users: usize,
    /// Jobs this instance leads for identical requests.
    pub jobs_led_here: usize,
    pub inbox: InboxFigures,
}

/// What a cleanup of the flow's in-memory state freed.
pub struct Trimmed {
    pub cache_entries_dropped: u64,
    pub cache_bytes_freed: u64,
    pub rate_limit_users_forgotten: u64,
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
    /// The update's id: the request's place in its chat's order.
    pub sequence: u64,
    /// The update's claim on the inbox: acknowledged once the request's record is safe.
    pub receipt: Option<Receipt>,
}

impl ImageRequest {
    /// How the user asked for the result, which with its shape decides the delivery.
    fn delivery_request(&self) -> &'static str {
        if self.spec.as_file || self.input.is_document {
            "file"
        } else if self.spec.sticker {
            "sticker"
        } else {
            "photo"
        }
    }
}

/// Where a request stands after the quick checks.
enum Step {
    Deliver(CachedResult),
    Run(LeadGuard, Ticket),
    Follow(Follow),
    Refused,
}

/// The same unasked-for notice (a hint, a refusal) goes to a chat once in this long at most.
const NOTICE_REPEATED_AFTER: Duration = Duration::from_secs(60);

/// A result sent by a `file_id` that Telegram no longer honours, with no bytes to upload
/// instead (it came from the shared cache): the request is processed afresh.
struct StaleFileId;

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
                    format!(
                        "I couldn't read that image: {error}. Send a JPEG, PNG, WebP, GIF, HEIC or AVIF."
                    )
                }
                ErrorKind::Limits => format!("That image is too large for me: {error}."),
                ErrorKind::Pipeline => {
                    format!("{error}. Try e.g. `{}`.", crate::flow::spec::EXAMPLE)
                }
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
        recorder: Recorder,
        redis: Option<Arc<SharedRedis>>,
        inbox: Arc<Inbox>,
        events: Arc<dyn FlowEvents>,
    ) -> Result<Service, EngineError> {
        let engine = Engine::new(EngineConfig {
            threads: config.threads,
            max_in_flight: config.threads,
            // The bot's admission bounds work in flight; the engine queue only holds those.
            max_queue: config.max_concurrent,
            memory_budget_bytes: config.engine_memory_budget(),
            ..EngineConfig::default()
        })?;
        let shared = || redis.clone();
        Ok(Service {
            cache: ResultsCache::new(config.cache_bytes, config.cache_ttl, shared()),
            limits: UserLimits::new(config.rate_limit_per_hour, shared(), &config.instance_id),
            coalescer: Arc::new(Coalescer::new(shared(), &config.instance_id)),
            intake: Intake::new(),
            admission: Admission::new(config.max_concurrent, config.queue_size),
            user_slots: UserSlots::new(config.user_max_in_flight),
            order: Arc::new(ChatOrder::new(shared())),
            events,
            inbox,
            told: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(NOTICE_REPEATED_AFTER)
                .build(),
            tasks: TaskTracker::new(),
            redis,
            config,
            engine,
            telegram,
            store,
            recorder,
        })
    }

    pub fn inbox(&self) -> &Arc<Inbox> {
        &self.inbox
    }

    pub fn config(&self) -> &BotConfig {
        &self.config
    }

    /// The engine this flow runs on (clones share its pool).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The shared Redis (REDIS_URL), when configured.
    pub fn redis(&self) -> Option<&Arc<SharedRedis>> {
        self.redis.as_ref()
    }

    /// True when several instances share state through Redis.
    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// The flow's figures now, without touching the network.
    pub fn snapshot(&self) -> FlowSnapshot {
        let backend = self.engine.backend_status();
        FlowSnapshot {
            in_progress: self.admission.running(),
            admission_waiting: self.admission.waiting(),
            workers: self.engine.config().threads,
            engine: self.engine.stats(),
            accepting: self.engine.accepting() && !self.tasks.is_closed(),
            gpu_fallbacks: backend.gpu_stats.as_ref().map_or(0, |gpu| gpu.fallbacks),
            backend,
            cache: self.cache.stats(),
            cache_shared: self.cache.is_shared(),
            records: self.recorder.stats(),
            store_backend: self.store.backend_name(),
            telegram_retries: self.telegram.retries(),
            notices_dropped: self.telegram.outbound().dropped(),
            pending_chats: self.order.pending_chats(),
            tracked_users: self.limits.tracked_users(),
            jobs_led_here: self.coalescer.in_flight_count(),
            inbox: self.inbox.figures(),
        }
    }

    /// Whether the store answers now.
    pub async fn store_answers(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// Redis, when configured: a ping now, then the link's own view of recent failures.
    pub async fn redis_health(&self) -> Option<RedisHealth> {
        let redis = self.redis.as_ref()?;
        let _ = redis.ping().await;
        Some(redis.health())
    }

    /// The store's statistics for /admin_stats.
    pub async fn admin_stats(&self) -> Result<AdminStats, StoreError> {
        self.store.admin_stats(unix_millis()).await
    }

    /// Under memory pressure: one engine job and one admission slot at a time (work keeps
    /// moving, the queue waits); `false` restores full concurrency.
    pub fn hold_back_work(&self, hold: bool) {
        self.engine.one_job_at_a_time(hold);
        if hold {
            self.admission.hold_back();
        } else {
            self.admission.release_held();
        }
    }

    /// Drops expired cache entries and idle rate-limit state; `empty_local_cache` drops every
    /// in-process result too (Redis and Telegram's file ids still serve repeats).
    pub fn trim(&self, empty_local_cache: bool) -> Trimmed {
        let cache_before = self.cache.stats();
        let users_before = self.limits.tracked_users();
        self.limits.cleanup();
        if empty_local_cache {
            self.cache.clear_local();
        } else {
            self.cache.cleanup();
        }
        let cache_after = self.cache.stats();
        Trimmed {
            cache_entries_dropped: cache_before.entries.saturating_sub(cache_after.entries) as u64,
            cache_bytes_freed: cache_before.bytes.saturating_sub(cache_after.bytes) as u64,
            rate_limit_users_forgotten: users_before.saturating_sub(self.limits.tracked_users())
                as u64,
        }
    }

    /// Stops taking requests and lets every accepted one finish (reply and record), for at
    /// most `grace`. False when some were still unfinished and are abandoned.
    pub async fn finish_requests(&self, grace: Duration) -> bool {
        self.intake.close();
        self.tasks.close();
        match tokio::time::Instant::now().checked_add(grace) {
            Some(deadline) => tokio::time::timeout_at(deadline, self.tasks.wait())
                .await
                .is_ok(),
            None => {
                self.tasks.wait().await;
                true
            }
        }
    }

    /// Stops the engine (at once when requests were abandoned) and flushes the records:
    /// what the database does not take within `flush` is spilled to the local file.
    pub async fn shut_down(&self, requests_finished: bool, flush: Duration) {
        if requests_finished {
            self.engine.shutdown();
        } else {
            let _ = self.engine.shutdown_timeout(Duration::ZERO);
        }
        self.recorder.close(flush).await;
    }

    pub fn is_admin(&self, user: UserId) -> bool {
        self.config.is_admin(user)
    }

    pub fn telegram(&self) -> &Telegram {
        &self.telegram
    }

    /// Runs `work` as a tracked task: shutdown waits for it.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(work);
    }

    /// An update answered before a crash and delivered again: its request is recorded (the
    /// same record, so nothing is written twice) and the update acknowledged; no second reply.
    pub fn record_answered(&self, record: RequestRecord, receipt: &Receipt) {
        match receipt.on_record_safe() {
            Some(on_safe) => self.recorder.record_then(record, on_safe),
            None => self.recorder.record(record),
        }
    }

    /// The inbox is full: Telegram will deliver the update again later. The user is told to
    /// try again, once a minute at most.
    pub fn tell_busy(&self, chat: ChatId, to: MessageId) {
        self.events.ended(Ended::Refused);
        self.tell_once_a_minute(
            chat,
            to,
            "I'm at capacity right now. Please try again in a few minutes.".into(),
        );
    }

    /// Takes the request's place in its chat's order on the dispatcher's task, in arrival
    /// order, and hands it to the intake.
    pub fn accept(self: &Arc<Self>, request: ImageRequest) {
        self.events.accepted();
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
        // More waiting for the intake than the admission queue could ever take: Redis is
        // stalling the intake, and this request would only wait to be refused.
        if self.intake.backlog() > self.config.queue_size + self.config.max_concurrent {
            return self.refuse(&request, Failure::QueueFull, None, true);
        }
        let turn = self.order.join(request.chat, request.sequence);
        if let Err((_, request)) = self.intake.send((turn, request)) {
            self.refuse(&request, Failure::ShuttingDown, None, true);
        }
    }

    /// Starts the intake task: requests pass the quick checks (rate limit, cache, coalescing)
    /// and enter admission one at a time, in arrival order, so queue places are fair even
    /// though the checks wait on Redis; the work itself is spawned.
    pub fn start_intake(self: &Arc<Self>) {
        let Some(mut requests) = self.intake.take_receiver() else {
            return;
        };
        let service = Arc::clone(self);
        self.tasks.spawn(async move {
            while let Some((turn, request)) = requests.recv().await {
                service.intake.received();
                service.admit(turn, request).await;
            }
        });
    }

    async fn admit(self: &Arc<Self>, mut turn: Turn, request: ImageRequest) {
        turn.share().await;
        if self.config.is_admin(request.user) {
            return self.admit_holding(turn, request, None).await;
        }
        match self.user_slots.take(request.user) {
            Ok(slot) => self.admit_holding(turn, request, Some(slot)).await,
            // The user's earlier requests hold their slots: this one waits for one of them,
            // off the intake, so other users' requests go on.
            Err(wait) => {
                let service = Arc::clone(self);
                self.tasks.spawn(async move {
                    match wait.await {
                        Some(slot) => service.admit_holding(turn, request, Some(slot)).await,
                        None => service.refuse(&request, Failure::ShuttingDown, None, true),
                    }
                });
            }
        }
    }

    /// Admission for a request holding one of its user's slots (`None`: an admin's), which
    /// it keeps until its work is done.
    async fn admit_holding(
        self: &Arc<Self>,
        turn: Turn,
        request: ImageRequest,
        user_slot: Option<UserSlot>,
    ) {
        let counted = if self.config.is_admin(request.user) {
            None
        } else {
            match self.limits.check(request.user).await {
                Ok(counted) => Some(counted),
                Err(Decision::Limited {
                    retry_after,
                    notify,
                }) => {
                    let text = format!(
                        "You've reached {} images per hour. Your next request will be accepted in {}.",
                        self.config.rate_limit_per_hour,
                        human_duration(retry_after)
                    );
                    // Told once a minute at most: a flood of refusals would be a flood of messages.
                    return self.refuse(&request, Failure::RateLimited, Some(text), notify);
                }
                Err(Decision::Allowed) => None,
            }
        };
        let key = cache::key(
            &request.input.unique_id,
            &request.spec.pipeline.canonical(),
            request.delivery_request(),
        );
        let step = self
            .next_step(&request, counted.as_ref(), &key, false)
            .await;
        let service = Arc::clone(self);
        self.tasks.spawn(async move {
            service
                .serve(turn, request, counted, key, step, user_slot)
                .await;
        });
    }

    /// What to do with a request now: send a cached result, run the job (admitted), wait for
    /// the request that runs it, or nothing more (refused: the queue is full).
    async fn next_step(
        &self,
        request: &ImageRequest,
        counted: Option<&Counted>,
        key: &str,
        skip_file_ids: bool,
    ) -> Step {
        if let Some(hit) = self.cache.get(key).await
            && !(skip_file_ids && hit.bytes.is_empty())
        {
            return Step::Deliver(hit);
        }
        let lead = match self.coalescer.role(key).await {
            Role::Lead(lead) => lead,
            Role::Follow(follow) => return Step::Follow(follow),
        };
        match self.admission.enter() {
            Ok(ticket) => {
                if let Ticket::Queued { position, .. } = &ticket {
                    let text =
                        format!("You're number {position} in the queue; your image will follow.");
                    self.say_later(request, text);
                }
                Step::Run(lead, ticket)
            }
            Err(full) => {
                lead.release().await;
                if let Some(counted) = counted {
                    // Not the user's doing: the request does not count against their hour.
                    self.limits.refund(request.user, counted.clone()).await;
                }
                let text = format!(
                    "I'm at capacity ({} requests waiting). Please try again in a few minutes.",
                    full.waiting
                );
                self.refuse(request, Failure::QueueFull, Some(text), true);
                Step::Refused
            }
        }
    }

    async fn serve(
        &self,
        mut turn: Turn,
        request: ImageRequest,
        counted: Option<Counted>,
        key: String,
        mut step: Step,
        mut user_slot: Option<UserSlot>,
    ) {
        loop {
            step = match step {
                Step::Refused => return,
                Step::Run(mut lead, ticket) => {
                    let user_slot = user_slot.take();
                    self.process(turn, ticket, request, &key, &mut lead, user_slot)
                        .await;
                    return lead.release().await;
                }
                Step::Follow(follow) => {
                    follow.wait(|| self.cache.contains(&key)).await;
                    self.next_step(&request, counted.as_ref(), &key, false)
                        .await
                }
                Step::Deliver(hit) => {
                    // Nothing to produce: the user's slot is not held while the reply waits
                    // for the chat's earlier requests.
                    drop(user_slot.take());
                    let outcome = Outcome {
                        key: &key,
                        result: &hit,
                        timings: RequestTimings::default(),
                        input: None,
                        cache_hit: true,
                    };
                    match self.reply_with(&mut turn, &request, outcome).await {
                        Ok(()) => return,
                        Err(StaleFileId) => {
                            self.cache.forget(&key).await;
                            self.next_step(&request, counted.as_ref(), &key, true).await
                        }
                    }
                }
            };
        }
    }

    async fn process(
        &self,
        mut turn: Turn,
        ticket: Ticket,
        request: ImageRequest,
        key: &str,
        lead: &mut LeadGuard,
        user_slot: Option<UserSlot>,
    ) {
        let mut timings = RequestTimings::default();
        let produced = self.produce(ticket, &request, &mut timings).await;
        // Freed with the admission slot, before the reply waits for the chat's earlier
        // requests (which may be this user's, waiting for this very slot).
        drop(user_slot);
        match produced {
            Ok((result, input)) => {
                self.cache.put(key.to_string(), result.clone());
                lead.cached_here();
                // Requests elsewhere wait for this reply's file id; if this reply must first
                // wait for its chat's earlier requests (one may be such a follower), let
                // them run the job themselves rather than wait on each other.
                if turn.has_earlier().await {
                    lead.release_shared().await;
                }
                let outcome = Outcome {
                    key,
                    result: &result,
                    timings,
                    input: Some(input),
                    cache_hit: false,
                };
                // Fresh bytes are never stale.
                let _ = self.reply_with(&mut turn, &request, outcome).await;
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
        timings.engine_stages = Some(output.timings);
        self.events.backend_job(output.backend);
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
        // An entry from the shared cache has no bytes to measure: the same request always
        // gets the same delivery, so it goes the way it was sent before (a large result as
        // a document, though its dimensions alone would make it a photo).
        if result.bytes.is_empty()
            && let Some((delivery, _)) = result.file_ids.first()
        {
            return *delivery;
        }
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
    async fn reply_with(
        &self,
        turn: &mut Turn,
        request: &ImageRequest,
        mut outcome: Outcome<'_>,
    ) -> Result<(), StaleFileId> {
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
                Err(error) if error.is_unknown_file() && result.bytes.is_empty() => {
                    return Err(StaleFileId);
                }
                // A file id Telegram no longer honours: send the bytes instead.
                Err(error) if error.is_unknown_file() => {
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
                    self.cache
                        .remember_file_id(outcome.key, result, delivery, file_id)
                        .await;
                }
                self.events.ended(if outcome.cache_hit {
                    Ended::Cached
                } else {
                    Ended::Processed
                });
                self.events
                    .answered(&outcome.timings, total, outcome.cache_hit);
                None
            }
            Err(error) => {
                tracing::warn!(%error, chat = request.chat.0, "sending a result failed");
                self.events.ended(Ended::Failed);
                let failure = Failure::from(error);
                self.say(request, &failure.message()).await;
                Some(failure.kind())
            }
        };
        let record = RequestRecord {
            input: outcome.input,
            output: Some(Dimensions {
                bytes: result.bytes.len() as u64,
                width: result.width,
                height: result.height,
            }),
            cache_hit: outcome.cache_hit,
            delivery: Some(delivery.name().to_string()),
            error_kind,
            ..record_base(request, &outcome.timings, total)
        };
        self.record_reply(request, record).await;
        Ok(())
    }

    /// A request that could not be processed: tell the user, count and record it.
    async fn fail(&self, request: &ImageRequest, failure: Failure, timings: RequestTimings) {
        if self.left_for_a_retry(request, &failure) {
            return;
        }
        match &failure {
            Failure::Engine(error) if error.kind() == ErrorKind::Internal => {
                tracing::error!(%error, "engine failure")
            }
            _ => tracing::info!(error = %failure, chat = request.chat.0, "request failed"),
        }
        self.events.ended(Ended::Failed);
        self.say(request, &failure.message()).await;
        let record = RequestRecord {
            error_kind: Some(failure.kind()),
            ..record_base(request, &timings, request.arrived.elapsed())
        };
        self.record_reply(request, record).await;
    }

    /// A request stopped by this instance's shutdown stays in the inbox, for its next run or
    /// another instance to answer; the user is told nothing and nothing is recorded yet.
    fn left_for_a_retry(&self, request: &ImageRequest, failure: &Failure) -> bool {
        let shutting_down = match failure {
            Failure::ShuttingDown => true,
            Failure::Engine(error) => error.kind() == ErrorKind::ShuttingDown,
            _ => false,
        };
        match &request.receipt {
            Some(receipt) if shutting_down => {
                tracing::info!(
                    chat = request.chat.0,
                    "shutting down: left in the inbox for a retry"
                );
                receipt.release();
                true
            }
            _ => false,
        }
    }

    /// A request turned away before any work (size, rate limit, full queue): count and
    /// record it, and tell the user from a task, so the dispatcher never waits on Telegram.
    fn refuse(&self, request: &ImageRequest, failure: Failure, text: Option<String>, notify: bool) {
        if self.left_for_a_retry(request, &failure) {
            return;
        }
        self.events.ended(match failure {
            Failure::RateLimited => Ended::RateLimited,
            _ => Ended::Refused,
        });
        if notify {
            let text = text.unwrap_or_else(|| failure.message());
            self.tell_once_a_minute(request.chat, request.reply_to, text);
        }
        self.record(
            request,
            RequestRecord {
                error_kind: Some(failure.kind()),
                ..record_base(
                    request,
                    &RequestTimings::default(),
                    request.arrived.elapsed(),
                )
            },
        );
    }

    /// The outcome of a request: an answer, never dropped.
    async fn say(&self, request: &ImageRequest, text: &str) {
        let (chat, to) = (request.chat, request.reply_to);
        let sent = self.telegram.reply(chat, Some(to), text, Weight::Answer);
        if let Err(error) = sent.await {
            tracing::warn!(%error, chat = chat.0, "reply failed");
        }
    }

    fn say_later(&self, request: &ImageRequest, text: String) {
        self.reply_later(request.chat, request.reply_to, text);
    }

    /// A notice (a command's answer, a hint, a refusal) from a tracked task (shutdown waits
    /// for it), so no handler waits on Telegram. It is dropped when the chat already has a
    /// couple of notices waiting for their turn.
    pub fn reply_later(&self, chat: ChatId, to: MessageId, text: String) {
        let telegram = self.telegram.clone();
        self.tasks.spawn(async move {
            match telegram.reply(chat, Some(to), &text, Weight::Notice).await {
                Err(TelegramError::Dropped(_)) => {
                    tracing::debug!(chat = chat.0, "notice dropped: the chat has enough waiting")
                }
                Err(error) => tracing::warn!(%error, chat = chat.0, "reply failed"),
                Ok(_) => {}
            }
        });
    }

    /// As [`Service::reply_later`], for what nobody asked for (a hint after stray text, a
    /// refusal): the same text goes to a chat once a minute at most.
    pub fn tell_once_a_minute(&self, chat: ChatId, to: MessageId, text: String) {
        let told = (chat, notice_key(&text));
        if self.told.contains_key(&told) {
            return;
        }
        self.told.insert(told, ());
        self.reply_later(chat, to, text);
    }

    /// Hands a record to the recorder: queued, batched and written off the reply path. The
    /// request's update leaves the inbox once the record is safe.
    fn record(&self, request: &ImageRequest, record: RequestRecord) {
        match request.receipt.as_ref().and_then(Receipt::on_record_safe) {
            Some(on_safe) => self.recorder.record_then(record, on_safe),
            None => self.recorder.record(record),
        }
    }

    /// As [`Service::record`] for a request the user got an answer to: the answer is marked
    /// first, so the update coming back after a crash is recorded, not answered again.
    async fn record_reply(&self, request: &ImageRequest, record: RequestRecord) {
        if let Some(receipt) = &request.receipt {
            receipt.replied(&record).await;
        }
        self.record(request, record);
    }
}

/// A notice's identity for "told once a minute": its text, hashed (the cache holds many).
fn notice_key(text: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(text)
}

fn record_base(request: &ImageRequest, timings: &RequestTimings, total: Duration) -> RequestRecord {
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
    RequestRecord {
        id: request
            .receipt
            .as_ref()
            .map(Receipt::record_id)
            .unwrap_or_default(),
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
        backend: timings
            .backend
            .map_or("none", BackendUsed::name)
            .to_string(),
        ..RequestRecord::default()
    }
}
