//! Cleanup: drops expired cache entries and idle rate-limit state and hands freed memory
//! back to the operating system. Runs every CLEANUP_INTERVAL, on POST /cleanup, and when
//! the memory guard trips (which also empties the in-process result cache: Redis and
//! Telegram's file ids still serve repeats).

use std::sync::Arc;

use crate::flow::service::Service;
use crate::operate::metrics::CleanupTrigger;
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
pub async fn run_blocking(service: Arc<Service>, trigger: CleanupTrigger) -> Option<CleanupReport> {
    tokio::task::spawn_blocking(move || run(&service, trigger))
        .await
        .ok()
}

pub fn run(service: &Service, trigger: CleanupTrigger) -> CleanupReport {
    let resident_before = resident_bytes();
    let cache_before = service.cache.stats();
    let users_before = service.limits.tracked_users();
    service.limits.cleanup();
    if trigger == CleanupTrigger::memory_guard {
        service.cache.clear_local();
    } else {
        service.cache.cleanup();
    }
    let returned_to_os = prism_engine::release_free_memory();
    let cache_after = service.cache.stats();
    service.metrics.cleanup_ran(trigger);
    let report = CleanupReport {
        trigger,
        cache_entries_dropped: cache_before.entries.saturating_sub(cache_after.entries) as u64,
        cache_bytes_freed: cache_before.bytes.saturating_sub(cache_after.bytes) as u64,
        rate_limit_users_forgotten: users_before.saturating_sub(service.limits.tracked_users())
            as u64,
        resident_bytes_before: resident_before,
        resident_bytes_after: resident_bytes(),
        returned_to_os,
    };
    tracing::debug!(?report, "cleanup");
    report
}
