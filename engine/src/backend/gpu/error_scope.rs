//! wgpu errors caught where they happen: the one helper that the device, its buffer pool and
//! the transfers share (kept apart from all three so none of them imports another back).

/// Runs `work` (wgpu calls on this thread) with its validation and out-of-memory errors
/// caught and returned: error scopes are per thread, and an error outside one would reach
/// the uncaptured handler and fail the stage's next batch instead of `work`.
pub(super) fn catching_errors<T>(
    device: &wgpu::Device,
    work: impl FnOnce() -> T,
) -> (T, Option<String>) {
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let memory = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let result = work();
    let memory_error = pollster::block_on(memory.pop());
    let validation_error = pollster::block_on(validation.pop());
    (
        result,
        memory_error.or(validation_error).map(|e| e.to_string()),
    )
}
