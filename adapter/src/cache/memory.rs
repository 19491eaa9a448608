//! The in-process cache (moka): least-recently-used eviction within a byte budget, and a TTL.

use std::time::Duration;

use moka::policy::EvictionPolicy;
use moka::sync::Cache;

use super::CachedResult;
use crate::delivery::Delivery;

pub struct MemoryCache {
    capacity_bytes: usize,
    entries: Cache<String, CachedResult>,
}

impl MemoryCache {
    pub fn new(capacity_bytes: usize, ttl: Duration) -> MemoryCache {
        let entries = Cache::builder()
            .max_capacity(capacity_bytes as u64)
            // Weighed by encoded size; an entry without bytes still takes a slot.
            .weigher(|_key: &String, result: &CachedResult| {
                u32::try_from(result.bytes.len()).unwrap_or(u32::MAX).max(1)
            })
            .eviction_policy(EvictionPolicy::lru())
            .time_to_live(ttl)
            .build();
        MemoryCache {
            capacity_bytes,
            entries,
        }
    }

    pub fn get(&self, key: &str) -> Option<CachedResult> {
        self.entries.get(key)
    }

    /// Stores a result; results larger than the whole budget are not kept.
    pub fn put(&self, key: String, result: CachedResult) {
        if result.bytes.len() <= self.capacity_bytes {
            self.entries.insert(key, result);
        }
    }

    /// Records the file id Telegram gave a delivered result.
    pub fn remember_file_id(&self, key: &str, delivery: Delivery, file_id: String) {
        if let Some(mut result) = self.entries.get(key) {
            result.set_file_id(delivery, file_id);
            self.entries.insert(key.to_string(), result);
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
        let cache = MemoryCache::new(100, Duration::from_millis(50));
        cache.put("a".into(), result(10));
        cache.remember_file_id("a", Delivery::Photo, "F1".into());
        let hit = cache.get("a").expect("fresh");
        assert_eq!(hit.file_id(Delivery::Photo), Some("F1"));
        assert_eq!(hit.file_id(Delivery::Document), None);
        std::thread::sleep(Duration::from_millis(80));
        assert!(cache.get("a").is_none());
        cache.put("b".into(), result(10));
        cache.forget("b");
        assert_eq!(cache.usage().0, 0);
    }
}
