//! The memory guard: while resident memory is above MEMORY_LIMIT_MB, new work is held back
//! (admission and the engine run one request at a time, so work keeps moving and the queue
//! waits) and a
//! cleanup empties the in-process cache and returns freed memory to the OS. Work resumes
//! at full concurrency once memory is below 90 % of the limit.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::operate::cleanup;
use crate::operate::metrics::CleanupTrigger;
use crate::operate::operator::Operator;
use crate::operate::system::resident_bytes;

/// Resident memory is read this often (a read of /proc/self/statm).
const SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// While holding back, freed memory is handed back to the OS this often.
const TRIM_EVERY: u32 = 5;

pub fn spawn(operator: Arc<Operator>, stop: CancellationToken) {
    if resident_bytes().is_none() {
        tracing::warn!("resident memory cannot be read here: no memory guard");
        return;
    }
    let limit = operator.config().memory_limit_bytes as u64;
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
            if resident > limit {
                if !operator.set_guard_active(true) {
                    tracing::warn!(
                        resident_mib = resident >> 20,
                        limit_mib = limit >> 20,
                        "memory above MEMORY_LIMIT_MB: holding new work back"
                    );
                    operator.metrics().guard_engaged();
                    operator.service().hold_back_work(true);
                    ticks_holding = 0;
                    cleanup::run_blocking(Arc::clone(&operator), CleanupTrigger::memory_guard)
                        .await;
                } else {
                    ticks_holding += 1;
                    if ticks_holding.is_multiple_of(TRIM_EVERY) {
                        let _ =
                            tokio::task::spawn_blocking(prism_engine::release_free_memory).await;
                    }
                }
            } else if resident < limit / 10 * 9 && operator.set_guard_active(false) {
                operator.service().hold_back_work(false);
                tracing::info!(
                    resident_mib = resident >> 20,
                    "memory below MEMORY_LIMIT_MB again: full concurrency"
                );
            }
        }
    });
}
