//! The one place that talks to Redis (REDIS_URL): what several instances share — results,
//! coalescing locks, rate limits, update ids and per-chat order. Every call is bounded by a
//! short timeout; a failure marks Redis unavailable for a moment, during which callers get
//! [`Unavailable`] at once and use their in-process fallback, so a Redis outage costs one
//! timeout, not one per request. The connection manager reconnects when the connection
//! drops; after a few failures in a row (timeouts on a half-open connection do not drop it) a
//! fresh manager replaces it. A background probe tries Redis every second while it fails, so
//! requests fail fast for the whole outage and the first one after it is shared again.
//! Clean-up calls (releasing a lock, ending a turn, storing a result) ignore the pause: left
//! undone they would make other instances wait for an expiry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncTypedCommands, Script};
use tokio_util::sync::CancellationToken;

/// A local Redis answers in well under a millisecond; longer means trouble (and, since the
/// intake waits on these calls, would slow every request).
const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// The client's own response timeout fires first, so the manager sees the failure.
const CALL_DEADLINE: Duration = Duration::from_millis(350);
/// Failures in a row after which the connection manager is replaced.
const REBUILD_AFTER_FAILURES: u32 = 3;
/// After a failure, calls fail fast for this long before Redis is tried again.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// How often the background probe tries a failing Redis.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Redis did not answer (or answered with an error); the caller falls back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

#[derive(Debug, thiserror::Error)]
#[error("REDIS_URL: {0}")]
pub struct RedisConfigError(#[from] redis::RedisError);

pub struct SharedRedis {
    client: redis::Client,
    connection: Mutex<ConnectionManager>,
    prefix: String,
    state: Mutex<LinkState>,
    /// Set while a failure is recent; read on every call without the lock.
    failing: AtomicBool,
    /// A background probe finds out when Redis is back: while it runs, calls during a failure
    /// fail fast instead of each trying once the pause is over.
    probing: AtomicBool,
}

#[derive(Default)]
struct LinkState {
    paused_until: Option<Instant>,
    last_error: Option<String>,
    failing_since: Option<Instant>,
    failures_in_a_row: u32,
}

/// Whether a call honours the pause after a failure.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pause {
    Respect,
    /// Clean-up: tried even during the pause.
    Ignore,
}

/// What /health says about Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisHealth {
    Connected,
    /// Failing since this long, with the last error.
    Failing {
        for_: Duration,
        error: String,
    },
}

/// One rate-limit decision made by Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedDecision {
    pub allowed: bool,
    /// When refused: milliseconds until the oldest request leaves the window.
    pub retry_after_ms: u64,
    /// When refused: whether the user was not told in the last minute.
    pub notify: bool,
}

/// Sliding-window limit in one atomic step on Redis's clock. KEYS: the user's window (a
/// sorted set of request times), the "told recently" flag. ARGV: limit, window ms, a unique
/// member for this request, notice interval ms.
const RATE_LIMIT_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  redis.call('DEL', KEYS[2])
  return {1, 0, 0}
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
local notify = redis.call('SET', KEYS[2], '1', 'NX', 'PX', tonumber(ARGV[4])) and 1 or 0
return {0, math.max(oldest + window - now, 0), notify}
";

/// Deletes a lock only if this instance still holds it (it may have expired and been taken).
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Extends a lock's expiry only if this instance still holds it. KEYS: the lock. ARGV: the
/// holder's token, the new expiry (ms).
const RENEW_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
";

/// Whether an earlier request of a chat is still to reply (1) or not (0). KEYS: the chat's
/// sorted set of pending sequence numbers. ARGV: this request's sequence, the prefix of the
/// per-request liveness keys. Stops at the first live entry; entries whose liveness key expired
/// (their instance died) are dropped on the way.
const EARLIER_PENDING_SCRIPT: &str = r"
local earlier = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
for _, member in ipairs(earlier) do
  if redis.call('EXISTS', ARGV[2] .. member) == 1 then
    return 1
  end
  redis.call('ZREM', KEYS[1], member)
end
return 0
";

/// Scripts are sent once and then called by their hash.
static RATE_LIMIT: LazyLock<Script> = LazyLock::new(|| Script::new(RATE_LIMIT_SCRIPT));
static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE_SCRIPT));
static RENEW: LazyLock<Script> = LazyLock::new(|| Script::new(RENEW_SCRIPT));
static EARLIER_PENDING: LazyLock<Script> = LazyLock::new(|| Script::new(EARLIER_PENDING_SCRIPT));

impl SharedRedis {
    /// Does not connect yet: an instance starts (and serves, in-process) while Redis is down.
    pub fn connect(url: &str, prefix: &str) -> Result<SharedRedis, RedisConfigError> {
        let client = redis::Client::open(url)?;
        let connection = Self::manager(&client)?;
        Ok(SharedRedis {
            client,
            connection: Mutex::new(connection),
            prefix: prefix.to_string(),
            state: Mutex::new(LinkState::default()),
            failing: AtomicBool::new(false),
            probing: AtomicBool::new(false),
        })
    }

    fn manager(client: &redis::Client) -> redis::RedisResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        ConnectionManager::new_lazy_with_config(client.clone(), config)
    }

    /// A key under this deployment's prefix.
    pub fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    pub fn health(&self) -> RedisHealth {
        let state = self.state();
        match (&state.failing_since, &state.last_error) {
            (Some(since), Some(error)) if self.failing.load(Ordering::Relaxed) => {
                RedisHealth::Failing {
                    for_: since.elapsed(),
                    error: error.clone(),
                }
            }
            _ => RedisHealth::Connected,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one call with the timeout and the failure bookkeeping.
    pub(super) async fn call<T, F>(
        &self,
        call: impl FnOnce(ConnectionManager) -> F,
    ) -> Result<T, Unavailable>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        self.call_with(Pause::Respect, call).await
    }

    /// A clean-up call: tried even during the pause after a failure.
    pub(super) async fn clean_up<T, F>(
        &self,
        call: impl FnOnce(ConnectionManager) -> F,
    ) -> Result<T, Unavailable>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        self.call_with(Pause::Ignore, call).await
    }

    async fn call_with<T, F>(
        &self,
        pause: Pause,
        call: impl FnOnce(ConnectionManager) -> F,
    ) -> Result<T, Unavailable>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        if pause == Pause::Respect
            && self.failing.load(Ordering::Relaxed)
            && (self.probing.load(Ordering::Relaxed)
                || self
                    .state()
                    .paused_until
                    .is_some_and(|until| Instant::now() < until))
        {
            return Err(Unavailable);
        }
        let connection = self
            .connection
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let outcome = tokio::time::timeout(CALL_DEADLINE, call(connection)).await;
        match outcome {
            Ok(Ok(value)) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    let mut state = self.state();
                    state.failing_since = None;
                    state.failures_in_a_row = 0;
                    tracing::info!("Redis answers again: shared mode restored");
                }
                Ok(value)
            }
            Ok(Err(error)) => Err(self.failed(error.to_string())),
            Err(_) => Err(self.failed(format!("no answer in {CALL_DEADLINE:?}"))),
        }
    }

    fn failed(&self, error: String) -> Unavailable {
        let mut state = self.state();
        let now = Instant::now();
        state.paused_until = Some(now + PAUSE_AFTER_FAILURE);
        state.failures_in_a_row += 1;
        if state.failures_in_a_row >= REBUILD_AFTER_FAILURES {
            state.failures_in_a_row = 0;
            if let Ok(fresh) = Self::manager(&self.client) {
                *self.connection.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
            }
        }
        if !self.failing.swap(true, Ordering::Relaxed) {
            state.failing_since = Some(now);
            tracing::warn!(%error, "Redis failing: in-process fallback until it answers");
        }
        state.last_error = Some(error);
        Unavailable
    }

    /// Pings Redis every PROBE_EVERY while it fails, until `stop`: the reconnect happens here,
    /// so the first request after Redis returns is shared again, and no request waits for a
    /// timeout during the outage.
    pub fn spawn_probe(self: &Arc<Self>, stop: CancellationToken) {
        self.probing.store(true, Ordering::Relaxed);
        let redis = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(PROBE_EVERY) => {}
                }
                if redis.failing.load(Ordering::Relaxed) {
                    let _ = redis
                        .clean_up(|mut c| async move { c.ping().await.map(drop) })
                        .await;
                }
            }
            redis.probing.store(false, Ordering::Relaxed);
        });
    }

    pub async fn ping(&self) -> Result<(), Unavailable> {
        self.call(|mut c| async move { c.ping().await.map(drop) })
            .await
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Unavailable> {
        let key = key.to_string();
        self.call(|mut c| async move {
            let value: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query_async(&mut c).await?;
            Ok(value)
        })
        .await
    }

    pub async fn set_with_ttl(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), Unavailable> {
        let (key, value) = (key.to_string(), value.to_vec());
        let ms = ttl.as_millis().max(1) as u64;
        self.clean_up(|mut c| async move { c.pset_ex(&key, value, ms).await })
            .await
    }

    /// SET NX with expiry: true when this call created the key.
    pub async fn set_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, Unavailable> {
        let (key, value) = (key.to_string(), value.to_string());
        let ms = ttl.as_millis().max(1) as u64;
        self.call(|mut c| async move {
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&value)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query_async(&mut c)
                .await?;
            Ok(set.is_some())
        })
        .await
    }

    pub async fn exists(&self, key: &str) -> Result<bool, Unavailable> {
        let key = key.to_string();
        self.call(|mut c| async move { c.exists(&key).await }).await
    }

    pub async fn delete(&self, key: &str) -> Result<(), Unavailable> {
        let key = key.to_string();
        self.clean_up(|mut c| async move { c.del(&key).await.map(drop) })
            .await
    }

    /// Deletes `key` only while it still holds `token`.
    /// Extends a lock this instance holds (with `token`) by `ttl` from now.
    pub async fn renew(&self, key: &str, token: &str, ttl: Duration) -> Result<(), Unavailable> {
        let (key, token) = (key.to_string(), token.to_string());
        let ms = ttl.as_millis().max(1) as u64;
        self.clean_up(|mut c| async move {
            RENEW
                .key(&key)
                .arg(&token)
                .arg(ms)
                .invoke_async::<i64>(&mut c)
                .await
                .map(drop)
        })
        .await
    }

    pub async fn release(&self, key: &str, token: &str) -> Result<(), Unavailable> {
        let (key, token) = (key.to_string(), token.to_string());
        self.clean_up(|mut c| async move {
            let _: i64 = RELEASE.key(&key).arg(&token).invoke_async(&mut c).await?;
            Ok(())
        })
        .await
    }

    /// Counts a request in a sliding window unless the window is full.
    pub async fn rate_limit(
        &self,
        window_key: &str,
        notice_key: &str,
        limit: u32,
        window: Duration,
        member: &str,
        notice_interval: Duration,
    ) -> Result<SharedDecision, Unavailable> {
        let keys = [window_key.to_string(), notice_key.to_string()];
        let member = member.to_string();
        let (window_ms, notice_ms) = (
            window.as_millis() as u64,
            notice_interval.as_millis() as u64,
        );
        self.call(|mut c| async move {
            let (allowed, retry_after_ms, notify): (i64, i64, i64) = RATE_LIMIT
                .key(&keys[0])
                .key(&keys[1])
                .arg(limit)
                .arg(window_ms)
                .arg(&member)
                .arg(notice_ms)
                .invoke_async(&mut c)
                .await?;
            Ok(SharedDecision {
                allowed: allowed == 1,
                retry_after_ms: retry_after_ms.max(0) as u64,
                notify: notify == 1,
            })
        })
        .await
    }

    /// Removes one member from a sorted set (a refunded request, a finished turn).
    pub async fn remove_member(&self, key: &str, member: &str) -> Result<(), Unavailable> {
        let (key, member) = (key.to_string(), member.to_string());
        self.clean_up(|mut c| async move { c.zrem(&key, &member).await.map(drop) })
            .await
    }

    /// Registers a pending request of a chat: its sequence in the chat's set, and a liveness
    /// key that expires if this instance dies before the request replies.
    pub async fn join_queue(
        &self,
        queue_key: &str,
        alive_key: &str,
        sequence: u64,
        ttl: Duration,
    ) -> Result<(), Unavailable> {
        let (queue_key, alive_key) = (queue_key.to_string(), alive_key.to_string());
        let ms = ttl.as_millis().max(1) as u64;
        self.call(|mut c| async move {
            redis::pipe()
                .atomic()
                .zadd(&queue_key, sequence, sequence)
                .ignore()
                .pexpire(&queue_key, ms as i64)
                .ignore()
                .pset_ex(&alive_key, 1, ms)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    /// 1 while an earlier request of the chat is still to reply, else 0 (see
    /// [`EARLIER_PENDING_SCRIPT`]).
    pub async fn earlier_pending(
        &self,
        queue_key: &str,
        alive_prefix: &str,
        sequence: u64,
    ) -> Result<u64, Unavailable> {
        let (queue_key, alive_prefix) = (queue_key.to_string(), alive_prefix.to_string());
        self.call(|mut c| async move {
            let pending: i64 = EARLIER_PENDING
                .key(&queue_key)
                .arg(sequence)
                .arg(&alive_prefix)
                .invoke_async(&mut c)
                .await?;
            Ok(pending.max(0) as u64)
        })
        .await
    }

    /// Ends a request's turn: out of the chat's set, liveness key gone.
    pub async fn leave_queue(
        &self,
        queue_key: &str,
        alive_key: &str,
        sequence: u64,
    ) -> Result<(), Unavailable> {
        let (queue_key, alive_key) = (queue_key.to_string(), alive_key.to_string());
        self.clean_up(|mut c| async move {
            redis::pipe()
                .atomic()
                .zrem(&queue_key, sequence)
                .ignore()
                .del(&alive_key)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }
}
