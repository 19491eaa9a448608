//! The one place wgpu is called: finding an adapter, opening the device with the adapter's
//! own limits, compiling the kernels, and running a batch of frame plans as one submission
//! (copies from the workers' staging buffers, every pass, copies into readback buffers),
//! with every buffer taken from and returned to a pool. Every wgpu failure comes back as a
//! [`GpuFault`]; the default handler, which panics, is replaced.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::clock::{Phase, PhaseClock};
use super::error_scope::catching_errors;
use super::passes::{self, Aux, FramePlan, Kernel, Params};
use super::pool::{BufferPool, Mapping};
use super::transfer::{Readback, Upload, copy_size};
use super::{GpuFault, GpuInfo};

/// Parses a `WGPU_BACKEND`-style list ("vulkan", "gl", "vulkan,gl", "metal", ...).
pub(super) fn backends_from_list(list: &str) -> wgpu::Backends {
    wgpu::Backends::from_comma_list(list)
}

/// Whether a hardware adapter may be reachable. On Linux each one sits behind a device node:
/// DRM render or card nodes (Mesa, AMD, Intel), /dev/nvidia* (NVIDIA's driver), /dev/dxg
/// (WSL), /dev/mali* and /dev/kgsl* (vendor drivers on ARM boards). Without any, only
/// software adapters exist, and enumerating adapters would load every installed Vulkan and GL
/// driver to find them: with Mesa's llvmpipe that is LLVM, 74 MB resident and 30 ms of CPU at
/// each process start. Elsewhere it cannot tell, and says yes.
fn hardware_may_be_present() -> bool {
    #[cfg(target_os = "linux")]
    {
        let has_node = |dir: &str, prefixes: &[&str]| {
            std::fs::read_dir(dir).is_ok_and(|entries| {
                entries.flatten().any(|entry| {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    prefixes.iter().any(|prefix| name.starts_with(prefix))
                })
            })
        };
        has_node("/dev/dri", &["renderD", "card"])
            || has_node("/dev", &["nvidia", "dxg", "mali", "kgsl"])
    }
    #[cfg(not(target_os = "linux"))]
    true
}

/// How long a batch may take before the device is treated as hung.
const BATCH_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) struct Device {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: GpuInfo,
    layout: wgpu::BindGroupLayout,
    pipelines: HashMap<Kernel, wgpu::ComputePipeline>,
    /// Bound as `aux` by passes that read none.
    empty_aux: wgpu::Buffer,
    /// Bytes between the passes' uniform blocks: the block rounded up to the alignment.
    uniform_stride: u64,
    storage_align: u64,
    /// Staging buffers the workers write frames into.
    uploads: Arc<BufferPool>,
    /// The passes' ping-pong buffers, on the device.
    pixels: BufferPool,
    /// Where results are copied for the workers to read.
    readbacks: Arc<BufferPool>,
    lost: Arc<AtomicBool>,
    uncaptured: Arc<Mutex<Option<String>>>,
}

/// Finds an adapter among `backends`; software adapters only when `allow_software`. Each of
/// the device's buffer pools keeps up to `pool_bytes` of idle buffers and counts the buffers
/// it creates in `created`.
pub(super) fn open(
    backends: wgpu::Backends,
    allow_software: bool,
    pool_bytes: u64,
    created: &Arc<AtomicU64>,
) -> Result<Device, String> {
    if !allow_software && !hardware_may_be_present() {
        return Err(format!(
            "no GPU device node under /dev, so only a software adapter could be found; it is \
             slower than the CPU backend (not looked for: backends {backends:?})"
        ));
    }
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
    descriptor.backends = backends;
    let instance = wgpu::Instance::new(descriptor);
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    if adapters.is_empty() {
        return Err(format!("no GPU adapter found (backends: {backends:?})"));
    }
    // Prefer real GPUs, discrete first.
    let rank = |adapter: &wgpu::Adapter| match adapter.get_info().device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let adapter = adapters
        .into_iter()
        .min_by_key(rank)
        .ok_or_else(|| "no GPU adapter found".to_string())?;
    let adapter_info = adapter.get_info();
    let software = adapter_info.device_type == wgpu::DeviceType::Cpu;
    if software && !allow_software {
        return Err(format!(
            "only a software adapter was found ({}, {:?}); it is slower than the CPU backend",
            adapter_info.name, adapter_info.backend
        ));
    }
    let limits = adapter.limits();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("prism"),
        required_features: wgpu::Features::empty(),
        required_limits: limits.clone(),
        experimental_features: wgpu::ExperimentalFeatures::disabled(),
        memory_hints: wgpu::MemoryHints::Performance,
        trace: wgpu::Trace::Off,
    }))
    .map_err(|e| format!("the adapter {} refused a device: {e}", adapter_info.name))?;

    let lost = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&lost);
    device.set_device_lost_callback(move |_, _| flag.store(true, Ordering::SeqCst));
    let uncaptured = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&uncaptured);
    device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
        if let Ok(mut slot) = slot.lock() {
            slot.get_or_insert_with(|| error.to_string());
        }
    }));

    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let (layout, pipelines) = compile(&device);
    if let Some(error) = pollster::block_on(scope.pop()) {
        return Err(format!("the kernels did not compile: {error}"));
    }
    let empty_aux = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("empty aux"),
        size: 16,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let info = GpuInfo {
        name: adapter_info.name.clone(),
        backend: format!("{:?}", adapter_info.backend),
        device_type: format!("{:?}", adapter_info.device_type),
        driver: adapter_info.driver.clone(),
        driver_info: adapter_info.driver_info.clone(),
        software,
        max_binding_bytes: limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size),
        max_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
    };
    use wgpu::BufferUsages as Usage;
    let pool = |label, usage, mapping| {
        BufferPool::new(&device, label, usage, mapping, pool_bytes, created)
    };
    Ok(Device {
        uploads: Arc::new(pool(
            "upload",
            Usage::MAP_WRITE | Usage::COPY_SRC,
            Mapping::Write,
        )),
        pixels: pool(
            "pixels",
            Usage::STORAGE | Usage::COPY_DST | Usage::COPY_SRC,
            Mapping::Unmapped,
        ),
        readbacks: Arc::new(pool(
            "readback",
            Usage::MAP_READ | Usage::COPY_DST,
            Mapping::Unmapped,
        )),
        device,
        queue,
        info,
        layout,
        pipelines,
        empty_aux,
        uniform_stride: (Params::BYTES as u64)
            .next_multiple_of(u64::from(limits.min_uniform_buffer_offset_alignment)),
        storage_align: u64::from(limits.min_storage_buffer_offset_alignment),
        lost,
        uncaptured,
    })
}

fn compile(
    device: &wgpu::Device,
) -> (
    wgpu::BindGroupLayout,
    HashMap<Kernel, wgpu::ComputePipeline>,
) {
    let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("pass"),
        entries: &[
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: wgpu::BufferSize::new(Params::BYTES as u64),
                },
                count: None,
            },
            storage(1, true),
            storage(2, false),
            storage(3, true),
        ],
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("pass"),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let mut modules: HashMap<&'static str, wgpu::ShaderModule> = HashMap::new();
    let mut pipelines = HashMap::new();
    for kernel in passes::all_kernels() {
        let module = modules.entry(kernel.shader.name).or_insert_with(|| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(kernel.shader.name),
                source: wgpu::ShaderSource::Wgsl(kernel.wgsl().into()),
            })
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.entry),
            layout: Some(&pipeline_layout),
            module,
            entry_point: Some(kernel.entry),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            cache: None,
        });
        pipelines.insert(kernel, pipeline);
    }
    (layout, pipelines)
}

/// One frame of a batch: its pixels in staging memory and what to do with them.
pub(super) struct FrameWork {
    pub upload: Upload,
    pub plan: FramePlan,
}

/// A frame on the GPU: the buffers it holds until the batch is done.
struct FrameInFlight {
    upload: Upload,
    pixels: Vec<wgpu::Buffer>,
    readback: wgpu::Buffer,
    /// The result's bytes in `readback`.
    output_bytes: u64,
}

/// A submitted batch whose readbacks are not collected yet.
pub(super) struct InFlight {
    frames: Vec<FrameInFlight>,
    submission: wgpu::SubmissionIndex,
    /// The batch's parameters and weights, alive until the GPU is done with them.
    _batch_buffers: [wgpu::Buffer; 2],
}

const WORKGROUP: u32 = 16;

impl Device {
    pub fn info(&self) -> &GpuInfo {
        &self.info
    }

    /// The pool the workers write their frames into for this device.
    pub fn uploads(&self) -> &Arc<BufferPool> {
        &self.uploads
    }

    /// Records every frame's upload, passes and readback copy into one command buffer and
    /// submits it. Validation and out-of-memory errors are caught by error scopes.
    pub fn submit(&self, frames: Vec<FrameWork>, clock: &PhaseClock) -> Result<InFlight, GpuFault> {
        self.check_health()?;
        let started = Instant::now();
        let mut uploading = Duration::ZERO;
        let (recorded, error) =
            catching_errors(&self.device, || self.record(frames, &mut uploading));
        clock.add(Phase::Upload, uploading);
        clock.add(Phase::Submit, started.elapsed().saturating_sub(uploading));
        if let Some(error) = error {
            return Err(GpuFault(format!("GPU error: {error}")));
        }
        let in_flight = recorded?;
        self.check_health()?;
        Ok(in_flight)
    }

    /// Adds the time spent writing the batch's parameters and weights to `uploading`.
    fn record(
        &self,
        frames: Vec<FrameWork>,
        uploading: &mut Duration,
    ) -> Result<InFlight, GpuFault> {
        let pass_count: usize = frames.iter().map(|f| f.plan.passes.len()).sum();
        // All uniforms of the batch in one buffer, all uploaded words in another.
        let mut uniforms = vec![0u8; pass_count.max(1) * self.uniform_stride as usize];
        let mut aux_words: Vec<u32> = Vec::new();
        let mut aux_ranges: Vec<Option<(u64, u64)>> = Vec::with_capacity(pass_count);
        let words_per_align = (self.storage_align / 4).max(1) as usize;
        for (index, pass) in frames.iter().flat_map(|f| &f.plan.passes).enumerate() {
            let at = index * self.uniform_stride as usize;
            uniforms[at..at + Params::BYTES].copy_from_slice(&pass.params.to_bytes());
            aux_ranges.push(match &pass.aux {
                Aux::Words(words) if !words.is_empty() => {
                    let start = aux_words.len().div_ceil(words_per_align) * words_per_align;
                    aux_words.resize(start, 0);
                    aux_words.extend_from_slice(words);
                    Some((start as u64 * 4, words.len() as u64 * 4))
                }
                _ => None,
            });
        }
        // Written through the queue rather than mapped at creation: on a lost device
        // mapping panics inside wgpu, a queue write only reports an error.
        let writing = Instant::now();
        let uniform_buffer =
            self.written_through_queue("params", &uniforms, wgpu::BufferUsages::UNIFORM);
        aux_words.resize(aux_words.len().max(4), 0);
        let aux_bytes: Vec<u8> = aux_words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let aux_buffer = self.written_through_queue("aux", &aux_bytes, wgpu::BufferUsages::STORAGE);
        *uploading += writing.elapsed();

        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("batch"),
            });
        let mut in_flight = Vec::with_capacity(frames.len());
        let mut pass_index = 0;
        for FrameWork { upload, plan } in frames {
            let bytes = (plan.buffer_pixels * 4).max(4);
            if bytes > self.info.max_binding_bytes || upload.size() > bytes {
                return Err(GpuFault(format!(
                    "a {bytes}-byte buffer is above the binding limit or below the upload"
                )));
            }
            let buffers: Vec<wgpu::Buffer> =
                (0..plan.buffers).map(|_| self.pixels.take(bytes)).collect();
            // Pooled buffers can be longer than the frame needs; bind only its part.
            let binding = |buffer| wgpu::BufferBinding {
                buffer,
                offset: 0,
                size: wgpu::BufferSize::new(bytes),
            };
            encoder.copy_buffer_to_buffer(upload.buffer(), 0, &buffers[0], 0, upload.size());
            {
                let mut compute = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("frame"),
                    timestamp_writes: None,
                });
                for pass in &plan.passes {
                    let aux = match (&pass.aux, aux_ranges[pass_index]) {
                        (Aux::Buffer(index), _) => binding(&buffers[*index]),
                        (_, Some((offset, size))) => wgpu::BufferBinding {
                            buffer: &aux_buffer,
                            offset,
                            size: wgpu::BufferSize::new(size),
                        },
                        (_, None) => self.empty_aux.as_entire_buffer_binding(),
                    };
                    let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: None,
                        layout: &self.layout,
                        entries: &[
                            wgpu::BindGroupEntry {
                                binding: 0,
                                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                    buffer: &uniform_buffer,
                                    offset: pass_index as u64 * self.uniform_stride,
                                    size: wgpu::BufferSize::new(Params::BYTES as u64),
                                }),
                            },
                            wgpu::BindGroupEntry {
                                binding: 1,
                                resource: wgpu::BindingResource::Buffer(binding(
                                    &buffers[pass.src],
                                )),
                            },
                            wgpu::BindGroupEntry {
                                binding: 2,
                                resource: wgpu::BindingResource::Buffer(binding(
                                    &buffers[pass.dst],
                                )),
                            },
                            wgpu::BindGroupEntry {
                                binding: 3,
                                resource: wgpu::BindingResource::Buffer(aux),
                            },
                        ],
                    });
                    let Some(pipeline) = self.pipelines.get(&pass.kernel) else {
                        // all_kernels() comes from the operations' test cases; a plan
                        // branch none of them reaches is a bug, and the frame goes to the CPU.
                        return Err(GpuFault(format!(
                            "kernel {}::{} was not compiled",
                            pass.kernel.shader.name, pass.kernel.entry
                        )));
                    };
                    compute.set_pipeline(pipeline);
                    compute.set_bind_group(0, &bind_group, &[]);
                    let groups = |n: u32| n.div_ceil(WORKGROUP);
                    compute.dispatch_workgroups(groups(pass.grid.0), groups(pass.grid.1), 1);
                    pass_index += 1;
                }
            }
            let copied = copy_size(plan.output_bytes);
            let readback = self.readbacks.take(copied);
            encoder.copy_buffer_to_buffer(&buffers[plan.result], 0, &readback, 0, copied);
            in_flight.push(FrameInFlight {
                upload,
                pixels: buffers,
                readback,
                output_bytes: plan.output_bytes,
            });
        }
        let submission = self.queue.submit([encoder.finish()]);
        Ok(InFlight {
            frames: in_flight,
            submission,
            _batch_buffers: [uniform_buffer, aux_buffer],
        })
    }

    fn written_through_queue(
        &self,
        label: &str,
        bytes: &[u8],
        usage: wgpu::BufferUsages,
    ) -> wgpu::Buffer {
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.len() as u64,
            usage: usage | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&buffer, 0, bytes);
        buffer
    }

    /// Waits for a submitted batch and maps every frame's result for its worker to copy
    /// out; the batch's staging and pixel buffers go back to their pools.
    pub fn finish(
        &self,
        in_flight: InFlight,
        clock: &PhaseClock,
    ) -> Result<Vec<Readback>, GpuFault> {
        let mapped: Arc<Mutex<Vec<Result<(), String>>>> = Arc::new(Mutex::new(Vec::new()));
        for frame in &in_flight.frames {
            let mapped = Arc::clone(&mapped);
            let range = 0..copy_size(frame.output_bytes);
            frame
                .readback
                .map_async(wgpu::MapMode::Read, range, move |result| {
                    if let Ok(mut mapped) = mapped.lock() {
                        mapped.push(result.map_err(|e| e.to_string()));
                    }
                });
        }
        clock
            .time(Phase::Wait, || {
                self.device.poll(wgpu::PollType::Wait {
                    submission_index: Some(in_flight.submission.clone()),
                    timeout: Some(BATCH_TIMEOUT),
                })
            })
            .map_err(|e| GpuFault(format!("waiting for the GPU: {e}")))?;
        self.check_health()?;
        let results = mapped
            .lock()
            .map_err(|_| GpuFault("readback state poisoned".into()))?
            .clone();
        if results.len() != in_flight.frames.len() {
            return Err(GpuFault("a readback never completed".into()));
        }
        if let Some(Err(error)) = results.into_iter().find(Result::is_err) {
            return Err(GpuFault(format!("reading results back: {error}")));
        }
        let readbacks = in_flight
            .frames
            .into_iter()
            .map(|frame| {
                frame.upload.recycle();
                for buffer in frame.pixels {
                    self.pixels.give(buffer);
                }
                let len = usize::try_from(frame.output_bytes).unwrap_or(usize::MAX);
                Readback::mapped(frame.readback, len, &self.readbacks)
            })
            .collect();
        // Completes the staging buffers' new mappings, so waiting workers can reuse them.
        self.device
            .poll(wgpu::PollType::Poll)
            .map_err(|e| GpuFault(format!("polling the GPU: {e}")))?;
        Ok(readbacks)
    }

    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Device loss and errors outside any scope.
    fn check_health(&self) -> Result<(), GpuFault> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(GpuFault("the GPU device was lost".into()));
        }
        if let Some(error) = self.uncaptured.lock().ok().and_then(|mut slot| slot.take()) {
            return Err(GpuFault(format!("GPU error: {error}")));
        }
        Ok(())
    }

    /// Destroys the device, as a driver reset would (the test-only failure hook).
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn destroy(&self) {
        self.device.destroy();
    }
}
