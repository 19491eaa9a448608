//! A frame's way onto and off the GPU through mapped staging memory, copied by the worker
//! that owns the frame (so the copies are spread over the workers rather than serialised on
//! the stage thread), in the frame's own layout (the first and last passes convert).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::GpuFault;
use super::pool::BufferPool;

/// Copy sizes and offsets must be multiples of this (`wgpu::COPY_BUFFER_ALIGNMENT`).
const ALIGN: u64 = wgpu::COPY_BUFFER_ALIGNMENT;

/// `bytes` rounded up to what a buffer copy moves.
pub(super) fn copy_size(bytes: u64) -> u64 {
    bytes.max(1).next_multiple_of(ALIGN)
}

/// A frame's pixels on their way to the stage.
pub(super) enum Staged {
    /// Written by the worker into the open device's staging memory.
    Written(Upload),
    /// Copied while no device was open (after a loss), for the stage to write once it has
    /// opened a new one.
    Copied(Vec<u8>),
}

impl Staged {
    /// Bytes the frame adds to a batch.
    pub fn size(&self) -> u64 {
        match self {
            Staged::Written(upload) => upload.size,
            Staged::Copied(bytes) => bytes.len() as u64,
        }
    }
}

/// A worker's write into staging memory that failed (a lost device, most likely); the stage
/// decides what it means for the device whose pool it was.
pub(super) struct FailedUpload {
    pub fault: GpuFault,
    pub pool: Arc<BufferPool>,
}

impl FailedUpload {
    pub fn is_from(&self, pool: &Arc<BufferPool>) -> bool {
        Arc::ptr_eq(&self.pool, pool)
    }
}

/// A frame's bytes in a staging buffer, ready to be copied into the frame's first pixel
/// buffer.
pub(super) struct Upload {
    buffer: wgpu::Buffer,
    /// Bytes to copy (the frame's, rounded up).
    size: u64,
    pool: Arc<BufferPool>,
}

impl Upload {
    /// [`Upload::write`], with wgpu's errors on this thread and a panic inside the driver
    /// as its fault.
    pub fn write_caught(pool: &Arc<BufferPool>, bytes: &[u8]) -> Result<Upload, FailedUpload> {
        let (written, error) = pool.catching_errors(|| {
            catch_unwind(AssertUnwindSafe(|| Upload::write(pool, bytes)))
                .unwrap_or_else(|_| Err(GpuFault("the GPU driver panicked on an upload".into())))
        });
        let fault = match (written, error) {
            (Ok(upload), None) => return Ok(upload),
            (Ok(_), Some(error)) => {
                GpuFault(format!("writing a frame into staging memory: {error}"))
            }
            (Err(fault), _) => fault,
        };
        Err(FailedUpload {
            fault,
            pool: Arc::clone(pool),
        })
    }

    /// Copies `bytes` into a mapped staging buffer of `pool` and unmaps it.
    fn write(pool: &Arc<BufferPool>, bytes: &[u8]) -> Result<Upload, GpuFault> {
        let size = copy_size(bytes.len() as u64);
        let buffer = pool.take(size);
        {
            let mut view = buffer
                .get_mapped_range_mut(0..size)
                .map_err(|e| GpuFault(format!("writing a frame into staging memory: {e}")))?;
            view.slice(..bytes.len()).copy_from_slice(bytes);
        }
        buffer.unmap();
        Ok(Upload {
            buffer,
            size,
            pool: Arc::clone(pool),
        })
    }

    /// Whether the upload was written through `pool` (a pool of the device in use).
    pub fn is_from(&self, pool: &Arc<BufferPool>) -> bool {
        Arc::ptr_eq(&self.pool, pool)
    }

    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Maps the buffer for the next frame once the GPU is done with it; it rejoins the pool
    /// when the mapping completes (at a later poll of the device).
    pub fn recycle(self) {
        let Upload { buffer, pool, .. } = self;
        let kept = buffer.clone();
        buffer.map_async(wgpu::MapMode::Write, .., move |mapped| {
            if mapped.is_ok() {
                pool.give(kept);
            }
        });
    }
}

/// A frame's result in mapped readback memory. Dropping it unmaps the buffer and returns it
/// to its pool.
pub(super) struct Readback {
    buffer: wgpu::Buffer,
    /// The frame's bytes (the buffer may be longer).
    len: usize,
    pool: Arc<BufferPool>,
}

impl Readback {
    /// `buffer` must be mapped for reading.
    pub fn mapped(buffer: wgpu::Buffer, len: usize, pool: &Arc<BufferPool>) -> Readback {
        Readback {
            buffer,
            len,
            pool: Arc::clone(pool),
        }
    }

    /// The frame's bytes, copied out of the mapped range.
    pub fn to_vec(&self) -> Result<Vec<u8>, GpuFault> {
        let (copied, error) = self.pool.catching_errors(|| {
            let view = self
                .buffer
                .get_mapped_range(0..copy_size(self.len as u64))
                .map_err(|e| GpuFault(format!("reading a result back: {e}")))?;
            let mut bytes = crate::allocator::buffer_for_large_copy(self.len);
            bytes.extend_from_slice(&view[..self.len]);
            Ok(bytes)
        });
        match error {
            Some(error) => Err(GpuFault(format!("reading a result back: {error}"))),
            None => copied,
        }
    }
}

impl Drop for Readback {
    fn drop(&mut self) {
        // An unmap that fails (a lost device) only loses the buffer.
        let ((), error) = self.pool.catching_errors(|| self.buffer.unmap());
        if error.is_none() {
            self.pool.give(self.buffer.clone());
        }
    }
}
