//! Cleanup: drops expired cache entries and idle rate-limit state and hands freed memory
//! back to the operating system. Runs every CLEANUP_INTERVAL, on POST /cleanup, and when
//! the memory guard trips (which also empties the in-process result cache: Redis and
//! Telegram's file ids still serve repeats).

use std::sync::Arc;

use crate::operate::metrics::CleanupTrigger;
use crate::operate::operator::Operator;
use crate::operate::system::resident_bytes;

/// What one cleanup freed (the JSON answer of POST /cleanup).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CleanupReport {
    pub trigger: CleanupTrigger,
    pub cache_entries_dropped: u64,
    pub cache_bytes_freed: u64,
    pub rate_limit_users_forgotten: u64,
    pub resident_bytes_before: Option<u64>,
    pub resident_bytes_after: Option<u64>,
    /// The allocator returned free memory to the operating system.
    pub returned_to_os: bool,
}

/// [`run`] off the async threads: trimming a large heap and draining the cache can take a
/// while. `None` only if the cleanup panicked.
pub async fn run_blocking(
    operator: Arc<Operator>,
    trigger: CleanupTrigger,
) -> Option<CleanupReport> {
    tokio::task::spawn_blocking(move || run(&operator, trigger))
        .await
        .ok()
}

pub fn run(operator: &Operator, trigger: CleanupTrigger) -> CleanupReport {
    let resident_before = resident_bytes();
    let trimmed = operator
        .service()
        .trim(trigger == CleanupTrigger::memory_guard);
    let returned_to_os = prism_engine::release_free_memory();
    operator.metrics().cleanup_ran(trigger);
    let report = CleanupReport {
        trigger,
        cache_entries_dropped: trimmed.cache_entries_dropped,
        cache_bytes_freed: trimmed.cache_bytes_freed,
        rate_limit_users_forgotten: trimmed.rate_limit_users_forgotten,
        resident_bytes_before: resident_before,
        resident_bytes_after: resident_bytes(),
        returned_to_os,
    };
    tracing::debug!(?report, "cleanup");
    report
}
