//! Each Telegram update is handled once. Telegram delivers a webhook update again after a
//! non-2xx or slow answer — possibly to another instance behind the load balancer — so with
//! REDIS_URL the first instance to claim an `update_id` (SET NX) handles it; while Redis
//! fails, each instance remembers the ids it saw itself.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use crate::shared::redis::SharedRedis;

/// Telegram re-delivers an update it did not see answered within minutes; an hour covers that
/// with room, and keeps Redis at one small key per update of the last hour.
const REMEMBER_FOR: Duration = Duration::from_secs(3600);
/// Ids kept in process; a busy bot sees far fewer within a re-delivery window.
const LOCAL_IDS: u64 = 200_000;

pub struct UpdateDedup {
    seen: Cache<u32, ()>,
    shared: Option<Arc<SharedRedis>>,
}

impl UpdateDedup {
    pub fn new(shared: Option<Arc<SharedRedis>>) -> UpdateDedup {
        UpdateDedup {
            seen: Cache::builder()
                .max_capacity(LOCAL_IDS)
                .time_to_live(REMEMBER_FOR)
                .build(),
            shared,
        }
    }

    /// True the first time `update_id` is offered (on any instance, with Redis).
    pub async fn first_delivery(&self, update_id: u32) -> bool {
        let first_here = self.seen.entry(update_id).or_insert(()).is_fresh();
        if let Some(redis) = &self.shared {
            let key = redis.key("update", &update_id.to_string());
            if let Ok(claimed) = redis.set_if_absent(&key, "1", REMEMBER_FOR).await {
                return claimed;
            }
        }
        first_here
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_update_is_handled_once() {
        let dedup = UpdateDedup::new(None);
        assert!(dedup.first_delivery(7).await);
        assert!(!dedup.first_delivery(7).await);
        assert!(dedup.first_delivery(8).await);
    }
}
