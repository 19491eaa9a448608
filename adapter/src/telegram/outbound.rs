//! Outbound fairness: every message to Telegram first takes a turn here. Each chat has its
//! own queue, and the chats with something to send take turns at Telegram's overall rate,
//! so one chat's chatter never delays another chat's result. Within a chat, messages keep
//! Telegram's per-chat pace (one a second; twenty a minute in groups).
//!
//! Notices (help texts, keyboards, refusals: anything that is not the answer to a request)
//! are capped per chat: with [`NOTICES_PENDING_MAX`] already waiting, a new one is dropped,
//! since a chat flooding the bot would otherwise queue a reply per message.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use teloxide::types::ChatId;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

/// Notices waiting in one chat beyond which new ones are dropped.
pub const NOTICES_PENDING_MAX: usize = 2;

/// Telegram's documented limits for bots (about 30 messages a second overall, one a second
/// in a chat, twenty a minute in a group).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub per_second_overall: usize,
    pub chat_interval: Duration,
    pub per_minute_group: usize,
}

impl Default for Pace {
    fn default() -> Pace {
        Pace {
            per_second_overall: 30,
            chat_interval: Duration::from_secs(1),
            per_minute_group: 20,
        }
    }
}

/// What a message is to its chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    /// The outcome of a request (a result, or why it failed): never dropped.
    Answer,
    /// Anything else: dropped when the chat already has enough of them waiting.
    Notice,
}

/// A notice dropped because its chat already had [`NOTICES_PENDING_MAX`] waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("dropped: the chat already has notices waiting")]
pub struct Dropped;

/// The turn-taking between chats; clones share it.
#[derive(Clone)]
pub struct Outbound {
    shared: Arc<Shared>,
}

struct Shared {
    /// `None`: no pacing (TELEGRAM_THROTTLE=false, for benchmarks): every turn is at once.
    pace: Option<Pace>,
    state: Mutex<State>,
    wake: Notify,
    dropped: AtomicU64,
}

#[derive(Default)]
struct State {
    chats: HashMap<ChatId, ChatQueue>,
    /// Chats with something waiting, in the order they take turns.
    turns: VecDeque<ChatId>,
    /// When the messages of the last second went out.
    sent_overall: VecDeque<Instant>,
}

#[derive(Default)]
struct ChatQueue {
    waiting: VecDeque<(Weight, oneshot::Sender<()>)>,
    notices_waiting: usize,
    /// When this chat's messages of the last minute went out.
    sent: VecDeque<Instant>,
}

impl Outbound {
    /// Must be called inside the tokio runtime when `pace` is set (it spawns the worker,
    /// which ends when the last clone is dropped).
    pub fn start(pace: Option<Pace>) -> Outbound {
        let shared = Arc::new(Shared {
            pace,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            dropped: AtomicU64::new(0),
        });
        if let Some(pace) = pace {
            tokio::spawn(grant_turns(Arc::clone(&shared), pace));
        }
        Outbound { shared }
    }

    /// Waits for `chat`'s turn to send one message (each try of a call takes its own turn).
    pub async fn turn(&self, chat: ChatId, weight: Weight) -> Result<(), Dropped> {
        if self.shared.pace.is_none() {
            return Ok(());
        }
        let granted = {
            let mut state = self.shared.lock();
            let state = &mut *state;
            let queue = state.chats.entry(chat).or_default();
            if weight == Weight::Notice {
                if queue.notices_waiting >= NOTICES_PENDING_MAX {
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                    return Err(Dropped);
                }
                queue.notices_waiting += 1;
            }
            let (grant, granted) = oneshot::channel();
            if queue.waiting.is_empty() {
                state.turns.push_back(chat);
            }
            queue.waiting.push_back((weight, grant));
            granted
        };
        self.shared.wake.notify_one();
        // The worker only ends with the last clone, which this call holds.
        let _ = granted.await;
        Ok(())
    }

    /// Notices dropped since start.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The worker: grants every turn the pace allows, then sleeps until the next one may be due
/// or a new message waits. It ends once it holds the last reference.
async fn grant_turns(shared: Arc<Shared>, pace: Pace) {
    loop {
        let next = shared.lock().grant(Instant::now(), &pace);
        if Arc::strong_count(&shared) == 1 {
            return;
        }
        // Wakes at least every second to notice that every clone is gone.
        let at = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep_until(at) => {}
        }
    }
}

impl State {
    /// Grants turns round-robin over the waiting chats while the pace allows; answers when
    /// the next grant may become possible (`None`: nothing waits).
    fn grant(&mut self, now: Instant, pace: &Pace) -> Option<Instant> {
        let second = Duration::from_secs(1);
        forget_older(&mut self.sent_overall, now, second);
        let mut next: Option<Instant> = None;
        let mut soonest = |at: Instant| next = Some(next.map_or(at, |n| n.min(at)));
        let mut visits = self.turns.len();
        while visits > 0 {
            if self.sent_overall.len() >= pace.per_second_overall {
                if let Some(&oldest) = self.sent_overall.front() {
                    soonest(oldest + second);
                }
                break;
            }
            let Some(chat) = self.turns.pop_front() else {
                break;
            };
            visits -= 1;
            let Some(queue) = self.chats.get_mut(&chat) else {
                continue;
            };
            match queue.ready_at(chat, now, pace) {
                Some(at) if at > now => {
                    soonest(at);
                    self.turns.push_back(chat);
                }
                _ => {
                    if queue.grant_one(now) {
                        self.sent_overall.push_back(now);
                    }
                    if queue.waiting.is_empty() {
                        if queue.sent.is_empty() {
                            self.chats.remove(&chat);
                        }
                    } else {
                        self.turns.push_back(chat);
                        // Its next message is due after the chat's interval.
                        soonest(now + pace.chat_interval);
                    }
                }
            }
        }
        // Forget chats idle for a minute (their windows are empty by then).
        self.chats.retain(|_, queue| {
            queue.forget_before(now);
            !(queue.waiting.is_empty() && queue.sent.is_empty())
        });
        if next.is_none() && !self.turns.is_empty() {
            next = Some(now + pace.chat_interval);
        }
        next
    }
}

/// Drops the send times of `sent` (oldest first) that are `window` or more before `now`.
fn forget_older(sent: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while sent
        .front()
        .is_some_and(|&at| now.duration_since(at) >= window)
    {
        sent.pop_front();
    }
}

impl ChatQueue {
    fn forget_before(&mut self, now: Instant) {
        forget_older(&mut self.sent, now, Duration::from_secs(60));
    }

    /// When this chat may send again (`None`: now).
    fn ready_at(&mut self, chat: ChatId, now: Instant, pace: &Pace) -> Option<Instant> {
        self.forget_before(now);
        let after_last = self.sent.back().map(|&last| last + pace.chat_interval);
        // Groups and channels have negative ids; they also have a per-minute limit.
        let minute_full = (chat.0 < 0 && self.sent.len() >= pace.per_minute_group)
            .then(|| {
                self.sent
                    .front()
                    .map(|&first| first + Duration::from_secs(60))
            })
            .flatten();
        match (after_last, minute_full) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Grants the first waiter still waiting; false when all had given up.
    fn grant_one(&mut self, now: Instant) -> bool {
        while let Some((weight, grant)) = self.waiting.pop_front() {
            if weight == Weight::Notice {
                self.notices_waiting -= 1;
            }
            if grant.send(()).is_ok() {
                self.sent.push_back(now);
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn another_chat_is_served_while_one_chat_floods() {
        let outbound = Outbound::start(Some(Pace::default()));
        let flooding = ChatId(1);
        let mut order = Vec::new();
        let (sent, mut log) = tokio::sync::mpsc::unbounded_channel();
        for n in 0..30 {
            let (outbound, sent) = (outbound.clone(), sent.clone());
            tokio::spawn(async move {
                outbound.turn(flooding, Weight::Answer).await.ok();
                sent.send(format!("flood {n}")).ok();
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let other = outbound.clone();
        tokio::spawn(async move {
            other.turn(ChatId(2), Weight::Answer).await.ok();
            sent.send("other".to_string()).ok();
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        while let Ok(line) = log.try_recv() {
            order.push(line);
        }
        let other_at = order.iter().position(|line| line == "other");
        assert!(
            other_at.is_some_and(|at| at <= 2),
            "the other chat waited behind the flood: {order:?}"
        );
        assert!(
            order.len() <= 5,
            "one chat is paced to a message a second: {order:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn notices_beyond_a_couple_waiting_are_dropped_answers_never() {
        let outbound = Outbound::start(Some(Pace::default()));
        let chat = ChatId(7);
        // The first goes at once; the next ones wait a second each.
        outbound.turn(chat, Weight::Notice).await.expect("sent");
        let waiting: Vec<_> = (0..NOTICES_PENDING_MAX)
            .map(|_| {
                let outbound = outbound.clone();
                tokio::spawn(async move { outbound.turn(chat, Weight::Notice).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(outbound.turn(chat, Weight::Notice).await, Err(Dropped));
        assert_eq!(outbound.dropped(), 1);
        let answer = {
            let outbound = outbound.clone();
            tokio::spawn(async move { outbound.turn(chat, Weight::Answer).await })
        };
        for notice in waiting {
            assert_eq!(notice.await.ok(), Some(Ok(())));
        }
        assert_eq!(answer.await.ok(), Some(Ok(())));
        // Once they went out, notices are taken again.
        assert_eq!(outbound.turn(chat, Weight::Notice).await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_gets_twenty_messages_a_minute() {
        let outbound = Outbound::start(Some(Pace::default()));
        let group = ChatId(-100);
        let started = Instant::now();
        for _ in 0..21 {
            outbound
                .turn(group, Weight::Answer)
                .await
                .expect("answers wait");
        }
        assert!(started.elapsed() >= Duration::from_secs(60));
    }
}
