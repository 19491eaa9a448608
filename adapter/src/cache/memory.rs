//! The in-process cache: least-recently-used eviction within a byte budget, and a TTL.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{CacheStats, CachedResult};
use crate::delivery::Delivery;

pub struct MemoryCache {
    capacity_bytes: usize,
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Last-use tick → key, oldest first.
    recency: BTreeMap<u64, String>,
    tick: u64,
    bytes: usize,
    hits: u64,
    misses: u64,
}

struct Entry {
    result: CachedResult,
    expires: Instant,
    last_used: u64,
}

impl MemoryCache {
    pub fn new(capacity_bytes: usize, ttl: Duration) -> MemoryCache {
        MemoryCache {
            capacity_bytes,
            ttl,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<CachedResult> {
        let mut state = self.state();
        let now = Instant::now();
        let expired = match state.entries.get(key) {
            None => {
                state.misses += 1;
                return None;
            }
            Some(entry) => entry.expires <= now,
        };
        if expired {
            state.remove(key);
            state.misses += 1;
            return None;
        }
        state.hits += 1;
        state.touch(key);
        state.entries.get(key).map(|entry| entry.result.clone())
    }

    /// Stores a result; results larger than the whole budget are not kept.
    pub fn put(&self, key: String, result: CachedResult) {
        let size = result.bytes.len();
        if size > self.capacity_bytes {
            return;
        }
        let mut state = self.state();
        state.remove(&key);
        while state.bytes + size > self.capacity_bytes {
            let Some((_, oldest)) = state.recency.pop_first() else {
                break;
            };
            state.remove(&oldest);
        }
        state.tick += 1;
        let tick = state.tick;
        state.recency.insert(tick, key.clone());
        state.bytes += size;
        state.entries.insert(
            key,
            Entry {
                result,
                expires: Instant::now() + self.ttl,
                last_used: tick,
            },
        );
    }

    /// Records the file id Telegram gave a delivered result.
    pub fn remember_file_id(&self, key: &str, delivery: Delivery, file_id: String) {
        let mut state = self.state();
        if let Some(entry) = state.entries.get_mut(key) {
            entry.result.file_ids.retain(|(d, _)| *d != delivery);
            entry.result.file_ids.push((delivery, file_id));
        }
    }

    /// Drops expired entries (run every CLEANUP_INTERVAL; lookups also check the TTL).
    pub fn cleanup(&self) {
        let mut state = self.state();
        let now = Instant::now();
        let expired: Vec<String> = state
            .entries
            .iter()
            .filter(|(_, entry)| entry.expires <= now)
            .map(|(key, _)| key.clone())
            .collect();
        for key in expired {
            state.remove(&key);
        }
    }

    pub fn stats(&self) -> CacheStats {
        let state = self.state();
        CacheStats {
            entries: state.entries.len(),
            bytes: state.bytes,
            capacity_bytes: self.capacity_bytes,
            hits: state.hits,
            misses: state.misses,
        }
    }
}

impl State {
    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.recency.remove(&entry.last_used);
            self.bytes -= entry.result.bytes.len();
        }
    }

    fn touch(&mut self, key: &str) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(entry) = self.entries.get_mut(key) {
            let previous = std::mem::replace(&mut entry.last_used, tick);
            self.recency.remove(&previous);
            self.recency.insert(tick, key.to_string());
        }
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
        assert!(cache.get("a").is_some()); // a is now newer than b
        cache.put("c".into(), result(40));
        assert!(cache.get("b").is_none());
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.bytes), (2, 80));
        cache.put("huge".into(), result(101));
        assert!(cache.get("huge").is_none());
    }

    #[test]
    fn ttl_and_file_ids() {
        let cache = MemoryCache::new(100, Duration::from_millis(20));
        cache.put("a".into(), result(10));
        cache.remember_file_id("a", Delivery::Photo, "F1".into());
        let hit = cache.get("a").expect("fresh");
        assert_eq!(hit.file_id(Delivery::Photo), Some("F1"));
        assert_eq!(hit.file_id(Delivery::Document), None);
        std::thread::sleep(Duration::from_millis(30));
        assert!(cache.get("a").is_none());
        cache.put("b".into(), result(10));
        std::thread::sleep(Duration::from_millis(30));
        cache.cleanup();
        assert_eq!(cache.stats().entries, 0);
        assert_eq!(cache.stats().bytes, 0);
    }
}
