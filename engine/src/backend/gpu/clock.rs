//! Where the GPU stage's time goes: one counter per phase, added to by the workers (packing,
//! readback, unpacking) and the stage thread (uploads, recording, waiting), read into
//! [`GpuStageTimes`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::GpuStageTimes;

#[derive(Debug, Clone, Copy)]
pub(super) enum Phase {
    Pack,
    Upload,
    Submit,
    Wait,
    Readback,
    Unpack,
}

#[derive(Debug, Default)]
pub(super) struct PhaseClock {
    nanos: [AtomicU64; 6],
}

impl PhaseClock {
    /// Runs `work`, adding its wall time to `phase`.
    pub fn time<T>(&self, phase: Phase, work: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = work();
        self.add(phase, started.elapsed());
        result
    }

    pub fn add(&self, phase: Phase, spent: Duration) {
        let nanos = u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX);
        self.nanos[phase as usize].fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> GpuStageTimes {
        let read = |phase: Phase| self.nanos[phase as usize].load(Ordering::Relaxed);
        GpuStageTimes {
            pack_ns: read(Phase::Pack),
            upload_ns: read(Phase::Upload),
            submit_ns: read(Phase::Submit),
            wait_ns: read(Phase::Wait),
            readback_ns: read(Phase::Readback),
            unpack_ns: read(Phase::Unpack),
        }
    }
}
