//! The GPU backend: the same operations as the CPU backend, as WGSL compute shaders
//! (`shaders/`) run through wgpu. One device per engine, shared by every worker through a
//! batching stage thread; each frame is uploaded once, runs its whole pipeline on the GPU,
//! and is read back once. Frames too large for a binding, and every frame of a batch that
//! fails, are left to the caller to run on the CPU.

mod clock;
mod device;
mod passes;
mod stage;
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

use crate::frame::{Frame, Layout};
use crate::ops::Op;
use clock::{Phase, PhaseClock};
use stage::{Job, Message, Stage};

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
    disabled_until: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
    frames: AtomicU64,
    batches: AtomicU64,
    fallbacks: AtomicU64,
    too_large: AtomicU64,
    while_disabled: AtomicU64,
    disabled: AtomicU64,
    reprobes: AtomicU64,
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

    fn disable_until(&self, until: Instant, fault: &GpuFault) {
        self.disabled.fetch_add(1, Ordering::Relaxed);
        *lock(&self.disabled_until) = Some(until);
        self.record_fault(fault);
    }

    fn enable(&self, info: GpuInfo) {
        *lock(&self.info) = info;
        *lock(&self.disabled_until) = None;
    }

    fn is_disabled(&self) -> bool {
        lock(&self.disabled_until).is_some_and(|until| Instant::now() < until)
    }
}

/// A wgpu device and its batching stage. Dropping it finishes the batch in flight.
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
        let device = device::open(backends, allow_software)?;
        let shared = Arc::new(Shared {
            info: Mutex::new(device.info().clone()),
            disabled_until: Mutex::new(None),
            last_error: Mutex::new(None),
            frames: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            too_large: AtomicU64::new(0),
            while_disabled: AtomicU64::new(0),
            disabled: AtomicU64::new(0),
            reprobes: AtomicU64::new(0),
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
        let plan = passes::plan((frame.width(), frame.height()), ops, sizes);
        if plan.buffer_pixels.saturating_mul(4) > self.info().max_binding_bytes {
            return counted(&self.shared.too_large, NotOnGpu::TooLarge);
        }
        let output = plan.output;
        let (reply, result) = mpsc::channel();
        let job = Job {
            rgba: self.shared.clock.time(Phase::Pack, || to_rgba(frame)),
            plan,
            reply,
        };
        let failed = |fault: GpuFault| counted(&self.shared.fallbacks, NotOnGpu::Failed(fault));
        let Some(messages) = &self.messages else {
            return failed(GpuFault("the GPU stage has stopped".into()));
        };
        if messages.send(Message::Job(job)).is_err() {
            return failed(GpuFault("the GPU stage has stopped".into()));
        }
        match result.recv() {
            Ok(Ok(rgba)) => self
                .shared
                .clock
                .time(Phase::Unpack, || from_rgba(output, rgba, frame.layout()))
                .map_err(|e| NotOnGpu::Failed(GpuFault(e.to_string()))),
            Ok(Err(fault)) => failed(fault),
            Err(_) => failed(GpuFault("the GPU stage stopped before replying".into())),
        }
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

/// RGBA bytes for the upload (RGB gets an opaque alpha).
fn to_rgba(frame: &Frame) -> Vec<u8> {
    match frame.layout() {
        Layout::Rgba8 => frame.data().to_vec(),
        Layout::Rgb8 => frame
            .data()
            .chunks_exact(3)
            .flat_map(|px| [px[0], px[1], px[2], 255])
            .collect(),
    }
}

/// The read-back RGBA bytes as a frame of the input's layout (no op adds alpha).
fn from_rgba(
    (width, height): (u32, u32),
    rgba: Vec<u8>,
    layout: Layout,
) -> Result<Frame, crate::error::Error> {
    let data = match layout {
        Layout::Rgba8 => rgba,
        Layout::Rgb8 => rgba
            .chunks_exact(4)
            .flat_map(|px| [px[0], px[1], px[2]])
            .collect(),
    };
    Frame::new(width, height, layout, data)
}
