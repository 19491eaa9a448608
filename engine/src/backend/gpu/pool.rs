//! Buffers kept between batches so that the steady state allocates nothing: a new mappable
//! buffer is zero-filled by wgpu, and every new buffer is an allocation in the driver. A
//! pool holds idle buffers of one usage up to a byte bound, hands out the smallest idle one
//! that fits (at most twice the size asked for), and drops what it cannot keep.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::error_scope;

/// Upload staging buffers are handed out mapped for writing; pixel and readback buffers
/// unmapped (the stage maps a readback once its copy is done).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mapping {
    /// Idle buffers are mapped for writing; new ones are created mapped.
    Write,
    Unmapped,
}

pub(super) struct BufferPool {
    device: wgpu::Device,
    label: &'static str,
    usage: wgpu::BufferUsages,
    mapping: Mapping,
    /// Most bytes of idle buffers kept.
    limit: u64,
    /// The device's largest buffer: a size class above it is not rounded up.
    largest: u64,
    idle: Mutex<Vec<wgpu::Buffer>>,
    /// Buffers created, counted for every pool of the backend (`GpuStats::buffers_created`).
    created: Arc<AtomicU64>,
}

/// Sizes are rounded up to a multiple of an eighth of the largest power of two not above
/// them, so that frames of nearly the same size share buffers; at most 12.5 % is wasted.
fn size_class(bytes: u64) -> u64 {
    let bytes = bytes.max(4);
    let power_below = 1u64 << (63 - bytes.leading_zeros());
    bytes.next_multiple_of((power_below / 8).max(256))
}

impl BufferPool {
    pub fn new(
        device: &wgpu::Device,
        label: &'static str,
        usage: wgpu::BufferUsages,
        mapping: Mapping,
        limit: u64,
        created: &Arc<AtomicU64>,
    ) -> BufferPool {
        BufferPool {
            device: device.clone(),
            label,
            usage,
            mapping,
            limit,
            largest: device.limits().max_buffer_size,
            idle: Mutex::new(Vec::new()),
            created: Arc::clone(created),
        }
    }

    /// A buffer of at least `bytes`: an idle one, or a new one.
    pub fn take(&self, bytes: u64) -> wgpu::Buffer {
        let class = size_class(bytes);
        let size = if class > self.largest {
            bytes.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT)
        } else {
            class
        };
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            let fitting = idle
                .iter()
                .enumerate()
                .filter(|(_, buffer)| (size..=2 * size).contains(&buffer.size()))
                .min_by_key(|(_, buffer)| buffer.size())
                .map(|(index, _)| index);
            fitting.map(|index| idle.remove(index))
        };
        reused.unwrap_or_else(|| {
            self.created.fetch_add(1, Ordering::Relaxed);
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(self.label),
                size,
                usage: self.usage,
                mapped_at_creation: self.mapping == Mapping::Write,
            })
        })
    }

    /// [`error_scope::catching_errors`] on this pool's device.
    pub fn catching_errors<T>(&self, work: impl FnOnce() -> T) -> (T, Option<String>) {
        error_scope::catching_errors(&self.device, work)
    }

    /// Keeps `buffer` for reuse (mapped, for a `Write` pool), unless the idle buffers
    /// would pass the bound; then the oldest idle buffers make room or `buffer` is dropped.
    pub fn give(&self, buffer: wgpu::Buffer) {
        if buffer.size() > self.limit {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let mut held: u64 = idle.iter().map(wgpu::Buffer::size).sum();
        while held + buffer.size() > self.limit && !idle.is_empty() {
            held -= idle.remove(0).size();
        }
        idle.push(buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn sizes_round_up_by_at_most_an_eighth() {
        assert_eq!(size_class(0), 256);
        assert_eq!(size_class(1000), 1024);
        // 12 MP of packed RGB.
        let rgb = 3 * 4000 * 3000;
        let class = size_class(rgb);
        assert!(class >= rgb && class <= rgb + rgb / 8, "{class}");
        assert_eq!(size_class(class), class);
    }
}
