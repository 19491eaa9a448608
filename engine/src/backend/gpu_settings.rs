//! What the GPU backend is configured with and reports (settings, adapter, counters,
//! faults): plain data, compiled with or without the `gpu` feature, so that configuration
//! files, `prism` and the bot read the same types whether or not wgpu is built in.

use serde::{Deserialize, Serialize};

/// GPU backend settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpuConfig {
    /// Most frames recorded into one submission.
    pub max_batch_frames: usize,
    /// Most uploaded bytes in one submission.
    pub max_batch_bytes: usize,
    /// How long the stage waits for more frames before submitting a batch, in µs.
    pub batch_window_micros: u64,
    /// Batches submitted before the stage waits for the oldest, so that the workers'
    /// copies, recording and the GPU's work overlap.
    pub batches_in_flight: usize,
    /// Bytes of idle buffers kept for reuse in each of the upload, pixel and readback
    /// pools. The default, 1.5 GiB, holds the uploads of three full batches of the default
    /// `max_batch_bytes`, so the steady state allocates nothing.
    pub pool_bytes: u64,
    /// Failed batches in a row after which the GPU is disabled.
    pub failures_before_disable: u32,
    /// How long a disabled GPU stays disabled before it is probed again, in ms.
    pub reprobe_after_millis: u64,
    /// wgpu backends to look at, as `WGPU_BACKEND` spells them ("vulkan", "gl",
    /// "vulkan,gl", ...). `None`: the `WGPU_BACKEND` variable, else all compiled in.
    pub backends: Option<String>,
}

impl Default for GpuConfig {
    fn default() -> Self {
        GpuConfig {
            max_batch_frames: 32,
            max_batch_bytes: 512 << 20,
            batch_window_micros: 1_000,
            batches_in_flight: 3,
            pool_bytes: 3 * (512 << 20),
            failures_before_disable: 3,
            reprobe_after_millis: 30_000,
            backends: None,
        }
    }
}

/// Counters of the GPU backend since the engine started.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GpuStats {
    /// Frames whose operations ran on the GPU.
    pub frames: u64,
    /// Submissions (batches) that completed.
    pub batches: u64,
    /// Frames rerun on the CPU because their batch failed on the GPU.
    pub fallbacks: u64,
    /// Frames sent to the CPU because a stage would not fit one GPU binding.
    pub too_large: u64,
    /// Frames run on the CPU while the GPU was disabled.
    pub while_disabled: u64,
    /// Times the GPU was disabled after repeated failures.
    pub disabled: u64,
    /// Times a new device was opened after a loss or a disable.
    pub reprobes: u64,
    pub last_error: Option<String>,
    /// Upload, pixel and readback buffers created; flat once the pools are warm.
    pub buffers_created: u64,
    /// Where the stage's time went, summed over every frame.
    pub times: GpuStageTimes,
}

/// Nanoseconds the GPU stage spent in each phase, summed over frames (and over threads:
/// packing, readback and unpacking run on the workers, the rest on the stage thread).
/// Everything but `wait_ns` is host CPU work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GpuStageTimes {
    /// Copying a frame's pixels, in its own layout, into mapped staging memory (on the
    /// worker).
    pub pack_ns: u64,
    /// Writing a batch's parameters and weights through the queue (on the stage thread).
    pub upload_ns: u64,
    /// Recording the passes and submitting them.
    pub submit_ns: u64,
    /// Waiting for the GPU to finish a batch (the device's own work; not host time).
    pub wait_ns: u64,
    /// Copying a result out of mapped readback memory (on the worker).
    pub readback_ns: u64,
    /// Turning the read-back bytes into a frame (on the worker).
    pub unpack_ns: u64,
}

impl GpuStageTimes {
    /// The host's share: every phase but waiting for the device.
    pub fn host_ns(&self) -> u64 {
        self.pack_ns + self.upload_ns + self.submit_ns + self.readback_ns + self.unpack_ns
    }

    /// The phases between `earlier` and `self`, for a measurement window.
    pub fn since(&self, earlier: &GpuStageTimes) -> GpuStageTimes {
        GpuStageTimes {
            pack_ns: self.pack_ns.saturating_sub(earlier.pack_ns),
            upload_ns: self.upload_ns.saturating_sub(earlier.upload_ns),
            submit_ns: self.submit_ns.saturating_sub(earlier.submit_ns),
            wait_ns: self.wait_ns.saturating_sub(earlier.wait_ns),
            readback_ns: self.readback_ns.saturating_sub(earlier.readback_ns),
            unpack_ns: self.unpack_ns.saturating_sub(earlier.unpack_ns),
        }
    }
}

/// The adapter a GPU backend runs on, and the limits it uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuInfo {
    pub name: String,
    /// Vulkan, Metal, Dx12, Gl.
    pub backend: String,
    /// DiscreteGpu, IntegratedGpu, VirtualGpu, Cpu (a software rasteriser), Other.
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    /// A software adapter (llvmpipe, WARP, SwiftShader): correct but slower than the CPU
    /// backend, so `auto` never picks it.
    pub software: bool,
    /// Largest buffer a pass may bind, in bytes (the smaller of the storage-binding and
    /// buffer limits); frames whose stages need more run on the CPU.
    pub max_binding_bytes: u64,
    pub max_workgroups_per_dimension: u32,
}

/// Why a batch did not complete on the GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuFault(pub String);

impl std::fmt::Display for GpuFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a frame did not run on the GPU; the caller runs it on the CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotOnGpu {
    /// A stage needs a buffer above the device's binding limit.
    TooLarge,
    /// The GPU is disabled after repeated failures, until its re-probe.
    Disabled,
    /// The frame's batch failed on the GPU.
    Failed(GpuFault),
}

/// Keeps Mesa's Vulkan device-select layer from connecting to a display server while adapters
/// are listed: on a headless machine it printed "error: XDG_RUNTIME_DIR is invalid or not set"
/// twice on every run. The layer only reorders devices, and Prism picks its adapter itself.
/// A `NODEVICE_SELECT` the user set is left alone.
///
/// # Safety
///
/// Sets an environment variable: call it before any other thread exists (at the top of `main`).
pub unsafe fn quiet_mesa_device_select() {
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY: the caller guarantees no other thread reads or writes the environment.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}
