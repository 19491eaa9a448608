//! Criterion benchmarks of the GPU backend against the CPU backend: each operation on the
//! 1280 px photograph (one frame per submission), and one pipeline with 1, 8 and 32 frames
//! per submission. Without a GPU adapter only the CPU side runs.
//!
//!   cargo bench --bench gpu
//!   WGPU_BACKEND=vulkan cargo bench --bench gpu -- batch/

use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use prism_engine::backend::cpu;
use prism_engine::backend::gpu::GpuBackend;
use prism_engine::{BackendChoice, Engine, EngineConfig, Frame, GpuConfig, Pipeline};

const OPS: [&str; 8] = [
    "fit:800x800",
    "fill:512x512",
    "rotate:90",
    "gray",
    "contrast:30",
    "blur:3",
    "sharpen:1",
    "pixelate:8",
];

fn photo() -> Frame {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/photos/dragonfly-1280.jpg");
    let bytes = std::fs::read(path).expect("fixture photo");
    let engine = Engine::new(EngineConfig {
        backend: BackendChoice::Cpu,
        threads: 1,
        ..EngineConfig::default()
    })
    .expect("engine");
    engine.decode(&bytes).expect("decode").1
}

fn sizes(frame: &Frame, pipeline: &Pipeline) -> Vec<(u32, u32)> {
    let mut size = (frame.width(), frame.height());
    pipeline
        .ops
        .iter()
        .map(|op| {
            size = op.output_size(size.0, size.1).expect("valid op");
            size
        })
        .collect()
}

fn gpu(batch: usize) -> Option<GpuBackend> {
    let config = GpuConfig {
        max_batch_frames: batch,
        ..GpuConfig::default()
    };
    GpuBackend::new(&config, true)
        .inspect_err(|reason| eprintln!("GPU side skipped: {reason}"))
        .ok()
}

fn per_op(c: &mut Criterion) {
    let frame = photo();
    let gpu = gpu(1);
    let mut group = c.benchmark_group("op");
    group.throughput(Throughput::Elements(
        u64::from(frame.width()) * u64::from(frame.height()),
    ));
    for text in OPS {
        let pipeline: Pipeline = text.parse().expect("pipeline");
        let sizes = sizes(&frame, &pipeline);
        group.bench_function(BenchmarkId::new("cpu", text), |b| {
            b.iter(|| cpu::run(frame.clone(), &pipeline.ops, &sizes))
        });
        if let Some(gpu) = &gpu {
            group.bench_function(BenchmarkId::new("gpu", text), |b| {
                b.iter(|| gpu.run(&frame, &pipeline.ops, &sizes))
            });
        }
    }
    group.finish();
}

/// Frames per second of one pipeline with `batch` callers feeding one submission each.
fn batches(c: &mut Criterion) {
    let frame = photo();
    let pipeline: Pipeline = "fit:800x800|sharpen:0.5".parse().expect("pipeline");
    let sizes = sizes(&frame, &pipeline);
    let mut group = c.benchmark_group("batch");
    for batch in [1usize, 8, 32] {
        let Some(gpu) = gpu(batch) else { return };
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::new("gpu", batch), |b| {
            b.iter(|| {
                std::thread::scope(|scope| {
                    for _ in 0..batch {
                        scope.spawn(|| gpu.run(&frame, &pipeline.ops, &sizes));
                    }
                })
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = per_op, batches
}
criterion_main!(benches);
