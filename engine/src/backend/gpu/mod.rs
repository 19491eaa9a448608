//! The GPU backend: the same operations as the CPU backend, as WGSL compute shaders
//! (`shaders/`) run through wgpu. One device per engine, shared by every worker through a
//! batching stage thread; each frame is uploaded once in its own layout (the worker copies
//! it into pooled staging memory), runs its whole pipeline on the GPU, and is read back
//! once (the worker copies it out). Frames too large for a binding, and every frame of a
//! batch that fails, are left to the caller to run on the CPU.

mod clock;
mod device;
mod error_scope;
mod passes;
mod pool;
mod stage;
mod transfer;
mod weights;

pub(crate) use passes::{COLOR_SHADER, Kernel, Planner, Shader, shader};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

pub use super::gpu_settings::{
    GpuConfig, GpuFault, GpuInfo, GpuStageTimes, GpuStats, NotOnGpu, quiet_mesa_device_select,
};

use crate::frame::Frame;
use crate::ops::Op;
use clock::{Phase, PhaseClock};
use pool::BufferPool;
use stage::{Job, Message, Stage};
use transfer::{Staged, Upload};

impl GpuConfig {
    /// The adapters to look at (only this backend knows wgpu's names).
    fn wgpu_backends(&self) -> wgpu::Backends {
        match &self.backends {
            Some(list) => device::backends_from_list(list),
            None => wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all()),
        }
    }
}

/// State the stage thread and the jobs' threads share.
pub(super) struct Shared {
    info: Mutex<GpuInfo>,
    /// The open device's staging pool, which the workers write their frames into; `None`
    /// while the stage has no device.
    uploads: Mutex<Option<Arc<BufferPool>>>,
    disabled_until: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
    frames: AtomicU64,
    batches: AtomicU64,
    fallbacks: AtomicU64,
    too_large: AtomicU64,
    while_disabled: AtomicU64,
    disabled: AtomicU64,
    reprobes: AtomicU64,
    buffers_created: Arc<AtomicU64>,
    clock: PhaseClock,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn record_batch(&self, frames: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.frames.fetch_add(frames as u64, Ordering::Relaxed);
    }

    fn record_fault(&self, fault: &GpuFault) {
        *lock(&self.last_error) = Some(fault.0.clone());
    }

    fn record_reprobe(&self) {
        self.reprobes.fetch_add(1, Ordering::Relaxed);
    }

    /// The stage closed its device: workers stop writing into its staging memory.
    fn close(&self) {
        *lock(&self.uploads) = None;
    }

    fn disable_until(&self, until: Instant, fault: &GpuFault) {
        self.disabled.fetch_add(1, Ordering::Relaxed);
        *lock(&self.disabled_until) = Some(until);
        self.record_fault(fault);
    }

    fn enable(&self, info: GpuInfo, uploads: &Arc<BufferPool>) {
        *lock(&self.info) = info;
        *lock(&self.uploads) = Some(Arc::clone(uploads));
        *lock(&self.disabled_until) = None;
    }

    fn is_disabled(&self) -> bool {
        lock(&self.disabled_until).is_some_and(|until| Instant::now() < until)
    }
}

/// A wgpu device and its batching stage. Dropping it finishes the batches in flight.
pub struct GpuBackend {
    shared: Arc<Shared>,
    messages: Option<Sender<Message>>,
    stage: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for GpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuBackend")
            .field("info", &self.info())
            .finish_non_exhaustive()
    }
}

impl GpuBackend {
    /// Opens the device (about 100 ms) and starts the stage thread. Software adapters
    /// (llvmpipe) are refused unless `allow_software`. The error says why no GPU is used.
    pub fn new(config: &GpuConfig, allow_software: bool) -> Result<GpuBackend, String> {
        let backends = config.wgpu_backends();
        let buffers_created = Arc::new(AtomicU64::new(0));
        let device = device::open(
            backends,
            allow_software,
            config.pool_bytes,
            &buffers_created,
        )?;
        let shared = Arc::new(Shared {
            info: Mutex::new(device.info().clone()),
            uploads: Mutex::new(Some(Arc::clone(device.uploads()))),
            disabled_until: Mutex::new(None),
            last_error: Mutex::new(None),
            frames: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            too_large: AtomicU64::new(0),
            while_disabled: AtomicU64::new(0),
            disabled: AtomicU64::new(0),
            reprobes: AtomicU64::new(0),
            buffers_created,
            clock: PhaseClock::default(),
        });
        let (sender, receiver) = mpsc::channel();
        let stage = Stage::new(
            config.clone(),
            backends,
            allow_software,
            device,
            Arc::clone(&shared),
        );
        let handle = std::thread::Builder::new()
            .name("prism-gpu".into())
            .spawn(move || stage.run(receiver))
            .map_err(|e| format!("cannot start the GPU stage thread: {e}"))?;
        Ok(GpuBackend {
            shared,
            messages: Some(sender),
            stage: Some(handle),
        })
    }

    pub fn info(&self) -> GpuInfo {
        lock(&self.shared.info).clone()
    }

    pub fn stats(&self) -> GpuStats {
        let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let shared = &self.shared;
        GpuStats {
            frames: count(&shared.frames),
            batches: count(&shared.batches),
            fallbacks: count(&shared.fallbacks),
            too_large: count(&shared.too_large),
            while_disabled: count(&shared.while_disabled),
            disabled: count(&shared.disabled),
            reprobes: count(&shared.reprobes),
            last_error: lock(&shared.last_error).clone(),
            buffers_created: count(&shared.buffers_created),
            times: shared.clock.snapshot(),
        }
    }

    /// Runs `ops` (planned sizes `sizes`) on the GPU, blocking until the
    /// frame's batch is done. The frame is borrowed so the caller still has it for a CPU
    /// rerun when this fails.
    pub fn run(&self, frame: &Frame, ops: &[Op], sizes: &[(u32, u32)]) -> Result<Frame, NotOnGpu> {
        let counted = |counter: &AtomicU64, why: NotOnGpu| {
            counter.fetch_add(1, Ordering::Relaxed);
            Err(why)
        };
        if self.shared.is_disabled() {
            return counted(&self.shared.while_disabled, NotOnGpu::Disabled);
        }
        let plan = passes::plan((frame.width(), frame.height()), frame.layout(), ops, sizes);
        if plan.buffer_pixels.saturating_mul(4) > self.info().max_binding_bytes {
            return counted(&self.shared.too_large, NotOnGpu::TooLarge);
        }
        let failed = |fault: GpuFault| counted(&self.shared.fallbacks, NotOnGpu::Failed(fault));
        let clock = &self.shared.clock;
        let uploads = lock(&self.shared.uploads).clone();
        let staged = clock.time(Phase::Pack, || match uploads {
            Some(pool) => Upload::write_caught(&pool, frame.data()).map(Staged::Written),
            None => Ok(Staged::Copied(frame.data().to_vec())),
        });
        let (width, height) = plan.output;
        let (reply, result) = mpsc::channel();
        // A failed upload goes to the stage too: it may mean a lost device, which only the
        // stage can close and re-probe.
        let job = Job {
            staged,
            plan,
            reply,
        };
        let Some(messages) = &self.messages else {
            return failed(GpuFault("the GPU stage has stopped".into()));
        };
        if messages.send(Message::Job(job)).is_err() {
            return failed(GpuFault("the GPU stage has stopped".into()));
        }
        let readback = match result.recv() {
            Ok(Ok(readback)) => readback,
            Ok(Err(fault)) => return failed(fault),
            Err(_) => return failed(GpuFault("the GPU stage stopped before replying".into())),
        };
        let bytes = clock.time(Phase::Readback, || readback.to_vec());
        drop(readback);
        let frame = bytes.and_then(|bytes| {
            clock.time(Phase::Unpack, || {
                Frame::new(width, height, frame.layout(), bytes)
                    .map_err(|e| GpuFault(e.to_string()))
            })
        });
        frame.or_else(failed)
    }

    /// Test hook: destroys the device before the next batch, as a driver reset would.
    #[doc(hidden)]
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn inject_device_loss(&self) {
        if let Some(messages) = &self.messages {
            let _ = messages.send(Message::DestroyDevice);
        }
    }
}

impl Drop for GpuBackend {
    fn drop(&mut self) {
        drop(self.messages.take());
        if let Some(stage) = self.stage.take() {
            let _ = stage.join();
        }
    }
}
