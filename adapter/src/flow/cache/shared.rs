//! The shared layer of the results cache: a delivered result's `file_id` and shape in Redis
//! under `<prefix>result:<key>`, expiring after IMAGE_CACHE_TTL.

use std::sync::Arc;
use std::time::Duration;

use prism_engine::OutputFormat;
use serde::{Deserialize, Serialize};

use super::CachedResult;
use crate::shared::redis::SharedRedis;
use crate::telegram::delivery::Delivery;

pub struct SharedCache {
    redis: Arc<SharedRedis>,
    ttl: Duration,
}

/// What Redis holds per result: enough to send it again by `file_id`, and to record it.
#[derive(Serialize, Deserialize)]
struct Entry {
    format: OutputFormat,
    width: u32,
    height: u32,
    has_alpha: bool,
    delivery: Delivery,
    file_id: String,
}

impl SharedCache {
    pub fn new(redis: Arc<SharedRedis>, ttl: Duration) -> SharedCache {
        SharedCache { redis, ttl }
    }

    fn redis_key(&self, key: &str) -> String {
        self.redis.key("result", key)
    }

    pub async fn get(&self, key: &str) -> Option<CachedResult> {
        let bytes = self.redis.get(&self.redis_key(key)).await.ok()??;
        let entry: Entry = match serde_json::from_slice(&bytes) {
            Ok(entry) => entry,
            Err(error) => {
                // Written by another version: a miss, overwritten by this result.
                tracing::warn!(%error, "unreadable shared cache entry");
                return None;
            }
        };
        Some(CachedResult {
            bytes: bytes::Bytes::new(),
            format: entry.format,
            width: entry.width,
            height: entry.height,
            has_alpha: entry.has_alpha,
            file_ids: vec![(entry.delivery, entry.file_id)],
        })
    }

    /// Best effort: a failing Redis only means the next repeat is processed again.
    pub async fn put(&self, key: &str, result: &CachedResult, delivery: Delivery, file_id: &str) {
        let entry = Entry {
            format: result.format,
            width: result.width,
            height: result.height,
            has_alpha: result.has_alpha,
            delivery,
            file_id: file_id.to_string(),
        };
        if let Ok(value) = serde_json::to_vec(&entry) {
            let _ = self
                .redis
                .set_with_ttl(&self.redis_key(key), &value, self.ttl)
                .await;
        }
    }

    pub async fn forget(&self, key: &str) {
        let _ = self.redis.delete(&self.redis_key(key)).await;
    }
}
