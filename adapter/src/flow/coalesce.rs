//! Identical requests arriving together run the engine once. In process, the first request
//! for a cache key leads and the others wait for it; across instances (REDIS_URL) the leader
//! also holds a Redis lock with an expiry, and requests elsewhere poll for the result it
//! caches. The leader renews its lock while it works, so the lock can expire soon after a
//! leader dies (a crash costs identical requests seconds, not a minute); a leader that fails
//! lets the next request try.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::Shared;
use tokio::sync::oneshot;

use crate::shared::redis::SharedRedis;

type Done = Shared<oneshot::Receiver<()>>;

/// How long a lock outlives its last renewal: how long a dead leader holds up identical
/// requests on other instances.
const LOCK_TTL: Duration = Duration::from_secs(10);
/// A live leader renews its lock this often.
const LOCK_RENEW_EVERY: Duration = Duration::from_secs(3);
/// How often a request waiting on another instance checks for its result.
const SHARED_POLL: Duration = Duration::from_millis(20);

pub struct Coalescer {
    in_flight: Mutex<HashMap<String, Done>>,
    shared: Option<Arc<SharedRedis>>,
    token_prefix: String,
    tokens: AtomicU64,
}

/// What a request does about its key.
pub enum Role {
    /// Run the job; dropping the guard (after the result is cached) lets the others go.
    Lead(LeadGuard),
    /// Another request leads: wait, then look in the cache again.
    Follow(Follow),
}

pub enum Follow {
    Here(Done),
    /// Another instance holds the lock.
    Elsewhere {
        lock: String,
        redis: Arc<SharedRedis>,
    },
}

pub struct LeadGuard {
    coalescer: Arc<Coalescer>,
    key: String,
    done: Option<oneshot::Sender<()>>,
    /// The Redis lock and this holder's token, when taken.
    lock: Option<(String, String)>,
    /// Renews the lock until dropped.
    renewing: Option<tokio_util::sync::DropGuard>,
}

impl Coalescer {
    pub fn new(shared: Option<Arc<SharedRedis>>, instance: &str) -> Coalescer {
        Coalescer {
            in_flight: Mutex::new(HashMap::new()),
            shared,
            token_prefix: format!("{instance}-{}-", crate::clock::unix_millis()),
            tokens: AtomicU64::new(0),
        }
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, Done>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn role(self: &Arc<Self>, key: &str) -> Role {
        let done = {
            let mut in_flight = self.in_flight();
            if let Some(done) = in_flight.get(key) {
                return Role::Follow(Follow::Here(done.clone()));
            }
            let (done, signal) = oneshot::channel();
            in_flight.insert(key.to_string(), signal.shared());
            done
        };
        let mut guard = LeadGuard {
            coalescer: Arc::clone(self),
            key: key.to_string(),
            done: Some(done),
            lock: None,
            renewing: None,
        };
        let Some(redis) = &self.shared else {
            return Role::Lead(guard);
        };
        let lock = redis.key("lock", key);
        let token = format!(
            "{}{}",
            self.token_prefix,
            self.tokens.fetch_add(1, Ordering::Relaxed)
        );
        match redis.set_if_absent(&lock, &token, LOCK_TTL).await {
            Ok(true) => {
                guard.renewing = Some(renew_while_leading(
                    Arc::clone(redis),
                    lock.clone(),
                    token.clone(),
                ));
                guard.lock = Some((lock, token));
                Role::Lead(guard)
            }
            // Followers here wake up and find the lock taken too.
            Ok(false) => Role::Follow(Follow::Elsewhere {
                lock,
                redis: Arc::clone(redis),
            }),
            // Redis failing: coalesce within this instance only.
            Err(_) => Role::Lead(guard),
        }
    }

    /// Jobs led by this process right now.
    pub fn in_flight_count(&self) -> usize {
        self.in_flight().len()
    }
}

/// Renews the lock every LOCK_RENEW_EVERY until the returned guard is dropped.
fn renew_while_leading(
    redis: Arc<SharedRedis>,
    lock: String,
    token: String,
) -> tokio_util::sync::DropGuard {
    let stop = tokio_util::sync::CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped.cancelled() => break,
                _ = tokio::time::sleep(LOCK_RENEW_EVERY) => {
                    let _ = redis.renew(&lock, &token, LOCK_TTL).await;
                }
            }
        }
    });
    stop.drop_guard()
}

impl Follow {
    /// Returns when the leader is done (or gone); `cached` says whether its result can be
    /// looked up yet, so a follower elsewhere stops polling as soon as it appears.
    pub async fn wait<F, Fut>(self, cached: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = bool>,
    {
        match self {
            Follow::Here(done) => {
                let _ = done.await;
            }
            Follow::Elsewhere { lock, redis } => {
                let deadline = Instant::now() + LOCK_TTL;
                while Instant::now() < deadline {
                    tokio::time::sleep(SHARED_POLL).await;
                    if cached().await || !matches!(redis.exists(&lock).await, Ok(true)) {
                        break;
                    }
                }
            }
        }
    }
}

impl LeadGuard {
    /// The result's bytes are in this process's cache: the requests waiting here may send
    /// them now, without waiting for this one's reply (which may wait for its chat's turn,
    /// possibly behind one of them).
    pub fn cached_here(&mut self) {
        self.coalescer.in_flight().remove(&self.key);
        drop(self.done.take());
    }

    /// Lets requests on other instances stop waiting for this one (they run the job).
    pub async fn release_shared(&mut self) {
        self.renewing = None;
        if let (Some((lock, token)), Some(redis)) = (self.lock.take(), &self.coalescer.shared) {
            let _ = redis.release(&lock, &token).await;
        }
    }

    /// Ends the lead: the result is cached (or the job failed); waiting requests go on.
    pub async fn release(mut self) {
        self.release_shared().await;
    }
}

impl Drop for LeadGuard {
    fn drop(&mut self) {
        if self.done.is_some() {
            self.cached_here();
        }
        // Not released explicitly (the task was dropped): the lock's expiry frees it.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_leader_per_key_in_process() {
        let coalescer = Arc::new(Coalescer::new(None, "test"));
        let Role::Lead(lead) = coalescer.role("k").await else {
            panic!("the first request leads");
        };
        let Role::Follow(follow) = coalescer.role("k").await else {
            panic!("the second follows");
        };
        assert!(matches!(coalescer.role("other").await, Role::Lead(_)));
        let waiter = tokio::spawn(follow.wait(|| async { false }));
        // One thread: yielding lets the follower run until it waits, so it has had every
        // chance to finish early.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished());
        lead.release().await;
        waiter.await.expect("follower wakes");
        assert!(matches!(coalescer.role("k").await, Role::Lead(_)));
    }
}
