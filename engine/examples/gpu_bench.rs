//! Megapixels per second of the ops stage and of whole pipelines, CPU backend versus GPU
//! backend with batches of 1, 8 and 32 frames, on a 12 MP photograph and a 1280 px one.
//! Run by `scripts/gpu-bench.sh`; prints one table line per measurement, plus the
//! single-core CPU and per-frame GPU costs the `auto` cost model is built from.
//!
//! `PRISM_BENCH_SECONDS` (default 2) is the time spent on each measurement;
//! `PRISM_BENCH_ONLY` keeps the lines whose image label or pipeline contain it
//! (`PRISM_BENCH_ONLY=12mp`), for a software adapter where every line takes long.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prism_engine::backend::cpu;
use prism_engine::backend::gpu::GpuBackend;
use prism_engine::{
    BackendChoice, Engine, EngineConfig, Frame, GpuConfig, GpuStageTimes, Op, Pipeline,
};

const BATCHES: [usize; 3] = [1, 8, 32];

fn seconds() -> Duration {
    let secs: f64 = std::env::var("PRISM_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

/// Whether `PRISM_BENCH_ONLY` (when set) keeps the line of `label` and `pipeline`.
fn selected(label: &str, pipeline: &str) -> bool {
    std::env::var("PRISM_BENCH_ONLY").map_or(true, |only| {
        label.contains(&only) || pipeline.contains(&only)
    })
}

fn sizes(frame: &Frame, ops: &[Op]) -> Vec<(u32, u32)> {
    let mut size = (frame.width(), frame.height());
    ops.iter()
        .map(|op| {
            size = op.output_size(size.0, size.1).expect("valid op");
            size
        })
        .collect()
}

/// Runs `work` on `threads` threads for the measurement time; returns calls per second.
fn rate(threads: usize, work: impl Fn() + Sync) -> f64 {
    let done = AtomicU64::new(0);
    let duration = seconds();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while started.elapsed() < duration {
                    work();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// The stage's time per frame, phase by phase, in ms.
fn split(times: &GpuStageTimes, frames: u64) -> String {
    let ms = |ns: u64| ns as f64 / frames as f64 / 1e6;
    format!(
        "host ms/frame {:.2} = pack {:.2} + upload {:.2} + submit {:.2} + readback {:.2} + unpack {:.2}; waiting for the GPU {:.2}",
        ms(times.host_ns()),
        ms(times.pack_ns),
        ms(times.upload_ns),
        ms(times.submit_ns),
        ms(times.readback_ns),
        ms(times.unpack_ns),
        ms(times.wait_ns),
    )
}

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/photos/");
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let cpu_engine = Engine::new(EngineConfig {
        backend: BackendChoice::Cpu,
        ..EngineConfig::default()
    })
    .expect("engine");
    let gpus: Vec<(usize, GpuBackend)> = BATCHES
        .iter()
        .filter_map(|&batch| {
            let config = GpuConfig {
                max_batch_frames: batch,
                ..GpuConfig::default()
            };
            match GpuBackend::new(&config, true) {
                Ok(gpu) => Some((batch, gpu)),
                Err(reason) => {
                    println!("no GPU: {reason}");
                    None
                }
            }
        })
        .collect();
    if let Some((_, gpu)) = gpus.first() {
        let info = gpu.info();
        println!(
            "GPU: {} | {} | {} | driver {} {} | max binding {} MiB",
            info.name,
            info.backend,
            info.device_type,
            info.driver,
            info.driver_info,
            info.max_binding_bytes >> 20
        );
    }
    println!("CPU threads: {cores}");
    println!(
        "{:<10} {:<44} {:>10} {:>10} {:>10} {:>10}",
        "image", "ops stage (MP/s of input)", "cpu", "gpu b1", "gpu b8", "gpu b32"
    );
    for (label, file, pipelines) in [
        (
            "12mp",
            "dragonfly-12mp.jpg",
            &[
                "fit:1280x1280",
                "fit:1280x1280|sharpen:0.5",
                "gray",
                "blur:3",
                "sharpen:1",
                "rotate:90",
                "pixelate:16",
            ][..],
        ),
        (
            "1280px",
            "dragonfly-1280.jpg",
            &[
                "fit:800x800",
                "fit:800x800|sharpen:0.5",
                "gray",
                "blur:3",
                "sharpen:1",
            ][..],
        ),
    ] {
        let bytes = std::fs::read(format!("{root}{file}")).expect("fixture photo");
        let (_, frame) = cpu_engine.decode(&bytes).expect("decode");
        let megapixels = frame.megapixels();
        for text in pipelines.iter().filter(|text| selected(label, text)) {
            let pipeline: Pipeline = text.parse().expect("pipeline");
            let ops = &pipeline.ops;
            let sizes = sizes(&frame, ops);
            let cpu_rate = rate(cores, || {
                let _ = cpu::run(frame.clone(), ops, &sizes);
            });
            let single = rate(1, || {
                let _ = cpu::run(frame.clone(), ops, &sizes);
            });
            let mut line = format!("{label:<10} {text:<44} {:>10.1}", cpu_rate * megapixels);
            let mut per_frame = Vec::new();
            let mut splits = Vec::new();
            for (batch, gpu) in &gpus {
                let before = gpu.stats();
                let gpu_rate = rate(*batch, || {
                    let _ = gpu.run(&frame, ops, &sizes);
                });
                let after = gpu.stats();
                line += &format!(" {:>10.1}", gpu_rate * megapixels);
                per_frame.push(1e3 / gpu_rate);
                let frames = after.frames.saturating_sub(before.frames).max(1);
                splits.push((*batch, after.times.since(&before.times), frames));
            }
            println!("{line}");
            for (batch, times, frames) in splits {
                println!("    b{batch:<3} {}", split(&times, frames));
            }
            println!(
                "    cost model: one CPU core {:.2} ns/px ({:.1} ms); GPU ms per frame at b1/b8/b32: {:?}",
                1e9 / single / (megapixels * 1e6),
                1e3 / single,
                per_frame
                    .iter()
                    .map(|ms| (ms * 100.0).round() / 100.0)
                    .collect::<Vec<_>>()
            );
        }
        // Whole pipelines through the engine: decode, ops, encode on the workers.
        let text = "fit:1280x1280|sharpen:0.5|jpeg:85";
        if !selected(label, &format!("whole: {text}")) {
            continue;
        }
        let pipeline: Pipeline = text.parse().expect("pipeline");
        let whole = |engine: &Engine| {
            let engine = Arc::new(engine.clone());
            let jobs = (cores * 4).max(32);
            let started = Instant::now();
            let mut images = 0;
            while started.elapsed() < seconds() {
                for result in engine.process_batch(vec![bytes.clone(); jobs], &pipeline) {
                    result.expect("pipeline output");
                    images += 1;
                }
            }
            images as f64 * megapixels / started.elapsed().as_secs_f64()
        };
        let mut line = format!(
            "{label:<10} {:<44} {:>10.1}",
            format!("whole: {text}"),
            whole(&cpu_engine)
        );
        for &batch in &BATCHES {
            let engine = Engine::new(EngineConfig {
                backend: BackendChoice::Gpu,
                // Enough workers to fill a batch while others decode and encode.
                threads: cores.max(batch),
                gpu: GpuConfig {
                    max_batch_frames: batch,
                    ..GpuConfig::default()
                },
                ..EngineConfig::default()
            })
            .expect("engine");
            if engine.backend_status().gpu.is_none() {
                break;
            }
            line += &format!(" {:>10.1}", whole(&engine));
        }
        println!("{line}");
        // What the workers' decoding alone allows: the ceiling of any whole pipeline.
        let decodes = rate(cores, || {
            let _ = cpu_engine.decode(&bytes);
        });
        println!(
            "{label:<10} {:<44} {:>10.1}",
            "decode alone (the ceiling of whole pipelines)",
            decodes * megapixels
        );
    }
}
