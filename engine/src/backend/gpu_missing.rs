//! The GPU backend in a build without the `gpu` feature (no wgpu in the tree): the same
//! interface, with no way to open a device, so every job runs on the CPU and `prism
//! gpu-info` says why.

pub use super::gpu_settings::{
    GpuConfig, GpuFault, GpuInfo, GpuStageTimes, GpuStats, NotOnGpu, quiet_mesa_device_select,
};

use crate::frame::Frame;
use crate::ops::Op;

/// Never constructed: without wgpu there is no device to open.
#[derive(Debug)]
pub enum GpuBackend {}

impl GpuBackend {
    pub fn new(_config: &GpuConfig, _allow_software: bool) -> Result<GpuBackend, String> {
        Err("this build has no `gpu` feature".into())
    }

    pub fn info(&self) -> GpuInfo {
        match *self {}
    }

    pub fn stats(&self) -> GpuStats {
        match *self {}
    }

    pub fn run(
        &self,
        _frame: &Frame,
        _ops: &[Op],
        _sizes: &[(u32, u32)],
    ) -> Result<Frame, NotOnGpu> {
        match *self {}
    }

    #[cfg(any(test, feature = "fault-injection"))]
    pub fn inject_device_loss(&self) {
        match *self {}
    }
}
