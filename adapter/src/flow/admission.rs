//! Work in flight is bounded by MAX_CONCURRENT_REQUESTS; beyond it requests wait in a FIFO
//! queue of bounded length (users are told their place), and when that is full they are
//! told to retry later. A [`Slot`] covers download, engine work and upload of one image.
//! Under memory pressure the memory guard withholds slots, down to one, so queued work
//! waits instead of growing the process.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Admission {
    slots: Arc<Semaphore>,
    max_concurrent: usize,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    hold: Arc<Mutex<Hold>>,
}

/// Slots out of use while holding back.
#[derive(Default)]
struct Hold {
    holding: bool,
    withheld: usize,
}

/// A request's place: running at once, or waiting at a 1-based position.
pub enum Ticket {
    Now(Slot),
    Queued { position: usize, wait: QueuedTicket },
}

/// A queued request; `ready` resolves when a slot frees (FIFO).
pub struct QueuedTicket {
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    hold: Arc<Mutex<Hold>>,
    max_concurrent: usize,
}

/// A running request's slot. Released on drop, or withheld while holding back, since a
/// freed permit would go straight to the next request in the queue.
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    hold: Arc<Mutex<Hold>>,
    max_concurrent: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut hold = lock(&self.hold);
        if hold.holding
            && hold.withheld < self.max_concurrent - 1
            && let Some(permit) = self.permit.take()
        {
            permit.forget();
            hold.withheld += 1;
        }
    }
}

fn lock(hold: &Mutex<Hold>) -> MutexGuard<'_, Hold> {
    hold.lock().unwrap_or_else(|p| p.into_inner())
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
            hold: Arc::new(Mutex::new(Hold::default())),
        }
    }

    pub fn enter(&self) -> Result<Ticket, QueueFull> {
        // A free slot goes to a newcomer only when nobody is waiting for one (FIFO).
        if self.waiting.load(Ordering::Acquire) == 0
            && let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned()
        {
            return Ok(Ticket::Now(self.slot(permit)));
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
                    hold: Arc::clone(&self.hold),
                    max_concurrent: self.max_concurrent,
                },
            }),
            Err(waiting) => Err(QueueFull { waiting }),
        }
    }

    fn slot(&self, permit: OwnedSemaphorePermit) -> Slot {
        Slot {
            permit: Some(permit),
            hold: Arc::clone(&self.hold),
            max_concurrent: self.max_concurrent,
        }
    }

    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    pub fn running(&self) -> usize {
        let hold = lock(&self.hold);
        (self.max_concurrent - hold.withheld).saturating_sub(self.slots.available_permits())
    }

    /// Takes slots out of use until one is left, so work keeps moving one request at a
    /// time: free slots now, slots in use as their requests end.
    pub fn hold_back(&self) {
        let mut hold = lock(&self.hold);
        hold.holding = true;
        let wanted = (self.max_concurrent - 1).saturating_sub(hold.withheld);
        hold.withheld += self.slots.forget_permits(wanted);
    }

    /// Puts every withheld slot back in use.
    pub fn release_held(&self) {
        let mut hold = lock(&self.hold);
        hold.holding = false;
        self.slots.add_permits(std::mem::take(&mut hold.withheld));
    }
}

/// The slots are never closed while the bot runs; a closed semaphore means shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the bot is shutting down")]
pub struct Closed;

impl Ticket {
    /// Waits for the slot (at once for `Now`).
    pub async fn ready(self) -> Result<Slot, Closed> {
        match self {
            Ticket::Now(slot) => Ok(slot),
            Ticket::Queued { wait, .. } => {
                let permit = Arc::clone(&wait.slots)
                    .acquire_owned()
                    .await
                    .map_err(|_| Closed)?;
                Ok(Slot {
                    permit: Some(permit),
                    hold: Arc::clone(&wait.hold),
                    max_concurrent: wait.max_concurrent,
                })
            }
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
    async fn holding_back_with_a_queue_lets_one_request_run_at_a_time() {
        let admission = Admission::new(3, 8);
        let running: Vec<Slot> = (0..3)
            .map(|_| match admission.enter() {
                Ok(Ticket::Now(slot)) => slot,
                _ => panic!("runs at once"),
            })
            .collect();
        let queued: Vec<Ticket> = (0..3).map(|_| admission.enter().expect("queued")).collect();
        admission.hold_back();
        // Two ending requests give their slots up rather than to the queue.
        let mut running = running.into_iter();
        drop(running.next());
        drop(running.next());
        assert_eq!(admission.running(), 1);
        let mut queued = queued.into_iter();
        let next = queued.next().expect("ticket");
        let waiting = tokio::spawn(next.ready());
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "no slot while the third runs");
        drop(running.next());
        let slot = waiting.await.expect("task").expect("slot");
        assert_eq!(admission.running(), 1);
        drop(slot);
        admission.release_held();
        let rest: Vec<Slot> = futures::future::join_all(queued.map(Ticket::ready))
            .await
            .into_iter()
            .map(|slot| slot.expect("slot"))
            .collect();
        assert_eq!(admission.running(), 2);
        drop(rest);
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
