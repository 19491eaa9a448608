//! The operator side's state: the flow it watches, the metrics that count the flow's
//! events, the alerts the monitor raises and whether the memory guard holds work back. The
//! reports, the endpoint and the background loops all read through it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::BotConfig;
use crate::flow::service::Service;
use crate::operate::alert::Alerts;
use crate::operate::figures::Figures;
use crate::operate::metrics::Metrics;
use crate::operate::system::{SystemFigures, resident_bytes};

pub struct Operator {
    service: Arc<Service>,
    metrics: Arc<Metrics>,
    alerts: Alerts,
    guard_active: AtomicBool,
}

impl Operator {
    /// `metrics` must be the events sink the service was built with.
    pub fn new(service: Arc<Service>, metrics: Arc<Metrics>) -> Operator {
        Operator {
            alerts: Alerts::new(&service.config().alerts),
            service,
            metrics,
            guard_active: AtomicBool::new(false),
        }
    }

    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    pub fn config(&self) -> &BotConfig {
        self.service.config()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn alerts(&self) -> &Alerts {
        &self.alerts
    }

    /// True while resident memory is over MEMORY_LIMIT_MB and new work is held back.
    pub fn guard_active(&self) -> bool {
        self.guard_active.load(Ordering::Relaxed)
    }

    /// Records the memory guard's state; returns the previous one.
    pub fn set_guard_active(&self, active: bool) -> bool {
        self.guard_active.swap(active, Ordering::Relaxed)
    }

    /// Everything the reports show, read now.
    pub fn figures(&self) -> Figures {
        Figures {
            flow: self.service.snapshot(),
            requests: self.metrics.snapshot(),
            resident_bytes: resident_bytes(),
            memory_limit_bytes: self.config().memory_limit_bytes as u64,
            guard_active: self.guard_active(),
            system: SystemFigures::sample(),
            alerts: self.alerts.alerts(),
        }
    }
}
