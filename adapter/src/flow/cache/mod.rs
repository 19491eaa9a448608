//! Results cache: keyed by Telegram's `file_unique_id`, the canonical pipeline and how the
//! result is to be delivered, so a repeated request skips download and processing; it also
//! remembers the `file_id` Telegram gave each delivered result, so the repeat is answered
//! without an upload.
//!
//! Two layers: the encoded bytes in process (moka, IMAGE_CACHE_MB), and — with REDIS_URL — the
//! delivered result's `file_id` and shape in Redis, shared by every instance for
//! IMAGE_CACHE_TTL. Telegram honours a bot's `file_id` from any instance, so a repeat that
//! lands on another instance is answered from Redis alone; bytes stay out of Redis (see the
//! README's "Several instances").

mod memory;
mod shared;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use memory::MemoryCache;
use prism_engine::OutputFormat;
use shared::SharedCache;

use crate::shared::redis::SharedRedis;
use crate::telegram::delivery::Delivery;

/// One processed image.
#[derive(Debug, Clone)]
pub struct CachedResult {
    /// Empty when the result came from the shared cache (only its `file_id` is known).
    pub bytes: bytes::Bytes,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
    /// Telegram file ids of this result as sent, by delivery.
    pub file_ids: Vec<(Delivery, String)>,
}

impl CachedResult {
    pub fn file_id(&self, delivery: Delivery) -> Option<&str> {
        self.file_ids
            .iter()
            .find(|(d, _)| *d == delivery)
            .map(|(_, id)| id.as_str())
    }

    pub fn set_file_id(&mut self, delivery: Delivery, file_id: String) {
        self.file_ids.retain(|(d, _)| *d != delivery);
        self.file_ids.push((delivery, file_id));
    }
}

/// The cache key for an input file, a pipeline and the requested delivery (`photo`,
/// `file` or `sticker`): the same request always maps to the same sent message kind.
pub fn key(file_unique_id: &str, canonical_pipeline: &str, delivery_request: &str) -> String {
    format!("{file_unique_id}|{canonical_pipeline}|{delivery_request}")
}

/// Counters for /performance and /health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub bytes: usize,
    pub capacity_bytes: usize,
    pub hits: u64,
    pub shared_hits: u64,
    pub misses: u64,
}

impl CacheStats {
    pub fn hit_rate(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }
}

pub struct ResultsCache {
    local: MemoryCache,
    shared: Option<SharedCache>,
    hits: AtomicU64,
    shared_hits: AtomicU64,
    misses: AtomicU64,
}

impl ResultsCache {
    pub fn new(capacity_bytes: usize, ttl: Duration, redis: Option<Arc<SharedRedis>>) -> Self {
        ResultsCache {
            local: MemoryCache::new(capacity_bytes, ttl),
            shared: redis.map(|redis| SharedCache::new(redis, ttl)),
            hits: AtomicU64::new(0),
            shared_hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// This process's bytes first, then the shared `file_id`. A failing Redis is a miss.
    pub async fn get(&self, key: &str) -> Option<CachedResult> {
        let found = self.lookup(key).await;
        let counter = match &found {
            Some((_, true)) => {
                self.shared_hits.fetch_add(1, Ordering::Relaxed);
                &self.hits
            }
            Some(_) => &self.hits,
            None => &self.misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found.map(|(result, _)| result)
    }

    /// Whether a result is there yet, without counting a lookup (for requests that wait on
    /// another one's job).
    pub async fn contains(&self, key: &str) -> bool {
        self.lookup(key).await.is_some()
    }

    /// The result, and whether it came from the shared layer.
    async fn lookup(&self, key: &str) -> Option<(CachedResult, bool)> {
        if let Some(hit) = self.local.get(key) {
            return Some((hit, false));
        }
        let shared = self.shared.as_ref()?;
        shared.get(key).await.map(|hit| (hit, true))
    }

    /// Keeps a fresh result's bytes in process (until it is sent, nothing is shared).
    pub fn put(&self, key: String, result: CachedResult) {
        self.local.put(key, result);
    }

    /// A result was delivered: its `file_id` serves repeats here and on every instance.
    pub async fn remember_file_id(
        &self,
        key: &str,
        result: &CachedResult,
        delivery: Delivery,
        file_id: String,
    ) {
        if let Some(shared) = &self.shared {
            shared.put(key, result, delivery, &file_id).await;
        }
        self.local.remember_file_id(key, delivery, file_id);
    }

    /// Drops a result whose `file_id` Telegram no longer honours.
    pub async fn forget(&self, key: &str) {
        self.local.forget(key);
        if let Some(shared) = &self.shared {
            shared.forget(key).await;
        }
    }

    pub fn cleanup(&self) {
        self.local.cleanup();
    }

    /// Drops this process's cached bytes; shared file ids stay.
    pub fn clear_local(&self) {
        self.local.clear();
    }

    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    pub fn stats(&self) -> CacheStats {
        let (entries, bytes, capacity_bytes) = self.local.usage();
        CacheStats {
            entries,
            bytes,
            capacity_bytes,
            hits: self.hits.load(Ordering::Relaxed),
            shared_hits: self.shared_hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}
