//! The memory guard: while resident memory is above MEMORY_LIMIT_MB, new work is held back
//! (admission and the engine run one request at a time, so work keeps moving and the queue
//! waits) and a
//! cleanup empties the in-process cache and returns freed memory to the OS. Work resumes
//! at full concurrency once memory is below 90 % of the limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::flow::service::Service;
use crate::operate::cleanup;
use crate::operate::metrics::CleanupTrigger;
use crate::operate::system::resident_bytes;

/// Resident memory is read this often (a read of /proc/self/statm).
const SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// While holding back, freed memory is handed back to the OS this often.
const TRIM_EVERY: u32 = 5;

#[derive(Default)]
pub struct MemoryGuard {
    active: AtomicBool,
}

impl MemoryGuard {
    /// True while new work is held back.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }
}

/// Samples resident memory until `stop`; does nothing where it cannot be read.
pub fn spawn(service: Arc<Service>, stop: CancellationToken) {
    if resident_bytes().is_none() {
        tracing::warn!("resident memory cannot be read here: no memory guard");
        return;
    }
    let limit = service.config.memory_limit_bytes as u64;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks_holding = 0u32;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            // A failed read (rare) judges nothing: the guard stays as it is.
            let Some(resident) = resident_bytes() else {
                continue;
            };
            let guard = &service.memory_guard;
            if resident > limit {
                if !guard.active.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        resident_mib = resident >> 20,
                        limit_mib = limit >> 20,
                        "memory above MEMORY_LIMIT_MB: holding new work back"
                    );
                    service.metrics.guard_engaged();
                    service.engine.one_job_at_a_time(true);
                    service.admission.hold_back();
                    ticks_holding = 0;
                    cleanup::run_blocking(Arc::clone(&service), CleanupTrigger::memory_guard).await;
                } else {
                    ticks_holding += 1;
                    if ticks_holding.is_multiple_of(TRIM_EVERY) {
                        let _ =
                            tokio::task::spawn_blocking(prism_engine::release_free_memory).await;
                    }
                }
            } else if resident < limit / 10 * 9 && guard.active.swap(false, Ordering::Relaxed) {
                service.admission.release_held();
                service.engine.one_job_at_a_time(false);
                tracing::info!(
                    resident_mib = resident >> 20,
                    "memory below MEMORY_LIMIT_MB again: full concurrency"
                );
            }
        }
    });
}
