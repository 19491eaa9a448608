//! The `Engine`: admission (probe, plan, memory estimate) on the caller's thread, then
//! decode → orient → ops → encode on the worker pool, with timings and stats.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backend::{BackendStatus, BackendUsed, Backends};
use crate::codec::{self, ImageInfo, output_policy};
use crate::config::EngineConfig;
use crate::error::Error;
use crate::format::OutputFormat;
use crate::frame::Frame;
use crate::limits::Limits;
use crate::memory;
use crate::pipeline::{OutputSpec, Pipeline, Plan};
use crate::pool::completion::Completion;
use crate::pool::{Deliver, Pool, PoolConfig, ShutdownReport, Task};
use crate::stats::{Stats, StatsSnapshot};
use crate::timings::Timings;

/// A processed image and what is known about it.
#[derive(Debug, Clone, Serialize)]
pub struct Output {
    /// The encoded image: oriented, without EXIF, in sRGB without a profile (or, with
    /// `keepicc`, with the input's RGB profile and values).
    #[serde(skip)]
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
    /// Which backend ran the operations.
    pub backend: BackendUsed,
    /// What the input's header said.
    pub input: ImageInfo,
    pub timings: Timings,
}

/// A configured image engine with its worker pool. Clones share the pool; the pool shuts
/// down (finishing its queue) when the last clone and the last job handle are gone.
///
/// ```
/// use prism_engine::{Engine, EngineConfig, Pipeline};
/// let engine = Engine::new(EngineConfig::default()).unwrap();
/// let png = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pngsuite/basn2c08.png")).unwrap();
/// let pipeline: Pipeline = "fit:16x16|gray|png".parse().unwrap();
/// let output = engine.process(&png, &pipeline).unwrap();
/// assert_eq!((output.width, output.height), (16, 16));
/// assert!(output.bytes.starts_with(b"\x89PNG"));
/// ```
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    config: EngineConfig,
    stats: Arc<Stats>,
    next_id: AtomicU64,
    pool: Pool,
    backends: Arc<Backends>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts the worker threads, and opens the GPU unless the backend is `cpu` (about
    /// 100 ms; without a usable adapter everything runs on the CPU, see
    /// [`Engine::backend_status`]).
    pub fn new(config: EngineConfig) -> Result<Engine, Error> {
        config.validate()?;
        let backends = Arc::new(Backends::new(config.backend, &config.gpu));
        let stats = Arc::new(Stats::new(config.memory_budget_bytes));
        let pool_config = PoolConfig {
            threads: config.threads,
            max_in_flight: config.max_in_flight.min(config.threads),
            max_queue: config.max_queue,
            memory_budget: config.memory_budget_bytes,
        };
        let pool = Pool::new(pool_config, Arc::clone(&stats))?;
        Ok(Engine {
            inner: Arc::new(Inner {
                config,
                stats,
                next_id: AtomicU64::new(1),
                pool,
                backends,
            }),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Counters, queue and memory levels, stage latency percentiles. Cheap: atomics only.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// The backend choice, the GPU adapter if one is open (or why none is), and the GPU
    /// counters (frames, batches, CPU fallbacks).
    pub fn backend_status(&self) -> BackendStatus {
        self.inner.backends.status()
    }

    /// Test hook: makes the GPU device fail as a driver reset would; jobs in the batch that
    /// meets it rerun on the CPU. Returns false when no GPU backend is open.
    #[doc(hidden)]
    #[cfg(feature = "fault-injection")]
    pub fn inject_gpu_device_loss(&self) -> bool {
        match self.inner.backends.gpu() {
            Some(gpu) => {
                gpu.inject_device_loss();
                true
            }
            None => false,
        }
    }

    /// Reads the header only and checks the input limits.
    pub fn probe(&self, bytes: &[u8]) -> Result<ImageInfo, Error> {
        codec::probe(bytes, &self.inner.config.limits)
    }

    /// Runs `pipeline` on `bytes` through the pool and waits for the result (waiting for
    /// queue room rather than failing with `Overloaded`). Never panics: a panic inside a codec
    /// or an op comes back as [`Error::Internal`].
    pub fn process(&self, bytes: &[u8], pipeline: &Pipeline) -> Result<Output, Error> {
        self.enqueue(bytes.to_vec(), pipeline.clone(), true)?.wait()
    }

    /// Spreads a batch over the pool; one result per input, in input order. A bad input
    /// fails only itself; a full queue makes this wait, not fail.
    pub fn process_batch(
        &self,
        inputs: Vec<Vec<u8>>,
        pipeline: &Pipeline,
    ) -> Vec<Result<Output, Error>> {
        let handles: Vec<Result<JobHandle, Error>> = inputs
            .into_iter()
            .map(|bytes| self.enqueue(bytes, pipeline.clone(), true))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.and_then(JobHandle::wait))
            .collect()
    }

    /// Queues a job and returns at once. The handle is a `Future` (for any executor) and can
    /// also be waited on with [`JobHandle::wait`]; dropping it before the job starts removes
    /// the job from the queue. Fails at once with `Overloaded` when running and queued jobs
    /// are at their limits, with `Limits` when the input or its estimated memory is too big,
    /// and with the input's error when its header is bad.
    pub fn submit(&self, bytes: Vec<u8>, pipeline: Pipeline) -> Result<JobHandle, Error> {
        self.enqueue(bytes, pipeline, false)
    }

    /// Under memory pressure the embedder sees (its process over its limit): while on, a
    /// queued job starts only when no other job runs, whatever the budget would allow.
    pub fn one_job_at_a_time(&self, on: bool) {
        self.inner.pool.one_at_a_time(on);
    }

    /// False once [`Engine::shutdown`] has begun: every new job is refused.
    pub fn accepting(&self) -> bool {
        self.inner.pool.accepting()
    }

    /// Stops admitting, finishes queued and running jobs, joins the workers.
    pub fn shutdown(&self) {
        self.inner.pool.shutdown(None);
    }

    /// As [`Engine::shutdown`], but gives up after `timeout`: queued jobs left are failed with
    /// `ShuttingDown` and the report says how many, and how many were still running.
    pub fn shutdown_timeout(&self, timeout: Duration) -> ShutdownReport {
        self.inner.pool.shutdown(Some(timeout))
    }

    /// The decode stage alone (header probed and limits checked first): sRGB pixels in
    /// stored orientation, for embedders that run their own operations, and for benchmarks.
    /// Runs on the caller's thread.
    pub fn decode(&self, bytes: &[u8]) -> Result<(ImageInfo, Frame), Error> {
        self.decode_for_shrink(bytes, 1.0)
    }

    /// [`Engine::decode`] ahead of a first step that shrinks the image `shrink` times (a
    /// pipeline works this out itself): the decoder may leave out detail that cannot survive
    /// the shrink, so it is faster and differs slightly from a full decode. A JPEG shrunk more
    /// than three times comes back at 1/2 scale, more than eight at 1/4, more than twenty-four
    /// at 1/8 (each side rounded up); other frames keep the stored size. A shrink below 1 (or NaN) counts as 1.
    pub fn decode_for_shrink(
        &self,
        bytes: &[u8],
        shrink: f64,
    ) -> Result<(ImageInfo, Frame), Error> {
        let shrink = shrink.max(1.0); // NaN too: max returns the other operand
        guarded(|| {
            let info = self.probe(bytes)?;
            Ok((
                info.clone(),
                codec::decode(bytes, &info, shrink, false)?.frame,
            ))
        })
    }

    /// The encode stage alone, on the caller's thread (no colour profile is attached).
    pub fn encode(
        &self,
        frame: Frame,
        output: &OutputSpec,
    ) -> Result<(OutputFormat, Vec<u8>), Error> {
        guarded(|| {
            output_policy::encode(frame, output, None)
                .map(|encoded| (encoded.format, encoded.bytes))
        })
    }

    fn enqueue(
        &self,
        bytes: Vec<u8>,
        pipeline: Pipeline,
        wait_for_room: bool,
    ) -> Result<JobHandle, Error> {
        let started = Instant::now();
        let (info, plan) = guarded(|| {
            let info = self.probe(&bytes)?;
            let plan = pipeline.plan(&info, &self.inner.config.limits)?;
            Ok((info, plan))
        })
        .inspect_err(|_| self.inner.stats.failed(None))?;
        let probe_time = started.elapsed();
        let memory = memory::job_peak_bytes(bytes.len(), &info, &plan);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let completion = Completion::new();
        let stats = Arc::clone(&self.inner.stats);
        let backends = Arc::clone(&self.inner.backends);
        let limits = self.inner.config.limits;
        let (done, abandoned) = (Arc::clone(&completion), Arc::clone(&completion));
        let work = move |queue_wait: Duration| {
            let result = guarded(|| execute(&bytes, &pipeline, info, &plan, &backends, &limits))
                .map(|mut output| {
                    output.timings.queue = queue_wait;
                    output.timings.probe = probe_time;
                    output
                });
            match &result {
                Ok(output) => {
                    let pixels = u64::from(output.input.width) * u64::from(output.input.height);
                    stats.succeeded(&output.timings, pixels);
                }
                Err(_) => stats.failed(Some(queue_wait)),
            }
            // The input is no longer needed; free it before the pool releases the reservation.
            drop(bytes);
            Box::new(move || done.complete(result)) as Deliver
        };
        let task = Task {
            id,
            memory,
            work: Box::new(work),
            abandon: Box::new(move |error| abandoned.complete(Err(error))),
        };
        self.inner.pool.submit(task, wait_for_room)?;
        Ok(JobHandle {
            id,
            memory,
            completion,
            engine: Arc::clone(&self.inner),
            delivered: false,
        })
    }
}

/// A queued or running job. Await it, or call [`JobHandle::wait`]; drop it to cancel a job
/// that has not started.
pub struct JobHandle {
    id: u64,
    memory: usize,
    completion: Arc<Completion<Result<Output, Error>>>,
    engine: Arc<Inner>,
    delivered: bool,
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle")
            .field("id", &self.id)
            .field("memory", &self.memory)
            .finish_non_exhaustive()
    }
}

impl JobHandle {
    /// The peak working memory this job reserves against the budget while it runs.
    pub fn memory_estimate(&self) -> usize {
        self.memory
    }

    /// Blocks the calling thread until the job is done.
    pub fn wait(mut self) -> Result<Output, Error> {
        self.delivered = true;
        self.completion.wait()
    }
}

impl std::future::Future for JobHandle {
    type Output = Result<Output, Error>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let poll = self.completion.poll_take(context);
        if poll.is_ready() {
            self.delivered = true;
        }
        poll
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        if !self.delivered {
            self.engine.pool.cancel(self.id);
        }
    }
}

/// Decode, orient, run the ops, encode: the work one job does on a worker.
fn execute(
    bytes: &[u8],
    pipeline: &Pipeline,
    info: ImageInfo,
    plan: &Plan,
    backends: &Backends,
    limits: &Limits,
) -> Result<Output, Error> {
    let mut timings = Timings::default();
    let mut clock = Instant::now();
    let mut lap = |slot: &mut Duration| {
        let now = Instant::now();
        *slot = now - clock;
        clock = now;
    };

    let deadline = limits.job_deadline();
    let decoded = codec::decode(bytes, &info, plan.decode_shrink, pipeline.keep_icc)?;
    lap(&mut timings.decode);
    deadline.check(|| "after decoding".into())?;

    let decoded_size = (decoded.frame.width(), decoded.frame.height());
    let (frame, backend) = if decoded_size == (info.width, info.height) {
        backends.run(decoded.frame, &plan.steps, &plan.sizes, &deadline)?
    } else {
        // Decoded at reduced scale (shrink-on-load): the upright steps work on the smaller frame.
        let sizes = plan.sizes_from(decoded_size)?;
        backends.run(decoded.frame, &plan.steps, &sizes, &deadline)?
    };
    lap(&mut timings.ops);

    let encoded = output_policy::encode(frame, &pipeline.output, decoded.icc_profile.as_deref())?;
    lap(&mut timings.encode);

    Ok(Output {
        bytes: encoded.bytes,
        format: encoded.format,
        width: encoded.width,
        height: encoded.height,
        has_alpha: encoded.has_alpha,
        backend,
        input: info,
        timings,
    })
}

/// Turns a panic inside `work` into [`Error::Internal`], so no input can take a caller down.
fn guarded<T>(work: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Error::Internal(format!(
            "panic while processing: {message}"
        )))
    })
}
