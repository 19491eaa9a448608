//! Each user's requests in flight are capped (USER_MAX_IN_FLIGHT), so one user sending a
//! burst cannot take every admission slot and queue place: their further requests wait for
//! one of their own slots, in arrival order, before they join the shared queue. Admins are
//! exempt (the caller does not ask for a slot). The cap holds per instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use teloxide::types::UserId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

pub struct UserSlots {
    per_user: usize,
    users: Arc<Mutex<HashMap<UserId, Arc<Semaphore>>>>,
}

/// One of a user's slots; freed on drop (and the user forgotten when none is taken).
pub struct UserSlot {
    user: UserId,
    permit: Option<OwnedSemaphorePermit>,
    users: Arc<Mutex<HashMap<UserId, Arc<Semaphore>>>>,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut users = lock(&self.users);
        drop(self.permit.take());
        // Idle: nobody holds or waits for this user's semaphore but the map.
        if users
            .get(&self.user)
            .is_some_and(|semaphore| Arc::strong_count(semaphore) == 1)
        {
            users.remove(&self.user);
        }
    }
}

fn lock(
    users: &Mutex<HashMap<UserId, Arc<Semaphore>>>,
) -> MutexGuard<'_, HashMap<UserId, Arc<Semaphore>>> {
    users.lock().unwrap_or_else(PoisonError::into_inner)
}

impl UserSlots {
    pub fn new(per_user: usize) -> UserSlots {
        UserSlots {
            per_user: per_user.max(1),
            users: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A slot now, or `Err` with the wait for one (behind the user's earlier requests).
    pub fn take(
        &self,
        user: UserId,
    ) -> Result<UserSlot, impl Future<Output = Option<UserSlot>> + Send + 'static> {
        let semaphore = Arc::clone(
            lock(&self.users)
                .entry(user)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_user))),
        );
        let users = Arc::clone(&self.users);
        match Arc::clone(&semaphore).try_acquire_owned() {
            Ok(permit) => Ok(UserSlot {
                user,
                permit: Some(permit),
                users,
            }),
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => Err(async move {
                let permit = semaphore.acquire_owned().await.ok()?;
                Some(UserSlot {
                    user,
                    permit: Some(permit),
                    users,
                })
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_user_beyond_the_cap_waits_for_their_own_slot_others_do_not() {
        let slots = UserSlots::new(2);
        let (alice, bob) = (UserId(1), UserId(2));
        let first = slots.take(alice).ok().expect("a free slot");
        let second = slots.take(alice).ok().expect("a free slot");
        let Err(third) = slots.take(alice) else {
            panic!("a third request in flight");
        };
        let bobs = slots.take(bob).ok().expect("another user is not held up");
        let third = tokio::spawn(third);
        tokio::task::yield_now().await;
        assert!(!third.is_finished());
        drop(first);
        let third = third.await.ok().flatten().expect("the freed slot");
        drop((second, third, bobs));
        assert_eq!(lock(&slots.users).len(), 0, "idle users are forgotten");
    }
}
