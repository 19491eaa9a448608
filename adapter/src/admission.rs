//! Work in flight is bounded by MAX_CONCURRENT_REQUESTS; beyond it requests wait in a FIFO
//! queue of bounded length (users are told their place), and when that is full they are
//! told to retry later. Permits cover download, engine work and upload of one image.
//! Under memory pressure the memory guard withholds slots, down to one, so queued work
//! waits instead of growing the process.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Admission {
    slots: Arc<Semaphore>,
    max_concurrent: usize,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    /// Slots taken out of use by [`Admission::hold_back`].
    withheld: Mutex<usize>,
}

/// A request's place: running at once, or waiting at a 1-based position.
pub enum Ticket {
    Now(OwnedSemaphorePermit),
    Queued { position: usize, wait: QueuedTicket },
}

/// A queued request; `ready` resolves when a slot frees (FIFO).
pub struct QueuedTicket {
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the queue is full ({waiting} waiting)")]
pub struct QueueFull {
    pub waiting: usize,
}

impl Admission {
    pub fn new(max_concurrent: usize, max_waiting: usize) -> Admission {
        Admission {
            slots: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting,
            withheld: Mutex::new(0),
        }
    }

    pub fn enter(&self) -> Result<Ticket, QueueFull> {
        // A free slot goes to a newcomer only when nobody is waiting for one (FIFO).
        if self.waiting.load(Ordering::Acquire) == 0
            && let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned()
        {
            return Ok(Ticket::Now(permit));
        }
        let claimed = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                (waiting < self.max_waiting).then_some(waiting + 1)
            });
        match claimed {
            Ok(before) => Ok(Ticket::Queued {
                position: before + 1,
                wait: QueuedTicket {
                    slots: Arc::clone(&self.slots),
                    waiting: Arc::clone(&self.waiting),
                },
            }),
            Err(waiting) => Err(QueueFull { waiting }),
        }
    }

    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    pub fn running(&self) -> usize {
        let withheld = *self.withheld.lock().unwrap_or_else(|p| p.into_inner());
        (self.max_concurrent - withheld).saturating_sub(self.slots.available_permits())
    }

    /// Takes free slots out of use until one slot is left, so work keeps moving one request
    /// at a time; slots still in use are taken as they free, on later calls.
    pub fn hold_back(&self) {
        let mut withheld = self.withheld.lock().unwrap_or_else(|p| p.into_inner());
        let wanted = (self.max_concurrent - 1).saturating_sub(*withheld);
        *withheld += self.slots.forget_permits(wanted);
    }

    /// Puts every withheld slot back in use.
    pub fn release_held(&self) {
        let mut withheld = self.withheld.lock().unwrap_or_else(|p| p.into_inner());
        self.slots.add_permits(std::mem::take(&mut *withheld));
    }
}

/// The slots are never closed while the bot runs; a closed semaphore means shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the bot is shutting down")]
pub struct Closed;

impl Ticket {
    /// Waits for the slot (at once for `Now`).
    pub async fn ready(self) -> Result<OwnedSemaphorePermit, Closed> {
        match self {
            Ticket::Now(permit) => Ok(permit),
            Ticket::Queued { wait, .. } => Arc::clone(&wait.slots)
                .acquire_owned()
                .await
                .map_err(|_| Closed),
        }
    }
}

impl Drop for QueuedTicket {
    // Leaves the queue whether the slot came or the request was abandoned.
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn positions_then_full_then_fifo() {
        let admission = Admission::new(1, 2);
        let Ok(Ticket::Now(first)) = admission.enter() else {
            panic!("first request runs at once");
        };
        let Ok(Ticket::Queued {
            position: 1,
            wait: a,
        }) = admission.enter()
        else {
            panic!("second waits first in line");
        };
        let Ok(second) = admission.enter() else {
            panic!("third waits");
        };
        assert!(matches!(second, Ticket::Queued { position: 2, .. }));
        assert_eq!(admission.enter().err(), Some(QueueFull { waiting: 2 }));
        assert_eq!((admission.running(), admission.waiting()), (1, 2));
        drop(first);
        let permit = Ticket::Queued {
            position: 1,
            wait: a,
        }
        .ready()
        .await
        .expect("slot");
        assert_eq!(admission.waiting(), 1);
        drop(second); // abandoned while queued: leaves the queue
        assert_eq!(admission.waiting(), 0);
        drop(permit);
        assert_eq!(admission.running(), 0);
    }

    #[tokio::test]
    async fn holding_back_leaves_one_slot_until_released() {
        let admission = Admission::new(3, 8);
        let Ok(Ticket::Now(a)) = admission.enter() else {
            panic!("runs at once");
        };
        let Ok(Ticket::Now(b)) = admission.enter() else {
            panic!("runs at once");
        };
        admission.hold_back();
        // The free slot is withheld; both running requests keep theirs.
        assert_eq!(admission.running(), 2);
        assert!(matches!(admission.enter(), Ok(Ticket::Queued { .. })));
        drop(a);
        admission.hold_back();
        drop(b);
        assert_eq!(admission.running(), 0);
        // One slot stays in use, so work goes on one request at a time.
        let Ok(Ticket::Now(only)) = admission.enter() else {
            panic!("one slot left");
        };
        assert!(matches!(admission.enter(), Ok(Ticket::Queued { .. })));
        admission.release_held();
        assert!(matches!(admission.enter(), Ok(Ticket::Now(_))));
        drop(only);
    }
}
