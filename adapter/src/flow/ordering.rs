//! Replies to one chat go out in the order its requests arrived, while the work itself runs
//! in parallel and other chats never wait: each request waits only for the chat's earlier
//! requests to have replied. "Earlier" is Telegram's `update_id`, which grows across all of
//! a bot's updates whichever instance receives them; with REDIS_URL the chat's pending
//! requests are also kept in Redis, so an album spread over several instances still comes
//! back in order. An instance that dies leaves liveness keys that expire, so the others
//! never wait for it for long.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::Shared;
use teloxide::types::ChatId;
use tokio::sync::oneshot;

use crate::shared::redis::SharedRedis;

type Done = Shared<oneshot::Receiver<()>>;
/// A chat's requests that have not replied yet, by (sequence, arrival here).
type ChatQueue = BTreeMap<(u64, u64), Done>;

/// The longest a request may take from arrival to reply before later ones stop waiting
/// for it (also the lifetime of its liveness key in Redis).
const TURN_LIMIT: Duration = Duration::from_secs(120);
/// How often a request waiting for another instance's earlier reply asks Redis again.
const SHARED_POLL: Duration = Duration::from_millis(10);

pub struct ChatOrder {
    pending: Mutex<HashMap<ChatId, ChatQueue>>,
    arrivals: AtomicU64,
    shared: Option<Arc<SharedRedis>>,
}

/// One request's place in its chat's order.
pub struct Turn {
    order: Arc<ChatOrder>,
    chat: ChatId,
    place: (u64, u64),
    done: Option<oneshot::Sender<()>>,
    /// Registered in Redis (and so to be removed there).
    shared: bool,
}

impl ChatOrder {
    pub fn new(shared: Option<Arc<SharedRedis>>) -> ChatOrder {
        ChatOrder {
            pending: Mutex::new(HashMap::new()),
            arrivals: AtomicU64::new(0),
            shared,
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<ChatId, ChatQueue>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a place in this process; call on arrival. `sequence` is the update's id.
    pub fn join(self: &Arc<Self>, chat: ChatId, sequence: u64) -> Turn {
        let place = (sequence, self.arrivals.fetch_add(1, Ordering::Relaxed));
        let (done, signal) = oneshot::channel();
        self.pending()
            .entry(chat)
            .or_default()
            .insert(place, signal.shared());
        Turn {
            order: Arc::clone(self),
            chat,
            place,
            done: Some(done),
            shared: false,
        }
    }

    /// Chats with a request still to reply (for tests and cleanup checks).
    pub fn pending_chats(&self) -> usize {
        self.pending().len()
    }

    fn queue_keys(redis: &SharedRedis, chat: ChatId) -> (String, String) {
        let chat = chat.0.to_string();
        (
            redis.key("order", &chat),
            redis.key("order-alive", &format!("{chat}:")),
        )
    }
}

impl Turn {
    /// Takes the place across instances too (no-op without Redis, or while it fails).
    pub async fn share(&mut self) {
        let Some(redis) = &self.order.shared else {
            return;
        };
        let (queue, alive) = ChatOrder::queue_keys(redis, self.chat);
        let sequence = self.place.0;
        let alive = format!("{alive}{sequence}");
        self.shared = redis
            .join_queue(&queue, &alive, sequence, TURN_LIMIT)
            .await
            .is_ok();
    }

    fn earlier_here(&self) -> Vec<Done> {
        self.order
            .pending()
            .get(&self.chat)
            .map(|queue| queue.range(..self.place).map(|(_, d)| d.clone()).collect())
            .unwrap_or_default()
    }

    /// Whether an earlier request of this chat, here or on another instance, has not
    /// replied yet.
    pub async fn has_earlier(&self) -> bool {
        if !self.earlier_here().is_empty() {
            return true;
        }
        match (self.shared, &self.order.shared) {
            (true, Some(redis)) => {
                let (queue, alive) = ChatOrder::queue_keys(redis, self.chat);
                redis
                    .earlier_pending(&queue, &alive, self.place.0)
                    .await
                    .is_ok_and(|pending| pending > 0)
            }
            _ => false,
        }
    }

    /// Waits until every earlier request of this chat has replied (or given up), at most
    /// [`TURN_LIMIT`].
    pub async fn wait(&mut self) {
        let deadline = Instant::now() + TURN_LIMIT;
        let here = async {
            loop {
                let earlier = self.earlier_here();
                if earlier.is_empty() {
                    break;
                }
                for done in earlier {
                    // An error only means the earlier request was dropped: its turn is over.
                    let _ = done.await;
                }
            }
        };
        if tokio::time::timeout_at(deadline.into(), here)
            .await
            .is_err()
        {
            tracing::warn!(
                chat = self.chat.0,
                "an earlier request of the chat is stuck; replying"
            );
        }
        if let (true, Some(redis)) = (self.shared, &self.order.shared) {
            let (queue, alive) = ChatOrder::queue_keys(redis, self.chat);
            // Redis failing mid-wait: replying now beats waiting blind.
            while let Ok(pending) = redis.earlier_pending(&queue, &alive, self.place.0).await {
                if pending == 0 || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(SHARED_POLL).await;
            }
        }
    }
}

impl Drop for Turn {
    // Replying (or failing) ends the turn: the chat's next request may reply.
    fn drop(&mut self) {
        drop(self.done.take());
        {
            let mut pending = self.order.pending();
            if let Some(queue) = pending.get_mut(&self.chat) {
                queue.remove(&self.place);
                if queue.is_empty() {
                    pending.remove(&self.chat);
                }
            }
        }
        if self.shared
            && let (Some(redis), Ok(runtime)) = (
                self.order.shared.clone(),
                tokio::runtime::Handle::try_current(),
            )
        {
            let (queue, alive) = ChatOrder::queue_keys(&redis, self.chat);
            let sequence = self.place.0;
            runtime.spawn(async move {
                let alive = format!("{alive}{sequence}");
                let _ = redis.leave_queue(&queue, &alive, sequence).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replies_keep_arrival_order_per_chat_only() {
        let order = Arc::new(ChatOrder::new(None));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (a, b) = (ChatId(1), ChatId(2));
        // Update 11 is handled before update 10 (another worker was quicker): 10 still
        // replies first.
        let mut fast = order.join(a, 11);
        let mut slow = order.join(a, 10);
        let mut other = order.join(b, 12);
        let log_fast = Arc::clone(&log);
        let fast_task = tokio::spawn(async move {
            fast.wait().await;
            log_fast.lock().expect("log").push("a11");
        });
        // Another chat does not wait for chat a.
        other.wait().await;
        log.lock().expect("log").push("b12");
        drop(other);
        // One thread: yielding lets the fast task run until it waits for its turn.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(*log.lock().expect("log"), vec!["b12"], "11 waits for 10");
        slow.wait().await;
        log.lock().expect("log").push("a10");
        drop(slow);
        fast_task.await.expect("task");
        assert_eq!(*log.lock().expect("log"), vec!["b12", "a10", "a11"]);
        assert_eq!(order.pending_chats(), 0);
    }
}
