//! The GPU stage: one thread that owns the device, gathers frames from many jobs into
//! batches (bounded by frame count, bytes and a short wait window), submits each batch as
//! one command buffer, and keeps up to `GpuConfig::batches_in_flight` submitted before it
//! waits for the oldest, so the workers' copies, recording and the GPU's work overlap.
//! Faults fail the whole batch back to its jobs (which rerun on the CPU); a lost device is
//! closed (with the batches still on it) and a new one opened for the next batch; repeated
//! faults close it until the re-probe time.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use super::GpuFault;
use super::clock::Phase;
use super::device::{self, Device, FrameWork, InFlight};
use super::passes::FramePlan;
use super::transfer::{FailedUpload, Readback, Staged, Upload};
use super::{GpuConfig, Shared};

/// Where a frame's result (or the fault that stopped it) goes.
pub(super) type Reply = Sender<Result<Readback, GpuFault>>;

/// A frame for the GPU (or its failed upload) and where its result goes.
pub(super) struct Job {
    pub staged: Result<Staged, FailedUpload>,
    pub plan: FramePlan,
    pub reply: Reply,
}

pub(super) enum Message {
    Job(Job),
    /// Test hook: destroy the device as a driver reset would.
    #[cfg(any(test, feature = "fault-injection"))]
    DestroyDevice,
}

pub(super) struct Stage {
    config: GpuConfig,
    backends: wgpu::Backends,
    allow_software: bool,
    device: Option<Device>,
    /// Batches submitted to `device` and not yet completed, oldest first.
    pending: VecDeque<Pending>,
    shared: Arc<Shared>,
    consecutive_failures: u32,
}

/// A submitted batch and the jobs waiting for it.
struct Pending {
    in_flight: InFlight,
    replies: Vec<Reply>,
}

impl Stage {
    pub fn new(
        config: GpuConfig,
        backends: wgpu::Backends,
        allow_software: bool,
        device: Device,
        shared: Arc<Shared>,
    ) -> Stage {
        Stage {
            config,
            backends,
            allow_software,
            device: Some(device),
            pending: VecDeque::new(),
            shared,
            consecutive_failures: 0,
        }
    }

    /// Runs until every sender is gone, then finishes the batches in flight.
    pub fn run(mut self, messages: Receiver<Message>) {
        let most_in_flight = self.config.batches_in_flight.max(1);
        loop {
            // With a batch on the GPU, gather the next one without blocking for long.
            let first = if !self.pending.is_empty() {
                match messages.recv_timeout(self.window()) {
                    Ok(message) => Some(message),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match messages.recv() {
                    Ok(message) => Some(message),
                    Err(_) => break,
                }
            };
            let batch = match first {
                Some(message) => self.gather(message, &messages),
                None => Vec::new(),
            };
            let idle = batch.is_empty();
            if !idle && let Some(submitted) = self.submit(batch) {
                self.pending.push_back(submitted);
            }
            // Wait for the oldest batch once the GPU holds as many as allowed, or when no
            // new work came to overlap it with.
            if (self.pending.len() >= most_in_flight || idle)
                && let Some(oldest) = self.pending.pop_front()
            {
                self.complete(oldest);
            }
        }
        while let Some(oldest) = self.pending.pop_front() {
            self.complete(oldest);
        }
    }

    fn window(&self) -> Duration {
        Duration::from_micros(self.config.batch_window_micros)
    }

    /// Collects jobs after `first` until the frame or byte bound is reached or the wait
    /// window has passed.
    fn gather(&mut self, first: Message, messages: &Receiver<Message>) -> Vec<Job> {
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        let deadline = Instant::now() + self.window();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Job(job) => {
                    bytes += usize::try_from(job.staged.as_ref().map_or(0, Staged::size))
                        .unwrap_or(usize::MAX);
                    batch.push(job);
                }
                #[cfg(any(test, feature = "fault-injection"))]
                Message::DestroyDevice => {
                    if let Some(device) = &self.device {
                        device.destroy();
                    }
                }
            }
            if batch.len() >= self.config.max_batch_frames || bytes >= self.config.max_batch_bytes {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            next = messages.recv_timeout(left).ok();
        }
        batch
    }

    /// Submits a batch, or fails its jobs at once.
    fn submit(&mut self, batch: Vec<Job>) -> Option<Pending> {
        let mut ready = Vec::with_capacity(batch.len());
        for Job {
            staged,
            plan,
            reply,
        } in batch
        {
            match staged {
                Ok(staged) => ready.push((staged, plan, reply)),
                Err(failed) => self.upload_failed(failed, reply),
            }
        }
        if ready.is_empty() {
            return None;
        }
        if self.device.is_none() {
            self.reopen();
        }
        let Some(device) = &self.device else {
            let fault = GpuFault("the GPU is unavailable".into());
            self.fail(
                ready.into_iter().map(|(_, _, reply)| reply).collect(),
                fault,
            );
            return None;
        };
        let pool = device.uploads();
        let mut work = Vec::with_capacity(ready.len());
        let mut replies = Vec::with_capacity(ready.len());
        for (staged, plan, reply) in ready {
            let upload = match staged {
                Staged::Written(upload) if upload.is_from(pool) => Ok(upload),
                // Written for a device since closed: not a fault of this one.
                Staged::Written(_) => Err(GpuFault("the GPU device was reopened".into())),
                Staged::Copied(bytes) => self
                    .shared
                    .clock
                    .time(Phase::Pack, || Upload::write_caught(pool, &bytes))
                    .map_err(|failed| failed.fault),
            };
            match upload {
                Ok(upload) => {
                    work.push(FrameWork { upload, plan });
                    replies.push(reply);
                }
                Err(fault) => {
                    let _ = reply.send(Err(fault));
                }
            }
        }
        if work.is_empty() {
            return None;
        }
        let clock = &self.shared.clock;
        let submitted = catch_unwind(AssertUnwindSafe(|| device.submit(work, clock)))
            .unwrap_or_else(|_| Err(GpuFault("the GPU driver panicked while recording".into())));
        match submitted {
            Ok(in_flight) => Some(Pending { in_flight, replies }),
            Err(fault) => {
                self.fail(replies, fault);
                None
            }
        }
    }

    /// A worker could not write its frame: a fault of the open device only if the write
    /// went to its pool (a write into a closed device's pool is not this one's fault).
    fn upload_failed(&mut self, failed: FailedUpload, reply: Reply) {
        let current = self
            .device
            .as_ref()
            .is_some_and(|device| failed.is_from(device.uploads()));
        if current {
            self.fail(vec![reply], failed.fault);
        } else {
            let _ = reply.send(Err(failed.fault));
        }
    }

    fn complete(&mut self, pending: Pending) {
        let Some(device) = &self.device else {
            self.fail(
                pending.replies,
                GpuFault("the GPU device was closed".into()),
            );
            return;
        };
        let in_flight = pending.in_flight;
        let finished = catch_unwind(AssertUnwindSafe(|| {
            device.finish(in_flight, &self.shared.clock)
        }))
        .unwrap_or_else(|_| {
            Err(GpuFault(
                "the GPU driver panicked while reading back".into(),
            ))
        });
        match finished {
            Ok(readbacks) => {
                self.consecutive_failures = 0;
                self.shared.record_batch(readbacks.len());
                for (reply, readback) in pending.replies.into_iter().zip(readbacks) {
                    // A job that gave up waiting is not an error here.
                    let _ = reply.send(Ok(readback));
                }
            }
            Err(fault) => self.fail(pending.replies, fault),
        }
    }

    /// Fails a batch back to its jobs; closes the device when it is lost or keeps failing.
    fn fail(&mut self, replies: Vec<Reply>, fault: GpuFault) {
        tracing::warn!(error = %fault, frames = replies.len(), "GPU batch failed; rerunning on the CPU");
        self.consecutive_failures += 1;
        let lost = self.device.as_ref().is_some_and(Device::is_lost);
        if lost || self.device.is_none() {
            self.close(&fault);
        }
        if self.consecutive_failures >= self.config.failures_before_disable {
            self.close(&fault);
            self.consecutive_failures = 0;
            let until = Instant::now() + Duration::from_millis(self.config.reprobe_after_millis);
            self.shared.disable_until(until, &fault);
            tracing::warn!(
                reprobe_in_ms = self.config.reprobe_after_millis,
                "GPU disabled after repeated failures"
            );
        }
        self.shared.record_fault(&fault);
        for reply in replies {
            let _ = reply.send(Err(fault.clone()));
        }
    }

    /// Drops the device, and with it the batches still on it: their jobs rerun on the CPU
    /// without counting as more failures (the fault that closed it counted once).
    fn close(&mut self, fault: &GpuFault) {
        self.device = None;
        self.shared.close();
        for pending in self.pending.drain(..) {
            for reply in pending.replies {
                let _ = reply.send(Err(fault.clone()));
            }
        }
    }

    /// Opens a fresh device (after a loss or once the GPU was disabled).
    fn reopen(&mut self) {
        self.shared.record_reprobe();
        match device::open(
            self.backends,
            self.allow_software,
            self.config.pool_bytes,
            &self.shared.buffers_created,
        ) {
            Ok(device) => {
                tracing::info!(adapter = %device.info().name, "GPU device reopened");
                self.shared.enable(device.info().clone(), device.uploads());
                self.device = Some(device);
            }
            Err(reason) => {
                let until =
                    Instant::now() + Duration::from_millis(self.config.reprobe_after_millis);
                self.shared.disable_until(until, &GpuFault(reason));
            }
        }
    }
}
