//! Backends that run a job's pixel operations: the CPU/SIMD backend (the reference) and
//! the GPU backend, and the choice between them for each job, with a CPU rerun whenever
//! the GPU cannot or does not finish.

pub(crate) mod cost;
pub mod cpu;
#[cfg(feature = "gpu")]
pub mod gpu;
#[cfg(not(feature = "gpu"))]
#[path = "gpu_missing.rs"]
pub mod gpu;
mod gpu_settings;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::frame::Frame;
use crate::limits::Deadline;
use crate::ops::Op;
use gpu::{GpuBackend, GpuConfig, GpuInfo, GpuStats, NotOnGpu};

/// Which backend runs the pixel operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The GPU where it pays: a real (not software) adapter, and a job the cost model
    /// says the GPU finishes sooner, transfers included. Otherwise the CPU.
    #[default]
    Auto,
    Cpu,
    /// Every job on the GPU, software adapters included; the CPU only when no adapter
    /// exists, a frame is too large for a binding, or the GPU fails.
    Gpu,
}

impl FromStr for BackendChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<BackendChoice, String> {
        match text.to_ascii_lowercase().as_str() {
            "auto" => Ok(BackendChoice::Auto),
            "cpu" => Ok(BackendChoice::Cpu),
            "gpu" => Ok(BackendChoice::Gpu),
            other => Err(format!("unknown backend `{other}` (auto, cpu or gpu)")),
        }
    }
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Cpu => "cpu",
            BackendChoice::Gpu => "gpu",
        })
    }
}

/// The backend that produced an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendUsed {
    Cpu,
    Gpu,
}

impl BackendUsed {
    pub fn name(self) -> &'static str {
        match self {
            BackendUsed::Cpu => "cpu",
            BackendUsed::Gpu => "gpu",
        }
    }
}

/// What the engine runs on, for `prism` and the bot's /performance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendStatus {
    pub choice: BackendChoice,
    /// The adapter in use, if a GPU backend was opened.
    pub gpu: Option<GpuInfo>,
    /// Why no GPU is used, when none is.
    pub gpu_unavailable: Option<String>,
    pub gpu_stats: Option<GpuStats>,
}

/// The engine's backends and the per-job choice between them.
pub(crate) struct Backends {
    choice: BackendChoice,
    gpu: Option<GpuBackend>,
    gpu_unavailable: Option<String>,
}

impl Backends {
    /// Opens the GPU when the choice may use it; without one, everything runs on the CPU
    /// and the reason is logged once.
    pub fn new(choice: BackendChoice, config: &GpuConfig) -> Backends {
        let (gpu, gpu_unavailable) = match choice {
            BackendChoice::Cpu => (None, None),
            BackendChoice::Auto | BackendChoice::Gpu => {
                match GpuBackend::new(config, choice == BackendChoice::Gpu) {
                    Ok(gpu) => {
                        let info = gpu.info();
                        tracing::info!(adapter = %info.name, backend = %info.backend, device_type = %info.device_type, "GPU backend ready");
                        (Some(gpu), None)
                    }
                    Err(reason) => {
                        tracing::info!(%reason, "no GPU backend; operations run on the CPU");
                        (None, Some(reason))
                    }
                }
            }
        };
        Backends {
            choice,
            gpu,
            gpu_unavailable,
        }
    }

    pub fn status(&self) -> BackendStatus {
        BackendStatus {
            choice: self.choice,
            gpu: self.gpu.as_ref().map(GpuBackend::info),
            gpu_unavailable: self.gpu_unavailable.clone(),
            gpu_stats: self.gpu.as_ref().map(GpuBackend::stats),
        }
    }

    #[cfg(feature = "fault-injection")]
    pub fn gpu(&self) -> Option<&GpuBackend> {
        self.gpu.as_ref()
    }

    /// Runs the planned steps (orientation first) on the chosen backend; anything the GPU does not
    /// finish runs again on the CPU from the same decoded frame, and pipelines with a smart
    /// crop run on the CPU from the start. Past `deadline` the job fails with `Limits`.
    pub fn run(
        &self,
        frame: Frame,
        ops: &[Op],
        sizes: &[(u32, u32)],
        deadline: &Deadline,
    ) -> Result<(Frame, BackendUsed), Error> {
        if let Some(gpu) = &self.gpu {
            let size = (frame.width(), frame.height());
            let wanted = match self.choice {
                BackendChoice::Gpu => true,
                _ => cost::gpu_pays(size, frame.bytes_per_pixel(), ops, sizes),
            };
            let has_work = !ops.is_empty();
            let gpu_can = !ops.iter().any(Op::places_by_content);
            if wanted && has_work && gpu_can {
                match gpu.run(&frame, ops, sizes) {
                    Ok(out) => {
                        deadline.check(|| "after the steps on the GPU".into())?;
                        return Ok((out, BackendUsed::Gpu));
                    }
                    Err(NotOnGpu::TooLarge | NotOnGpu::Disabled | NotOnGpu::Failed(_)) => {}
                }
            }
        }
        cpu::run_until(frame, ops, sizes, deadline).map(|frame| (frame, BackendUsed::Cpu))
    }
}
