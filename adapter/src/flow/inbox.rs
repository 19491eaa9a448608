//! The durable inbox: every accepted update is written here before Telegram is told it arrived,
//! and leaves only once it is answered and its record is safe, so a crash (SIGKILL, OOM) costs
//! a retry, never a photo. With REDIS_URL the inbox is the deployment's stream, shared by every
//! instance (`shared::stream`); without it, and while Redis fails, it is the local queue
//! (`store::IntakeQueue`), which this instance drains itself, before anything else at start.
//!
//! The guarantee is at least once. The one window for a duplicate reply is a crash between
//! Telegram accepting a reply and the reply marker being written.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::clock::unix_millis;
use crate::shared::redis::SharedRedis;
pub use crate::shared::stream::Appended as Offered;
use crate::shared::stream::StreamEntry;
use crate::store::{IntakeQueue, OnSafe, QueuedUpdate, RequestRecord, StoreError};

/// Where an accepted update is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Place {
    /// An entry of the deployment's stream.
    Stream(String),
    /// A row of the local queue.
    Local(i64),
}

#[derive(Debug, thiserror::Error)]
#[error("the local intake queue failed: {0}")]
pub struct InboxError(#[from] StoreError);

/// An update handed to this instance to answer.
pub struct Delivery {
    pub update_id: u32,
    /// The update's JSON, as Telegram sent it.
    pub update: String,
    /// The record kept when a reply was already sent (the update came back after a crash):
    /// record it again and acknowledge, do not answer again.
    pub replied: Option<RequestRecord>,
    pub receipt: Receipt,
}

/// What the operator side sees of the inbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxFigures {
    /// Accepted updates not yet answered, over the deployment (stream) and here (local queue).
    pub backlog: u64,
    /// Age of the oldest of them.
    pub oldest: Option<Duration>,
    /// Entries of a silent instance taken over by this one.
    pub reclaimed: u64,
    /// Updates handed out again (taken over, or left by this instance's previous run).
    pub redelivered: u64,
    /// Updates this instance is answering now.
    pub in_progress: usize,
}

/// A consumer silent for this many visibility timeouts, with nothing pending, is removed
/// from the group.
const FORGET_AFTER_TIMEOUTS: u32 = 10;

pub struct Inbox {
    redis: Option<Arc<SharedRedis>>,
    local: IntakeQueue,
    consumer: String,
    bound: usize,
    visibility: Duration,
    /// Updates handed out and not yet acknowledged or released.
    in_progress: Mutex<HashSet<Place>>,
    /// Local rows up to this id have been handed out.
    local_cursor: AtomicI64,
    /// Local rows up to this id were left by an earlier run.
    local_earlier: i64,
    /// This consumer's unacknowledged stream entries (an earlier run's) were taken up.
    own_pending_taken: AtomicBool,
    last_reclaim: Mutex<Option<Instant>>,
    reclaimed: AtomicU64,
    redelivered: AtomicU64,
    /// The last backlog read (refreshed by [`Inbox::refresh_backlog`]).
    backlog: Mutex<(u64, Option<i64>)>,
    /// Woken when an update is kept here, so this instance takes it at once.
    arrived: Notify,
}

impl Inbox {
    /// Opens the local queue; `consumer` is this instance's name in the stream's group.
    pub async fn open(
        redis: Option<Arc<SharedRedis>>,
        local: IntakeQueue,
        consumer: &str,
        bound: usize,
        visibility: Duration,
    ) -> Result<Inbox, InboxError> {
        let (earlier, local_earlier) = local.last().await?;
        if earlier > 0 {
            tracing::info!(
                updates = earlier,
                "the local intake queue holds updates from an earlier run: answering them first"
            );
        }
        if let Some(redis) = &redis
            && redis.intake_prepare().await.is_err()
        {
            tracing::warn!("the intake stream could not be prepared yet: it is when first read");
        }
        Ok(Inbox {
            redis,
            local,
            consumer: consumer.to_string(),
            bound,
            visibility,
            in_progress: Mutex::new(HashSet::new()),
            local_cursor: AtomicI64::new(0),
            local_earlier,
            own_pending_taken: AtomicBool::new(false),
            last_reclaim: Mutex::new(None),
            reclaimed: AtomicU64::new(0),
            redelivered: AtomicU64::new(0),
            backlog: Mutex::new((0, None)),
            arrived: Notify::new(),
        })
    }

    /// Keeps an update once: in the stream, or in the local queue without Redis or while it
    /// fails. Returns once the write is confirmed.
    pub async fn offer(&self, update_id: u32, update: &str) -> Result<Offered, InboxError> {
        if let Some(redis) = &self.redis
            && let Ok(appended) = redis.intake_append(self.bound, update_id, update).await
        {
            if appended == Offered::Kept {
                self.arrived.notify_one();
            }
            return Ok(appended);
        }
        let (queued, _) = self.local.backlog().await?;
        if queued >= self.bound as u64 {
            return Ok(Offered::Full);
        }
        if !self.local.push(update_id, update, unix_millis()).await? {
            return Ok(Offered::Duplicate);
        }
        self.arrived.notify_one();
        Ok(Offered::Kept)
    }

    /// Waits until an update may be waiting here, at most `at_most`.
    pub async fn wait(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.arrived.notified()).await;
    }

    /// Up to `room` updates for this instance: the local queue first, then this consumer's
    /// own unacknowledged entries (after a restart under the same INSTANCE_ID), entries of a
    /// silent instance (after the visibility timeout), then new ones.
    pub async fn take(self: &Arc<Self>, room: usize) -> Vec<Delivery> {
        let mut taken = Vec::new();
        if room == 0 {
            return taken;
        }
        match self
            .local
            .after(self.local_cursor.load(Ordering::Relaxed), room)
            .await
        {
            Ok(rows) => {
                for row in rows {
                    self.local_cursor.fetch_max(row.id, Ordering::Relaxed);
                    taken.push(self.local_delivery(row));
                }
            }
            Err(error) => tracing::warn!(%error, "reading the local intake queue failed"),
        }
        let Some(redis) = &self.redis else {
            return taken;
        };
        let mut left = room - taken.len();
        if left > 0 && !self.own_pending_taken.load(Ordering::Relaxed) {
            if let Ok(entries) = redis.intake_read(&self.consumer, left, true).await {
                // Fewer than asked: all of them are taken up.
                if entries.len() < left {
                    self.own_pending_taken.store(true, Ordering::Relaxed);
                }
                self.stream_deliveries(entries, true, &mut taken).await;
            }
            left = room - taken.len();
            // Consumers whose entries are gone and who are long silent: dead instances.
            if let Ok(removed) = redis
                .intake_forget_consumers(&self.consumer, self.visibility * FORGET_AFTER_TIMEOUTS)
                .await
                && removed > 0
            {
                tracing::info!(
                    consumers = removed,
                    "removed dead consumers from the intake group"
                );
            }
        }
        if left > 0 && self.reclaim_due() {
            if let Ok(entries) = redis
                .intake_reclaim(&self.consumer, self.visibility, left)
                .await
            {
                self.reclaimed
                    .fetch_add(entries.len() as u64, Ordering::Relaxed);
                if !entries.is_empty() {
                    tracing::warn!(
                        entries = entries.len(),
                        "took over updates a silent instance had accepted"
                    );
                }
                self.stream_deliveries(entries, true, &mut taken).await;
            }
            left = room - taken.len();
        }
        if left > 0
            && let Ok(entries) = redis.intake_read(&self.consumer, left, false).await
        {
            self.stream_deliveries(entries, false, &mut taken).await;
        }
        taken
    }

    /// Reclaiming is checked at a fraction of the visibility timeout, not on every read.
    fn reclaim_due(&self) -> bool {
        let mut last = lock(&self.last_reclaim);
        let due = last.is_none_or(|at| at.elapsed() >= self.visibility / 4);
        if due {
            *last = Some(Instant::now());
        }
        due
    }

    fn local_delivery(self: &Arc<Self>, row: QueuedUpdate) -> Delivery {
        if row.id <= self.local_earlier {
            self.redelivered.fetch_add(1, Ordering::Relaxed);
        }
        let place = Place::Local(row.id);
        lock(&self.in_progress).insert(place.clone());
        Delivery {
            update_id: row.update_id,
            update: row.update,
            replied: row
                .replied
                .and_then(|json| serde_json::from_str(&json).ok()),
            receipt: Receipt::new(self, place, row.update_id),
        }
    }

    async fn stream_deliveries(
        self: &Arc<Self>,
        entries: Vec<StreamEntry>,
        again: bool,
        taken: &mut Vec<Delivery>,
    ) {
        for entry in entries {
            let place = Place::Stream(entry.id.clone());
            if !lock(&self.in_progress).insert(place.clone()) {
                continue; // handed out already (own pending, read twice)
            }
            let mut replied = None;
            if again {
                self.redelivered.fetch_add(1, Ordering::Relaxed);
                if let Some(redis) = &self.redis {
                    replied = redis
                        .intake_replied(entry.update_id)
                        .await
                        .ok()
                        .flatten()
                        .and_then(|json| serde_json::from_str(&json).ok());
                }
            }
            taken.push(Delivery {
                update_id: entry.update_id,
                update: entry.update,
                replied,
                receipt: Receipt::new(self, place, entry.update_id),
            });
        }
    }

    /// Renews the claim on every stream entry this instance is answering.
    pub async fn renew_claims(&self) {
        let Some(redis) = &self.redis else {
            return;
        };
        let ids: Vec<String> = lock(&self.in_progress)
            .iter()
            .filter_map(|place| match place {
                Place::Stream(id) => Some(id.clone()),
                Place::Local(_) => None,
            })
            .collect();
        if redis.intake_renew(&self.consumer, &ids).await.is_err() {
            tracing::debug!("renewing intake claims failed; retried next beat");
        }
    }

    /// How often claims are renewed: well within the visibility timeout.
    pub fn renew_every(&self) -> Duration {
        self.visibility / 3
    }

    /// Reads the backlog now (the stream's length and the local queue's).
    pub async fn refresh_backlog(&self) {
        let mut count = 0;
        let mut oldest: Option<i64> = None;
        if let Ok((queued, first)) = self.local.backlog().await {
            count += queued;
            oldest = first;
        }
        if let Some(redis) = &self.redis
            && let Ok((length, first)) = redis.intake_backlog().await
        {
            count += length;
            oldest = match (oldest, first) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        *lock(&self.backlog) = (count, oldest);
    }

    pub fn figures(&self) -> InboxFigures {
        let (backlog, oldest) = *lock(&self.backlog);
        InboxFigures {
            backlog,
            oldest: oldest
                .map(|at| Duration::from_millis(u64::try_from(unix_millis() - at).unwrap_or(0))),
            reclaimed: self.reclaimed.load(Ordering::Relaxed),
            redelivered: self.redelivered.load(Ordering::Relaxed),
            in_progress: lock(&self.in_progress).len(),
        }
    }

    /// Updates this instance is answering now.
    pub fn in_progress(&self) -> usize {
        lock(&self.in_progress).len()
    }

    async fn acknowledge(&self, place: &Place) {
        let done = match place {
            Place::Stream(id) => match &self.redis {
                Some(redis) => redis.intake_ack(id).await.is_ok(),
                None => false,
            },
            Place::Local(id) => self.local.remove(*id).await.is_ok(),
        };
        if !done {
            // Still kept: it comes back (after the visibility timeout, or at the next start)
            // and, marked as replied, is only recorded again.
            tracing::warn!(?place, "acknowledging an answered update failed");
        }
        lock(&self.in_progress).remove(place);
    }

    async fn mark_replied(&self, place: &Place, update_id: u32, record: &str) {
        let marked = match place {
            Place::Stream(_) => match &self.redis {
                Some(redis) => redis.intake_mark_replied(update_id, record).await.is_ok(),
                None => false,
            },
            Place::Local(id) => self.local.mark_replied(*id, record).await.is_ok(),
        };
        if !marked {
            tracing::warn!(update_id, "the reply marker could not be written");
        }
    }

    pub async fn close(&self) {
        self.local.close().await;
    }
}

/// An update's claim on the inbox, carried by the request it became: acknowledged once the
/// request's record is safe, or released (left in the inbox for a retry) when it cannot be
/// answered now. Dropping it without either leaves the update for a retry too.
#[derive(Clone)]
pub struct Receipt {
    inner: Arc<ReceiptInner>,
}

struct ReceiptInner {
    inbox: Arc<Inbox>,
    place: Place,
    update_id: u32,
    settled: AtomicBool,
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Receipt(update {})", self.inner.update_id)
    }
}

impl Receipt {
    fn new(inbox: &Arc<Inbox>, place: Place, update_id: u32) -> Receipt {
        Receipt {
            inner: Arc::new(ReceiptInner {
                inbox: Arc::clone(inbox),
                place,
                update_id,
                settled: AtomicBool::new(false),
            }),
        }
    }

    /// The id of the record of this update's request: the same on every delivery, so that
    /// recording it again writes nothing twice.
    pub fn record_id(&self) -> String {
        format!("update-{}", self.inner.update_id)
    }

    /// Telegram accepted the reply: keeps the record with the update, so a delivery after a
    /// crash records the request instead of answering it again.
    pub async fn replied(&self, record: &RequestRecord) {
        if let Ok(json) = serde_json::to_string(record) {
            self.inner
                .inbox
                .mark_replied(&self.inner.place, self.inner.update_id, &json)
                .await;
        }
    }

    /// Acknowledges now (an update that needs no record: a command, a button press).
    pub fn acknowledge(&self) {
        if let Some(callback) = self.once() {
            callback();
        }
    }

    /// What the recorder calls once the record is safe: the acknowledgement.
    pub fn on_record_safe(&self) -> Option<OnSafe> {
        self.once()
    }

    fn once(&self) -> Option<OnSafe> {
        if self.inner.settled.swap(true, Ordering::Relaxed) {
            return None;
        }
        let inner = Arc::clone(&self.inner);
        Some(Box::new(move || {
            tokio::spawn(async move { inner.inbox.acknowledge(&inner.place).await });
        }))
    }

    /// Leaves the update in the inbox for a retry (by this instance's next run, or another).
    pub fn release(&self) {
        if !self.inner.settled.swap(true, Ordering::Relaxed) {
            lock(&self.inner.inbox.in_progress).remove(&self.inner.place);
        }
    }
}

impl Drop for ReceiptInner {
    fn drop(&mut self) {
        if !self.settled.load(Ordering::Relaxed) {
            lock(&self.inbox.in_progress).remove(&self.place);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Against the Redis at `PRISM_TEST_REDIS_URL` (default 127.0.0.1:6379), each test under a key
/// prefix of its own; without a server these fail under CI=true and are skipped elsewhere.
#[cfg(test)]
mod tests {
    use super::*;

    struct Setup {
        redis: Arc<SharedRedis>,
        prefix: String,
        dir: std::path::PathBuf,
    }

    impl Setup {
        async fn new(test: &str) -> Option<Setup> {
            let url = std::env::var("PRISM_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
            let prefix = format!("prism-test:inbox-{test}-{}:", std::process::id());
            let redis = Arc::new(SharedRedis::connect(&url, &prefix).expect("Redis URL"));
            if redis.ping().await.is_err() {
                assert!(
                    !std::env::var("CI").is_ok_and(|ci| ci == "true"),
                    "Redis at PRISM_TEST_REDIS_URL does not answer"
                );
                eprintln!("skipped: Redis does not answer");
                return None;
            }
            let dir = std::env::temp_dir().join(prefix.replace(':', "-"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir");
            Some(Setup { redis, prefix, dir })
        }

        async fn inbox(&self, consumer: &str, bound: usize, visibility: Duration) -> Arc<Inbox> {
            self.inbox_on(Some(Arc::clone(&self.redis)), consumer, bound, visibility)
                .await
        }

        async fn inbox_on(
            &self,
            redis: Option<Arc<SharedRedis>>,
            consumer: &str,
            bound: usize,
            visibility: Duration,
        ) -> Arc<Inbox> {
            let queue = IntakeQueue::open(&self.dir.join(format!("{consumer}.sqlite")))
                .await
                .expect("local queue");
            Arc::new(
                Inbox::open(redis, queue, consumer, bound, visibility)
                    .await
                    .expect("inbox"),
            )
        }

        async fn remove(self) {
            let client = redis::Client::open(
                std::env::var("PRISM_TEST_REDIS_URL")
                    .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            )
            .expect("URL");
            if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{}*", self.prefix))
                    .query_async(&mut c)
                    .await
                    .unwrap_or_default();
                if !keys.is_empty() {
                    let _: Result<i64, _> = redis::cmd("DEL").arg(keys).query_async(&mut c).await;
                }
            }
            std::fs::remove_dir_all(&self.dir).ok();
        }
    }

    fn update(id: u32) -> String {
        format!("{{\"update_id\":{id}}}")
    }

    async fn backlog(inbox: &Inbox) -> u64 {
        inbox.refresh_backlog().await;
        inbox.figures().backlog
    }

    #[tokio::test]
    async fn a_dead_consumers_entries_are_taken_over_with_their_reply_marker() {
        let Some(setup) = Setup::new("takeover").await else {
            return;
        };
        let visibility = Duration::from_millis(800);
        let first = setup.inbox("first", 100, visibility).await;
        assert_eq!(
            first.offer(1, &update(1)).await.expect("offer"),
            Offered::Kept
        );
        // Telegram delivering it again, to either instance: kept once.
        assert_eq!(
            first.offer(1, &update(1)).await.expect("offer"),
            Offered::Duplicate
        );
        assert_eq!(
            first.offer(2, &update(2)).await.expect("offer"),
            Offered::Kept
        );
        let taken = first.take(10).await;
        assert_eq!(
            taken.iter().map(|d| d.update_id).collect::<Vec<_>>(),
            [1, 2]
        );
        assert!(taken.iter().all(|d| d.replied.is_none()));
        let record = RequestRecord {
            id: taken[0].receipt.record_id(),
            user_id: 7,
            ..RequestRecord::default()
        };
        taken[0].receipt.replied(&record).await;
        // The first instance dies here: nothing acknowledged.
        drop(taken);
        drop(first);

        let second = setup.inbox("second", 100, visibility).await;
        assert!(
            second.take(10).await.is_empty(),
            "taken over before the timeout"
        );
        tokio::time::sleep(visibility + Duration::from_millis(300)).await;
        let taken = second.take(10).await;
        assert_eq!(
            taken.iter().map(|d| d.update_id).collect::<Vec<_>>(),
            [1, 2]
        );
        // Replied before the crash: recorded again, not answered again.
        assert_eq!(taken[0].replied.as_ref(), Some(&record));
        assert_eq!(taken[1].replied, None);
        let figures = second.figures();
        assert_eq!((figures.reclaimed, figures.redelivered), (2, 2));
        for delivery in &taken {
            delivery.receipt.acknowledge();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(backlog(&second).await, 0);
        assert_eq!(second.in_progress(), 0);
        setup.remove().await;
    }

    #[tokio::test]
    async fn silent_consumers_holding_nothing_leave_the_group() {
        let Some(setup) = Setup::new("forget").await else {
            return;
        };
        let visibility = Duration::from_millis(100);
        let ghost = setup.inbox("ghost", 100, visibility).await;
        ghost.offer(21, &update(21)).await.expect("offer");
        for delivery in ghost.take(10).await {
            delivery.receipt.acknowledge();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(ghost);
        let consumers = || async {
            let client = redis::Client::open(
                std::env::var("PRISM_TEST_REDIS_URL")
                    .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            )
            .expect("URL");
            let mut c = client
                .get_multiplexed_async_connection()
                .await
                .expect("Redis");
            let info: redis::streams::StreamInfoConsumersReply = redis::cmd("XINFO")
                .arg("CONSUMERS")
                .arg(format!("{}intake:stream", setup.prefix))
                .arg("prism")
                .query_async(&mut c)
                .await
                .expect("XINFO");
            info.consumers
                .into_iter()
                .map(|consumer| consumer.name)
                .collect::<Vec<_>>()
        };
        assert!(consumers().await.contains(&"ghost".to_string()));
        // Ten visibility timeouts of silence with nothing pending: removed by a live instance.
        tokio::time::sleep(visibility * FORGET_AFTER_TIMEOUTS).await;
        let alive = setup.inbox("alive", 100, visibility).await;
        assert!(alive.take(10).await.is_empty());
        assert!(!consumers().await.contains(&"ghost".to_string()));
        setup.remove().await;
    }

    #[tokio::test]
    async fn a_renewed_claim_is_never_taken_from_a_live_instance() {
        let Some(setup) = Setup::new("renewed").await else {
            return;
        };
        let visibility = Duration::from_millis(900);
        let worker = setup.inbox("worker", 100, visibility).await;
        worker.offer(5, &update(5)).await.expect("offer");
        let taken = worker.take(10).await;
        assert_eq!(taken.len(), 1);
        let other = setup.inbox("other", 100, visibility).await;
        // A job three times longer than the visibility timeout, renewing as it goes.
        for _ in 0..9 {
            tokio::time::sleep(visibility / 3).await;
            worker.renew_claims().await;
            assert!(other.take(10).await.is_empty(), "taken from a live worker");
        }
        taken[0].receipt.acknowledge();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(backlog(&worker).await, 0);
        setup.remove().await;
    }

    #[tokio::test]
    async fn the_bound_turns_updates_away_in_the_stream_and_in_the_local_queue() {
        let Some(setup) = Setup::new("bound").await else {
            return;
        };
        let shared = setup.inbox("shared", 2, Duration::from_secs(30)).await;
        for id in [1, 2] {
            assert_eq!(
                shared.offer(id, &update(id)).await.expect("offer"),
                Offered::Kept
            );
        }
        assert_eq!(
            shared.offer(3, &update(3)).await.expect("offer"),
            Offered::Full
        );
        // Turned away, not remembered: Telegram's retry is kept once there is room.
        let taken = shared.take(10).await;
        taken[0].receipt.acknowledge();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            shared.offer(3, &update(3)).await.expect("offer"),
            Offered::Kept
        );

        let local = setup
            .inbox_on(None, "local", 1, Duration::from_secs(30))
            .await;
        assert_eq!(
            local.offer(8, &update(8)).await.expect("offer"),
            Offered::Kept
        );
        assert_eq!(
            local.offer(9, &update(9)).await.expect("offer"),
            Offered::Full
        );
        setup.remove().await;
    }

    #[tokio::test]
    async fn while_redis_fails_updates_are_kept_locally_and_answered_from_there() {
        let Some(setup) = Setup::new("fallback").await else {
            return;
        };
        // Nothing listens there: every Redis call fails.
        let closed = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            probe.local_addr().expect("address").port()
        };
        let down = Arc::new(
            SharedRedis::connect(&format!("redis://127.0.0.1:{closed}"), &setup.prefix)
                .expect("URL"),
        );
        let inbox = setup
            .inbox_on(Some(down), "fallback", 100, Duration::from_secs(30))
            .await;
        assert_eq!(
            inbox.offer(11, &update(11)).await.expect("offer"),
            Offered::Kept
        );
        let taken = inbox.take(10).await;
        assert_eq!(taken.iter().map(|d| d.update_id).collect::<Vec<_>>(), [11]);
        taken[0].receipt.acknowledge();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(backlog(&inbox).await, 0);
        setup.remove().await;
    }
}
