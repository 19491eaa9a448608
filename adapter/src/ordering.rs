//! Replies to one chat go out in the order its requests arrived, while the work itself runs
//! in parallel and other chats never wait: each request waits only for the previous
//! request of the same chat to have replied.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::Shared;
use teloxide::types::ChatId;
use tokio::sync::oneshot;

type Done = Shared<oneshot::Receiver<()>>;

#[derive(Default)]
pub struct ChatOrder {
    /// The latest request of each chat that has not replied yet: (sequence, its signal).
    last: Mutex<HashMap<ChatId, (u64, Done)>>,
    next: Mutex<u64>,
}

/// One request's place in its chat's order.
pub struct Turn {
    order: Arc<ChatOrder>,
    chat: ChatId,
    sequence: u64,
    previous: Option<Done>,
    done: Option<oneshot::Sender<()>>,
}

impl ChatOrder {
    /// Takes a place; call at arrival, in arrival order.
    pub fn join(self: &Arc<Self>, chat: ChatId) -> Turn {
        let sequence = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            *next += 1;
            *next
        };
        let (done, signal) = oneshot::channel();
        let previous = self
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(chat, (sequence, signal.shared()))
            .map(|(_, previous)| previous);
        Turn {
            order: Arc::clone(self),
            chat,
            sequence,
            previous,
            done: Some(done),
        }
    }

    /// Chats with a request still to reply (for tests and cleanup checks).
    pub fn pending_chats(&self) -> usize {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Turn {
    /// Waits until every earlier request of this chat has replied (or given up).
    pub async fn wait(&mut self) {
        if let Some(previous) = self.previous.take() {
            // An error only means the earlier request was dropped: its turn is over too.
            let _ = previous.await;
        }
    }
}

impl Drop for Turn {
    // Replying (or failing) ends the turn: the next request of the chat may reply.
    fn drop(&mut self) {
        drop(self.done.take());
        let mut last = self.order.last.lock().unwrap_or_else(|p| p.into_inner());
        if last
            .get(&self.chat)
            .is_some_and(|(seq, _)| *seq == self.sequence)
        {
            last.remove(&self.chat);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn replies_keep_arrival_order_per_chat_only() {
        let order = Arc::new(ChatOrder::default());
        let log = Arc::new(Mutex::new(Vec::new()));
        let (a, b) = (ChatId(1), ChatId(2));
        let mut slow = order.join(a);
        let mut fast = order.join(a);
        let mut other = order.join(b);
        let log_fast = Arc::clone(&log);
        let fast_task = tokio::spawn(async move {
            fast.wait().await;
            log_fast.lock().expect("log").push("a2");
        });
        // Another chat does not wait for chat a.
        other.wait().await;
        log.lock().expect("log").push("b1");
        drop(other);
        tokio::time::sleep(Duration::from_millis(20)).await;
        slow.wait().await;
        log.lock().expect("log").push("a1");
        drop(slow);
        fast_task.await.expect("task");
        assert_eq!(*log.lock().expect("log"), vec!["b1", "a1", "a2"]);
        assert_eq!(order.pending_chats(), 0);
    }
}
