//! The in-process cache (moka): least-recently-used eviction within a byte budget, and a TTL.

use std::time::{Duration, Instant};

use moka::policy::EvictionPolicy;
use moka::sync::Cache;

use super::CachedResult;
use crate::telegram::delivery::Delivery;

pub struct MemoryCache {
    capacity_bytes: usize,
    ttl: Duration,
    entries: Cache<String, Entry>,
}

/// A result and when it stops being served. Lookups compare this with the time they are
/// given (so tests step the clock instead of sleeping); moka's own TTL, the same length,
/// frees the memory of entries nobody asks for again.
#[derive(Clone)]
struct Entry {
    result: CachedResult,
    expires: Instant,
}

impl MemoryCache {
    pub fn new(capacity_bytes: usize, ttl: Duration) -> MemoryCache {
        let entries = Cache::builder()
            .max_capacity(capacity_bytes as u64)
            // Weighed by encoded size; an entry without bytes still takes a slot.
            .weigher(|_key: &String, entry: &Entry| {
                u32::try_from(entry.result.bytes.len())
                    .unwrap_or(u32::MAX)
                    .max(1)
            })
            .eviction_policy(EvictionPolicy::lru())
            .time_to_live(ttl)
            .build();
        MemoryCache {
            capacity_bytes,
            ttl,
            entries,
        }
    }

    pub fn get(&self, key: &str) -> Option<CachedResult> {
        self.get_at(key, Instant::now())
    }

    fn get_at(&self, key: &str, now: Instant) -> Option<CachedResult> {
        let entry = self.entries.get(key)?;
        if now >= entry.expires {
            self.entries.invalidate(key);
            return None;
        }
        Some(entry.result)
    }

    /// Stores a result; results larger than the whole budget are not kept.
    pub fn put(&self, key: String, result: CachedResult) {
        self.put_at(key, result, Instant::now());
    }

    fn put_at(&self, key: String, result: CachedResult, now: Instant) {
        if result.bytes.len() <= self.capacity_bytes {
            let expires = now + self.ttl;
            self.entries.insert(key, Entry { result, expires });
        }
    }

    /// Records the file id Telegram gave a delivered result; the entry keeps its expiry.
    pub fn remember_file_id(&self, key: &str, delivery: Delivery, file_id: String) {
        if let Some(mut entry) = self.entries.get(key) {
            entry.result.set_file_id(delivery, file_id);
            self.entries.insert(key.to_string(), entry);
        }
    }

    pub fn forget(&self, key: &str) {
        self.entries.invalidate(key);
    }

    /// Applies pending evictions and expiries (run every CLEANUP_INTERVAL; lookups check
    /// the TTL themselves).
    pub fn cleanup(&self) {
        self.entries.run_pending_tasks();
    }

    /// Drops every entry (memory pressure).
    pub fn clear(&self) {
        self.entries.invalidate_all();
        self.entries.run_pending_tasks();
    }

    /// Entries and bytes held, and the budget.
    pub fn usage(&self) -> (usize, usize, usize) {
        self.entries.run_pending_tasks();
        (
            self.entries.entry_count() as usize,
            self.entries.weighted_size() as usize,
            self.capacity_bytes,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prism_engine::OutputFormat;

    fn result(size: usize) -> CachedResult {
        CachedResult {
            bytes: vec![0; size].into(),
            format: OutputFormat::Jpeg,
            width: 1,
            height: 1,
            has_alpha: false,
            file_ids: Vec::new(),
        }
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let cache = MemoryCache::new(100, Duration::from_secs(60));
        cache.put("a".into(), result(40));
        cache.put("b".into(), result(40));
        cache.cleanup();
        assert!(cache.get("a").is_some()); // a is now newer than b
        cache.put("c".into(), result(40));
        cache.cleanup();
        assert!(cache.get("b").is_none());
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
        assert_eq!(cache.usage(), (2, 80, 100));
        cache.put("huge".into(), result(101));
        assert!(cache.get("huge").is_none());
    }

    #[test]
    fn ttl_and_file_ids() {
        let ttl = Duration::from_secs(60);
        let cache = MemoryCache::new(100, ttl);
        let stored = Instant::now();
        cache.put_at("a".into(), result(10), stored);
        cache.remember_file_id("a", Delivery::Photo, "F1".into());
        let hit = cache
            .get_at("a", stored + ttl - Duration::from_millis(1))
            .expect("fresh until the TTL is over");
        assert_eq!(hit.file_id(Delivery::Photo), Some("F1"));
        assert_eq!(hit.file_id(Delivery::Document), None);
        assert!(cache.get_at("a", stored + ttl).is_none(), "expired");
        assert!(cache.get("a").is_none(), "and dropped");
        cache.put("b".into(), result(10));
        cache.forget("b");
        assert_eq!(cache.usage().0, 0);
    }
}
