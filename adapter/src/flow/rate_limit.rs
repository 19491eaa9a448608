//! Per-user sliding-window rate limit: at most N image requests in any hour. When a user is
//! over, the answer says when the oldest request leaves the window. With REDIS_URL the window
//! lives in Redis (one atomic script on Redis's clock), so the limit is exact across
//! instances; while Redis fails, each instance limits in process.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use teloxide::types::UserId;

use crate::shared::redis::SharedRedis;

/// The limit every handler consults: shared when Redis is configured and answering.
pub struct UserLimits {
    local: RateLimiter,
    shared: Option<Shared>,
}

struct Shared {
    redis: Arc<SharedRedis>,
    /// Makes each counted request a distinct member of the user's window.
    member_prefix: String,
    counter: AtomicU64,
}

/// A request that was counted, so that it can be given back.
#[derive(Debug, Clone)]
pub enum Counted {
    Local,
    Shared { member: String },
}

impl UserLimits {
    pub fn new(limit_per_hour: u32, redis: Option<Arc<SharedRedis>>, instance: &str) -> Self {
        UserLimits {
            local: RateLimiter::new(limit_per_hour),
            shared: redis.map(|redis| Shared {
                redis,
                member_prefix: format!("{instance}-{}-", crate::clock::unix_millis()),
                counter: AtomicU64::new(0),
            }),
        }
    }

    /// Counts a request for `user` if it is within the limit.
    pub async fn check(&self, user: UserId) -> Result<Counted, Decision> {
        if let Some(shared) = &self.shared {
            let member = format!(
                "{}{}",
                shared.member_prefix,
                shared.counter.fetch_add(1, Ordering::Relaxed)
            );
            let window = shared.redis.key("limit", &user.0.to_string());
            let notice = shared.redis.key("limit-told", &user.0.to_string());
            let decided = shared
                .redis
                .rate_limit(
                    &window,
                    &notice,
                    self.local.limit as u32,
                    self.local.window,
                    &member,
                    NOTICE_INTERVAL,
                )
                .await;
            if let Ok(decision) = decided {
                return if decision.allowed {
                    Ok(Counted::Shared { member })
                } else {
                    Err(Decision::Limited {
                        retry_after: Duration::from_millis(decision.retry_after_ms),
                        notify: decision.notify,
                    })
                };
            }
        }
        match self.local.check(user) {
            Decision::Allowed => Ok(Counted::Local),
            limited => Err(limited),
        }
    }

    /// Gives back a counted request (it was refused for reasons not the user's).
    pub async fn refund(&self, user: UserId, counted: Counted) {
        match (counted, &self.shared) {
            (Counted::Shared { member }, Some(shared)) => {
                let window = shared.redis.key("limit", &user.0.to_string());
                let _ = shared.redis.remove_member(&window, &member).await;
            }
            _ => self.local.refund(user),
        }
    }

    pub fn cleanup(&self) {
        self.local.cleanup();
    }

    /// Users this process limits by itself (all of them without Redis).
    pub fn tracked_users(&self) -> usize {
        self.local.tracked_users()
    }
}

pub struct RateLimiter {
    limit: usize,
    window: Duration,
    users: Mutex<HashMap<UserId, Window>>,
}

/// One user's requests inside the window, and when they were last told they are over.
#[derive(Default)]
struct Window {
    times: VecDeque<Instant>,
    told: Option<Instant>,
}

/// Over the limit, a user is told at most this often.
const NOTICE_INTERVAL: Duration = Duration::from_secs(60);

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Over the limit; a request will be accepted again after this long. `notify` is
    /// false when the user was told less than a minute ago.
    Limited {
        retry_after: Duration,
        notify: bool,
    },
}

impl RateLimiter {
    pub fn new(limit_per_hour: u32) -> RateLimiter {
        RateLimiter::with_window(limit_per_hour, Duration::from_secs(3600))
    }

    pub fn with_window(limit: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            limit: limit as usize,
            window,
            users: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request for `user` if it is within the limit.
    pub fn check(&self, user: UserId) -> Decision {
        self.check_at(user, Instant::now())
    }

    fn check_at(&self, user: UserId, now: Instant) -> Decision {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let user = users.entry(user).or_default();
        while user
            .times
            .front()
            .is_some_and(|&t| now.duration_since(t) >= self.window)
        {
            user.times.pop_front();
        }
        if user.times.len() < self.limit {
            user.times.push_back(now);
            user.told = None;
            return Decision::Allowed;
        }
        let oldest = user.times.front().copied().unwrap_or(now);
        let notify = user
            .told
            .is_none_or(|told| now.duration_since(told) >= NOTICE_INTERVAL);
        if notify {
            user.told = Some(now);
        }
        Decision::Limited {
            retry_after: self.window.saturating_sub(now.duration_since(oldest)),
            notify,
        }
    }

    /// Gives back the request just counted (it was refused for reasons not the user's).
    pub fn refund(&self, user: UserId) {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(window) = users.get_mut(&user) {
            window.times.pop_back();
        }
    }

    /// Forgets users with no request inside the window (run every CLEANUP_INTERVAL).
    pub fn cleanup(&self) {
        self.cleanup_at(Instant::now());
    }

    fn cleanup_at(&self, now: Instant) {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users.retain(|_, user| {
            user.times
                .back()
                .is_some_and(|&t| now.duration_since(t) < self.window)
        });
    }

    pub fn tracked_users(&self) -> usize {
        self.users.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides() {
        let limiter = RateLimiter::with_window(2, Duration::from_secs(60));
        let user = UserId(1);
        let start = Instant::now();
        assert_eq!(limiter.check_at(user, start), Decision::Allowed);
        assert_eq!(
            limiter.check_at(user, start + Duration::from_secs(10)),
            Decision::Allowed
        );
        assert_eq!(
            limiter.check_at(user, start + Duration::from_secs(20)),
            Decision::Limited {
                retry_after: Duration::from_secs(40),
                notify: true
            }
        );
        // Told once; again only after a minute.
        assert_eq!(
            limiter.check_at(user, start + Duration::from_secs(30)),
            Decision::Limited {
                retry_after: Duration::from_secs(30),
                notify: false
            }
        );
        limiter.refund(UserId(3)); // unknown users are fine
        // Another user is not affected.
        assert_eq!(limiter.check_at(UserId(2), start), Decision::Allowed);
        // The first request leaves the window after 60 s.
        assert_eq!(
            limiter.check_at(user, start + Duration::from_secs(60)),
            Decision::Allowed
        );
    }

    #[test]
    fn cleanup_forgets_idle_users() {
        let window = Duration::from_secs(60);
        let limiter = RateLimiter::with_window(5, window);
        let start = Instant::now();
        limiter.check_at(UserId(1), start);
        limiter.check_at(UserId(2), start + Duration::from_secs(30));
        limiter.cleanup_at(start + window);
        assert_eq!(
            limiter.tracked_users(),
            1,
            "the first user's request has left the window"
        );
        limiter.cleanup_at(start + Duration::from_secs(90));
        assert_eq!(limiter.tracked_users(), 0);
    }
}
