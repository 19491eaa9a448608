//! Per-user sliding-window rate limit: at most N image requests in any hour. When a user is
//! over, the answer says when the oldest request leaves the window.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use teloxide::types::UserId;

pub struct RateLimiter {
    limit: usize,
    window: Duration,
    requests: Mutex<HashMap<UserId, VecDeque<Instant>>>,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Over the limit; a request will be accepted again after this long.
    Limited {
        retry_after: Duration,
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
            requests: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request for `user` if it is within the limit.
    pub fn check(&self, user: UserId) -> Decision {
        self.check_at(user, Instant::now())
    }

    fn check_at(&self, user: UserId, now: Instant) -> Decision {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let times = requests.entry(user).or_default();
        while times
            .front()
            .is_some_and(|&t| now.duration_since(t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() < self.limit {
            times.push_back(now);
            return Decision::Allowed;
        }
        let oldest = times.front().copied().unwrap_or(now);
        Decision::Limited {
            retry_after: self.window.saturating_sub(now.duration_since(oldest)),
        }
    }

    /// Forgets users with no request inside the window (run every CLEANUP_INTERVAL).
    pub fn cleanup(&self) {
        let now = Instant::now();
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        requests.retain(|_, times| {
            times
                .back()
                .is_some_and(|&t| now.duration_since(t) < self.window)
        });
    }

    pub fn tracked_users(&self) -> usize {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
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
                retry_after: Duration::from_secs(40)
            }
        );
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
        let limiter = RateLimiter::with_window(5, Duration::from_millis(1));
        limiter.check(UserId(1));
        std::thread::sleep(Duration::from_millis(5));
        limiter.cleanup();
        assert_eq!(limiter.tracked_users(), 0);
    }
}
