//! The queue between the dispatcher and the request intake: accepting never waits, the
//! intake takes requests one at a time in arrival order, and closing it lets the intake
//! finish what was accepted, then stop.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

pub struct Intake<T> {
    sender: Mutex<Option<mpsc::UnboundedSender<T>>>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<T>>>,
    backlog: AtomicUsize,
}

impl<T> Intake<T> {
    pub fn new() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        Intake {
            sender: Mutex::new(Some(sender)),
            receiver: Mutex::new(Some(receiver)),
            backlog: AtomicUsize::new(0),
        }
    }

    /// Queues an item; gives it back once the intake is closed.
    pub fn send(&self, item: T) -> Result<(), T> {
        let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        let Some(sender) = sender.as_ref() else {
            return Err(item);
        };
        self.backlog.fetch_add(1, Ordering::Relaxed);
        sender.send(item).map_err(|refused| {
            self.backlog.fetch_sub(1, Ordering::Relaxed);
            refused.0
        })
    }

    /// The receiving end, once.
    pub fn take_receiver(&self) -> Option<mpsc::UnboundedReceiver<T>> {
        self.receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The intake took an item off the queue.
    pub fn received(&self) {
        self.backlog.fetch_sub(1, Ordering::Relaxed);
    }

    /// Items queued and not yet taken.
    pub fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Relaxed)
    }

    pub fn close(&self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}
