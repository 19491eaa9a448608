//! Results cache: keyed by Telegram's `file_unique_id` plus the canonical pipeline, so a
//! repeated request skips download and processing; it also remembers the `file_id`
//! Telegram gave each delivered result, so the repeat is answered without an upload.

mod memory;

pub use memory::MemoryCache;
use prism_engine::OutputFormat;

use crate::delivery::Delivery;

/// One processed image.
#[derive(Debug, Clone)]
pub struct CachedResult {
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
}

/// The cache key for an input file and a pipeline.
pub fn key(file_unique_id: &str, canonical_pipeline: &str) -> String {
    format!("{file_unique_id}|{canonical_pipeline}")
}

/// Counters for /performance and /health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub bytes: usize,
    pub capacity_bytes: usize,
    pub hits: u64,
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
