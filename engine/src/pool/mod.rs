//! The worker pool: a fixed set of threads taking tasks from one bounded FIFO queue.
//!
//! Admission, imgproxy-style: at most `max_in_flight` tasks run and at most `max_queue`
//! wait; beyond that `submit` fails at once with `Overloaded`. Every task carries its
//! estimated peak memory and starts only when the reservation fits the budget (first in,
//! first out, so a large task is never starved by small ones). A panic in a task fails that
//! task only; its worker lives on.
//!
//! The queue is a `Mutex<VecDeque>` with condition variables rather than a channel so that a
//! cancelled task leaves the queue at once (its slot is free for the next submission) and
//! the memory check can look at the task before taking it.

pub(crate) mod completion;

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::stats::{Refusal, Stats};

/// Hands a finished task's result to whoever waits for it.
pub(crate) type Deliver = Box<dyn FnOnce() + Send>;

/// Work for the pool; gets the time it waited in the queue. The worker releases the task's
/// slot and memory before it calls the returned `Deliver`, so a caller that sees a result
/// also sees the room it freed.
pub(crate) type Work = Box<dyn FnOnce(Duration) -> Deliver + Send>;

/// Reports a task that will never deliver: dropped by a timed-out shutdown
/// (`ShuttingDown`), or whose work panicked (`Internal`).
pub(crate) type Abandon = Box<dyn FnOnce(Error) + Send>;

pub(crate) struct Task {
    pub id: u64,
    pub memory: usize,
    pub work: Work,
    pub abandon: Abandon,
}

struct Queued {
    task: Task,
    since: Instant,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolConfig {
    pub threads: usize,
    pub max_in_flight: usize,
    pub max_queue: usize,
    pub memory_budget: usize,
}

struct State {
    queue: VecDeque<Queued>,
    running: usize,
    reserved: usize,
    accepting: bool,
    /// Memory pressure outside the pool (set by the embedder): start a task only when none
    /// runs.
    one_at_a_time: bool,
}

struct Shared {
    config: PoolConfig,
    state: Mutex<State>,
    /// Signalled when a task may have become startable (new task, finished task, shutdown).
    work: Condvar,
    /// Signalled when queue room or idleness may have appeared.
    progress: Condvar,
    stats: Arc<Stats>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Tasks never run under this lock, so a poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Room for one more: the queue may hold `max_queue` plus one per idle in-flight slot
    /// (a task submitted to an idle pool passes through the queue for an instant).
    fn has_room(&self, state: &State) -> bool {
        let free_slots = self.config.max_in_flight.saturating_sub(state.running);
        state.queue.len() < self.config.max_queue + free_slots
    }

    fn publish(&self, state: &State) {
        self.stats
            .set_load(state.queue.len(), state.running, state.reserved);
    }
}

/// What a shutdown left undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ShutdownReport {
    /// Queued tasks that never started; their handles resolve to a shutdown error.
    pub abandoned: usize,
    /// Tasks still running when the timeout expired (they finish in the background).
    pub still_running: usize,
}

pub(crate) struct Pool {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Pool {
    pub fn new(config: PoolConfig, stats: Arc<Stats>) -> Result<Pool, Error> {
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                running: 0,
                reserved: 0,
                accepting: true,
                one_at_a_time: false,
            }),
            work: Condvar::new(),
            progress: Condvar::new(),
            stats,
        });
        let mut workers = Vec::with_capacity(config.threads);
        for index in 0..config.threads {
            let shared = Arc::clone(&shared);
            let worker = std::thread::Builder::new()
                .name(format!("prism-worker-{index}"))
                .spawn(move || work_loop(&shared))
                .map_err(|e| Error::Internal(format!("cannot start worker thread: {e}")))?;
            workers.push(worker);
        }
        Ok(Pool {
            shared,
            workers: Mutex::new(workers),
        })
    }

    /// Queues a task. When full: fails with `Overloaded`, or with `wait_for_room` blocks
    /// until there is room. A task whose memory alone exceeds the budget is refused.
    pub fn submit(&self, task: Task, wait_for_room: bool) -> Result<(), Error> {
        let shared = &self.shared;
        if task.memory > shared.config.memory_budget {
            shared.stats.refused(Refusal::TooLarge);
            return Err(Error::Limits(format!(
                "this job needs an estimated {} MiB, more than the whole memory budget of {} MiB",
                task.memory >> 20,
                shared.config.memory_budget >> 20
            )));
        }
        let mut state = shared.lock();
        loop {
            if !state.accepting {
                shared.stats.refused(Refusal::ShuttingDown);
                return Err(Error::ShuttingDown);
            }
            if shared.has_room(&state) {
                break;
            }
            if !wait_for_room {
                shared.stats.refused(Refusal::Overloaded);
                return Err(Error::Overloaded {
                    queued: state.queue.len(),
                    running: state.running,
                });
            }
            state = shared
                .progress
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.queue.push_back(Queued {
            task,
            since: Instant::now(),
        });
        shared.publish(&state);
        drop(state);
        shared.work.notify_all();
        Ok(())
    }

    /// Removes a task that has not started; true if it was still queued.
    pub fn cancel(&self, id: u64) -> bool {
        let shared = &self.shared;
        let mut state = shared.lock();
        let before = state.queue.len();
        state.queue.retain(|queued| queued.task.id != id);
        let removed = state.queue.len() < before;
        if removed {
            shared.stats.cancelled();
            shared.publish(&state);
            drop(state);
            shared.progress.notify_all();
            shared.work.notify_all();
        }
        removed
    }

    /// While on, queued tasks start only when no other task runs.
    pub fn one_at_a_time(&self, on: bool) {
        self.shared.lock().one_at_a_time = on;
        self.shared.work.notify_all();
    }

    /// False once shutdown has begun: new tasks are refused.
    pub fn accepting(&self) -> bool {
        self.shared.lock().accepting
    }

    /// Stops admitting, lets queued and running tasks finish (up to `timeout`), then joins
    /// the workers. Tasks still queued at the timeout are abandoned.
    pub fn shutdown(&self, timeout: Option<Duration>) -> ShutdownReport {
        let shared = &self.shared;
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = shared.lock();
        state.accepting = false;
        shared.work.notify_all();
        shared.progress.notify_all();
        while !state.queue.is_empty() || state.running > 0 {
            let wait = match deadline {
                None => Duration::from_secs(3600),
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => break,
                },
            };
            state = shared
                .progress
                .wait_timeout(state, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let abandoned: Vec<Queued> = state.queue.drain(..).collect();
        let report = ShutdownReport {
            abandoned: abandoned.len(),
            still_running: state.running,
        };
        shared.publish(&state);
        drop(state);
        shared.work.notify_all();
        for queued in abandoned {
            (queued.task.abandon)(Error::ShuttingDown);
        }
        let workers =
            std::mem::take(&mut *self.workers.lock().unwrap_or_else(PoisonError::into_inner));
        if report.still_running == 0 {
            // A waker run inline may drop the last engine handle on a worker; that worker
            // cannot join itself, and it exits on its own once it returns to its loop.
            let current = std::thread::current().id();
            for worker in workers.into_iter().filter(|w| w.thread().id() != current) {
                let _ = worker.join();
            }
        }
        report
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown(None);
    }
}

fn work_loop(shared: &Shared) {
    loop {
        let mut state = shared.lock();
        let queued = loop {
            let startable = state.queue.front().is_some_and(|front| {
                state.running < shared.config.max_in_flight
                    && state.reserved + front.task.memory <= shared.config.memory_budget
                    && (!state.one_at_a_time || state.running == 0)
            });
            if startable {
                break state.queue.pop_front();
            }
            if !state.accepting && state.queue.is_empty() {
                return;
            }
            state = shared
                .work
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        };
        let Some(Queued { task, since }) = queued else {
            continue;
        };
        state.running += 1;
        state.reserved += task.memory;
        shared.publish(&state);
        drop(state);
        shared.progress.notify_all();

        let Task {
            memory,
            work,
            abandon,
            ..
        } = task;
        let outcome = catch_unwind(AssertUnwindSafe(|| work(since.elapsed())));

        let mut state = shared.lock();
        state.running -= 1;
        state.reserved -= memory;
        shared.publish(&state);
        drop(state);
        shared.work.notify_all();
        shared.progress.notify_all();

        match outcome {
            Ok(deliver) => deliver(),
            Err(_) => {
                shared.stats.panicked();
                abandon(Error::Internal("the job panicked".into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    fn pool(threads: usize, max_queue: usize, memory_budget: usize) -> Pool {
        let config = PoolConfig {
            threads,
            max_in_flight: threads,
            max_queue,
            memory_budget,
        };
        Pool::new(config, Arc::new(Stats::new(memory_budget))).unwrap()
    }

    fn task(id: u64, memory: usize, work: impl FnOnce(Duration) + Send + 'static) -> Task {
        let work = move |waited| {
            work(waited);
            Box::new(|| {}) as Deliver
        };
        Task {
            id,
            memory,
            work: Box::new(work),
            abandon: Box::new(|_| {}),
        }
    }

    #[test]
    fn panics_fail_one_task_and_the_pool_keeps_its_workers() {
        let pool = pool(2, 8, 1000);
        let (done, finished) = mpsc::channel();
        for id in 0..6 {
            let done = done.clone();
            pool.submit(
                task(id, 1, move |_| {
                    if id % 2 == 0 {
                        panic!("injected panic in task {id}");
                    }
                    done.send(id).unwrap();
                }),
                true,
            )
            .unwrap();
        }
        let mut ok: Vec<u64> = (0..3)
            .map(|_| finished.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        ok.sort();
        assert_eq!(ok, vec![1, 3, 5]);
        pool.shutdown(None);
        assert_eq!(pool.shared.stats.snapshot().panicked, 3);
    }

    #[test]
    fn overloaded_when_running_and_queue_are_full_and_cancel_frees_a_slot() {
        let pool = pool(1, 1, 1000);
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let blocker = Arc::clone(&gate);
        pool.submit(
            task(1, 1, move |_| {
                let _ = blocker.lock().unwrap().recv();
            }),
            false,
        )
        .unwrap();
        // Wait until the worker has taken task 1.
        while pool.shared.lock().running == 0 {
            std::thread::yield_now();
        }
        pool.submit(task(2, 1, |_| {}), false).unwrap();
        let error = pool.submit(task(3, 1, |_| {}), false).unwrap_err();
        assert!(
            matches!(
                error,
                Error::Overloaded {
                    queued: 1,
                    running: 1
                }
            ),
            "{error:?}"
        );
        assert!(pool.cancel(2));
        assert!(!pool.cancel(2), "already gone");
        pool.submit(task(4, 1, |_| {}), false).unwrap();
        release.send(()).unwrap();
        pool.shutdown(None);
        let stats = pool.shared.stats.snapshot();
        assert_eq!((stats.refused_overloaded, stats.cancelled), (1, 1));
    }

    #[test]
    fn memory_budget_is_never_exceeded_and_everything_completes() {
        let budget = 100;
        let pool = pool(4, 64, budget);
        let in_use = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (done, finished) = mpsc::channel();
        for id in 0..40u64 {
            let memory = [30, 45, 10, 60][id as usize % 4];
            let (in_use, peak, done) = (Arc::clone(&in_use), Arc::clone(&peak), done.clone());
            pool.submit(
                task(id, memory, move |_| {
                    let now = in_use.fetch_add(memory, Ordering::SeqCst) + memory;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    in_use.fetch_sub(memory, Ordering::SeqCst);
                    done.send(()).unwrap();
                }),
                true,
            )
            .unwrap();
        }
        for _ in 0..40 {
            finished.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        assert!(
            peak.load(Ordering::SeqCst) <= budget,
            "peak {}",
            peak.load(Ordering::SeqCst)
        );
        assert!(
            pool.submit(task(99, budget + 1, |_| {}), false).is_err(),
            "larger than the budget"
        );
        pool.shutdown(None);
        assert_eq!(pool.shared.stats.snapshot().reserved_bytes, 0);
    }

    #[test]
    fn one_at_a_time_runs_queued_tasks_singly_until_turned_off() {
        let pool = pool(4, 64, 1000);
        pool.one_at_a_time(true);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (done, finished) = mpsc::channel();
        let submit = |id| {
            let (running, peak, done) = (Arc::clone(&running), Arc::clone(&peak), done.clone());
            pool.submit(
                task(id, 1, move |_| {
                    peak.fetch_max(running.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                    done.send(()).unwrap();
                }),
                true,
            )
            .unwrap();
        };
        (0..8).for_each(submit);
        for _ in 0..8 {
            finished.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 1);
        pool.one_at_a_time(false);
        (8..16).for_each(submit);
        for _ in 0..8 {
            finished.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        pool.shutdown(None);
    }

    #[test]
    fn shutdown_drains_then_refuses_and_a_timeout_abandons_the_queue() {
        let pool = pool(1, 16, 1000);
        let count = Arc::new(AtomicUsize::new(0));
        for id in 0..5 {
            let count = Arc::clone(&count);
            pool.submit(
                task(id, 1, move |_| {
                    std::thread::sleep(Duration::from_millis(5));
                    count.fetch_add(1, Ordering::SeqCst);
                }),
                false,
            )
            .unwrap();
        }
        assert_eq!(pool.shutdown(None), ShutdownReport::default());
        assert_eq!(count.load(Ordering::SeqCst), 5, "queued work finished");
        assert!(matches!(
            pool.submit(task(9, 1, |_| {}), false),
            Err(Error::ShuttingDown)
        ));

        let slow = self::pool(1, 16, 1000);
        let abandoned = Arc::new(AtomicUsize::new(0));
        for id in 0..4 {
            let abandoned = Arc::clone(&abandoned);
            let work = |_| {
                std::thread::sleep(Duration::from_millis(300));
                Box::new(|| {}) as Deliver
            };
            slow.submit(
                Task {
                    id,
                    memory: 1,
                    work: Box::new(work),
                    abandon: Box::new(move |_| {
                        abandoned.fetch_add(1, Ordering::SeqCst);
                    }),
                },
                false,
            )
            .unwrap();
        }
        let report = slow.shutdown(Some(Duration::from_millis(50)));
        assert_eq!(
            report,
            ShutdownReport {
                abandoned: 3,
                still_running: 1
            }
        );
        assert_eq!(abandoned.load(Ordering::SeqCst), 3);
    }
}
