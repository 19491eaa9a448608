//! A one-shot result slot that can be waited on synchronously or polled as a `Future`,
//! without depending on any async runtime.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

pub(crate) struct Completion<T> {
    slot: Mutex<Slot<T>>,
    ready: Condvar,
}

impl<T> Completion<T> {
    pub fn new() -> Arc<Completion<T>> {
        Arc::new(Completion {
            slot: Mutex::new(Slot {
                value: None,
                waker: None,
            }),
            ready: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        // A panic while holding this lock cannot leave the slot inconsistent.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores the value (the first one wins) and wakes whoever waits.
    pub fn complete(&self, value: T) {
        let waker = {
            let mut slot = self.lock();
            if slot.value.is_some() {
                return;
            }
            slot.value = Some(value);
            slot.waker.take()
        };
        self.ready.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Blocks until the value is there and takes it.
    pub fn wait(&self) -> T {
        let mut slot = self.lock();
        loop {
            if let Some(value) = slot.value.take() {
                return value;
            }
            slot = self
                .ready
                .wait(slot)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    pub fn poll_take(&self, context: &mut Context<'_>) -> Poll<T> {
        let mut slot = self.lock();
        match slot.value.take() {
            Some(value) => Poll::Ready(value),
            None => {
                slot.waker = Some(context.waker().clone());
                Poll::Pending
            }
        }
    }
}
