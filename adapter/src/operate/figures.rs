//! One snapshot of what the bot reports about itself, read without touching the network:
//! the source of /metrics, /performance, the health report's numbers and the monitor.

use prism_engine::StatsSnapshot;

use crate::flow::cache::CacheStats;
use crate::flow::service::Service;
use crate::operate::metrics::MetricsSnapshot;
use crate::operate::monitor::Check;
use crate::operate::system::{SystemFigures, resident_bytes};
use crate::store::RecorderStats;

pub struct Figures {
    pub requests: MetricsSnapshot,
    /// Requests holding a slot.
    pub in_progress: usize,
    /// Requests waiting for a slot.
    pub admission_waiting: usize,
    pub workers: usize,
    pub engine: StatsSnapshot,
    pub cache: CacheStats,
    pub cache_shared: bool,
    pub records: RecorderStats,
    pub gpu_fallbacks: u64,
    pub telegram_retries: u64,
    pub resident_bytes: Option<u64>,
    pub memory_limit_bytes: u64,
    pub guard_active: bool,
    pub system: SystemFigures,
    /// Each monitored check, and whether its alert is raised now.
    pub alerts: Vec<(Check, bool)>,
}

impl Figures {
    pub fn collect(service: &Service) -> Figures {
        let requests = service.metrics.snapshot();
        Figures {
            requests,
            in_progress: service.admission.running(),
            admission_waiting: service.admission.waiting(),
            workers: service.engine.config().threads,
            engine: service.engine.stats(),
            cache: service.cache.stats(),
            cache_shared: service.cache.is_shared(),
            records: service.recorder.stats(),
            gpu_fallbacks: service
                .engine
                .backend_status()
                .gpu_stats
                .map_or(0, |gpu| gpu.fallbacks),
            telegram_retries: service.telegram.retries(),
            resident_bytes: resident_bytes(),
            memory_limit_bytes: service.config.memory_limit_bytes as u64,
            guard_active: service.memory_guard.is_active(),
            system: SystemFigures::sample(),
            alerts: service.monitor.alerts(),
        }
    }
}
