//! Waiting for whichever of several engine jobs finishes first.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use prism_engine::{Error, JobHandle, Output};

/// Waits for whichever of several jobs finishes first, by polling their handles as futures
/// with a waker that signals a condition variable.
pub struct Completions {
    signal: Arc<Signal>,
    waker: Waker,
}

#[derive(Default)]
struct Signal {
    woken: Mutex<bool>,
    ready: Condvar,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        *self.woken.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.ready.notify_all();
    }
}

impl Completions {
    pub fn new() -> Completions {
        let signal = Arc::new(Signal::default());
        Completions {
            waker: Waker::from(Arc::clone(&signal)),
            signal,
        }
    }

    /// Removes and returns the finished jobs, blocking until there is at least one.
    pub fn next_finished(
        &self,
        jobs: &mut Vec<(usize, JobHandle)>,
    ) -> Vec<(usize, Result<Output, Error>)> {
        let mut context = Context::from_waker(&self.waker);
        loop {
            *self
                .signal
                .woken
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = false;
            let mut finished = Vec::new();
            let mut index = 0;
            while index < jobs.len() {
                if let Poll::Ready(result) = Pin::new(&mut jobs[index].1).poll(&mut context) {
                    let (job, _) = jobs.swap_remove(index);
                    finished.push((job, result));
                } else {
                    index += 1;
                }
            }
            if !finished.is_empty() || jobs.is_empty() {
                return finished;
            }
            let mut woken = self
                .signal
                .woken
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            while !*woken {
                woken = self
                    .signal
                    .ready
                    .wait(woken)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }
}
