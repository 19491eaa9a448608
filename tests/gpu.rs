//! The GPU backend against the CPU backend (the reference): every operation and filter,
//! every orientation, on frames of awkward sizes with and without alpha, within ±1 per
//! channel. Then the engine with `backend: gpu`: batching, frames too large for one
//! binding, an injected device loss, and a backend that is not compiled in.
//!
//! In CI (`CI=true`) a missing adapter fails these tests; elsewhere they skip with a reason.
//! CI runs them on Mesa's lavapipe (Vulkan) and llvmpipe (GL).

mod common;

use std::sync::OnceLock;

use prism_engine::backend::cpu;
use prism_engine::backend::gpu::GpuBackend;
use prism_engine::ops::{Fit, orientation_steps};
use prism_engine::{
    BackendChoice, BackendUsed, Engine, EngineConfig, Filter, Frame, GpuConfig, Layout, Op,
    Orientation, Pipeline,
};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// One GPU backend for the file (opening a device costs ~100 ms), on `backends`.
fn open(backends: &str) -> Option<GpuBackend> {
    let config = GpuConfig {
        backends: Some(backends.into()),
        ..GpuConfig::default()
    };
    match GpuBackend::new(&config, true) {
        Ok(gpu) => {
            let info = gpu.info();
            eprintln!(
                "GPU: {} ({}, {})",
                info.name, info.backend, info.device_type
            );
            Some(gpu)
        }
        Err(reason) if in_ci() => {
            panic!("CI needs a GPU adapter on {backends} (Mesa's lavapipe/llvmpipe): {reason}")
        }
        Err(reason) => {
            eprintln!("skipping GPU test on {backends}: {reason}");
            None
        }
    }
}

fn vulkan() -> Option<&'static GpuBackend> {
    static GPU: OnceLock<Option<GpuBackend>> = OnceLock::new();
    GPU.get_or_init(|| open(&backend_under_test())).as_ref()
}

/// `WGPU_BACKEND` when set (the real-GPU script sets nothing: all backends), else Vulkan.
fn backend_under_test() -> String {
    std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "vulkan".into())
}

/// A deterministic frame with gradients, edges and (for RGBA) every kind of alpha.
fn pattern(width: u32, height: u32, layout: Layout) -> Frame {
    let bpp = layout.bytes_per_pixel();
    let mut data = Vec::with_capacity(width as usize * height as usize * bpp);
    for y in 0..height {
        for x in 0..width {
            let edge = if (x / 3 + y / 5) % 2 == 0 { 200 } else { 30 };
            let r = ((x * 255) / width.max(1)) as u8;
            let g = ((y * 255) / height.max(1)) as u8;
            let b = (edge + (x * 7 + y * 13) % 40) as u8;
            data.extend_from_slice(&[r, g, b]);
            if bpp == 4 {
                let a = match (x + 2 * y) % 5 {
                    0 => 0,
                    1 => 255,
                    _ => ((x * 31 + y * 17) % 256) as u8,
                };
                data.push(a);
            }
        }
    }
    Frame::new(width, height, layout, data).unwrap()
}

/// Largest per-channel difference and PSNR (dB; infinite when equal).
fn compare(a: &Frame, b: &Frame) -> (u8, f64) {
    assert_eq!(
        (a.width(), a.height(), a.layout()),
        (b.width(), b.height(), b.layout())
    );
    let mut max = 0u8;
    let mut squared = 0f64;
    for (&x, &y) in a.data().iter().zip(b.data()) {
        let d = x.abs_diff(y);
        max = max.max(d);
        squared += f64::from(d).powi(2);
    }
    let mse = squared / a.data().len() as f64;
    (max, 10.0 * (255f64.powi(2) / mse).log10())
}

fn sizes_of(frame: &Frame, ops: &[Op]) -> Vec<(u32, u32)> {
    let mut size = (frame.width(), frame.height());
    ops.iter()
        .map(|op| {
            size = op.output_size(size.0, size.1).unwrap();
            size
        })
        .collect()
}

/// Runs the steps that turn `orientation` upright, then `ops`, on both backends and checks
/// the bound; returns the worst difference.
fn check(gpu: &GpuBackend, frame: &Frame, orientation: Orientation, ops: &[Op]) -> (u8, f64) {
    let ops = [orientation_steps(orientation), ops.to_vec()].concat();
    let sizes = sizes_of(frame, &ops);
    let expected = cpu::run(frame.clone(), &ops, &sizes).unwrap();
    let got = gpu
        .run(frame, &ops, &sizes)
        .unwrap_or_else(|e| panic!("{ops:?} on {}x{}: {e:?}", frame.width(), frame.height()));
    let (max, psnr) = compare(&expected, &got);
    assert!(
        max <= 1,
        "{ops:?} {orientation:?} on {}x{} {:?}: max difference {max}, PSNR {psnr:.1} dB",
        frame.width(),
        frame.height(),
        frame.layout()
    );
    (max, psnr)
}

const SIZES: [(u32, u32); 7] = [
    (1, 1),
    (7, 5),
    (64, 48),
    (33, 17),
    (301, 2),
    (2, 301),
    (1, 9),
];

/// Every operation's own test cases (`Operation::test_cases`), from the registry.
fn every_op(width: u32, height: u32) -> Vec<Op> {
    prism_engine::ops::REGISTRY
        .iter()
        .flat_map(|entry| (entry.test_cases)((width, height)))
        .collect()
}

#[test]
fn every_operation_and_filter_matches_the_cpu_within_one() {
    let Some(gpu) = vulkan() else { return };
    let mut worst = (0u8, f64::INFINITY);
    let mut checked = 0;
    for (width, height) in SIZES {
        for layout in [Layout::Rgb8, Layout::Rgba8] {
            let frame = pattern(width, height, layout);
            for op in every_op(width, height) {
                let (max, psnr) = check(gpu, &frame, Orientation::Normal, &[op]);
                worst = (worst.0.max(max), worst.1.min(psnr));
                checked += 1;
            }
        }
    }
    eprintln!(
        "{checked} op/size/layout cases: max difference {}, lowest PSNR {:.1} dB",
        worst.0, worst.1
    );
}

#[test]
fn every_orientation_and_a_whole_pipeline_in_one_upload() {
    let Some(gpu) = vulkan() else { return };
    for layout in [Layout::Rgb8, Layout::Rgba8] {
        let frame = pattern(37, 23, layout);
        for exif in 1..=8 {
            let orientation = Orientation::from_exif(exif).unwrap();
            check(gpu, &frame, orientation, &[]);
            let pipeline: Pipeline = "fill:20x12|sharpen:0.5|saturation:20|rotate:90|blur:0.8|png"
                .parse()
                .unwrap();
            check(gpu, &frame, orientation, &pipeline.ops);
        }
    }
}

/// Upload, pixel and readback buffers are pooled: once a frame size has been seen, more
/// frames of it allocate nothing, and every phase of the stage's time is accounted for.
#[test]
fn the_steady_state_allocates_no_buffers() {
    let Some(gpu) = open(&backend_under_test()) else {
        return;
    };
    let pipeline: Pipeline = "fit:40x40|sharpen:0.5".parse().unwrap();
    for layout in [Layout::Rgb8, Layout::Rgba8] {
        let frame = pattern(97, 61, layout);
        let sizes = sizes_of(&frame, &pipeline.ops);
        let run = || gpu.run(&frame, &pipeline.ops, &sizes).unwrap();
        run();
        run();
        let warm = gpu.stats();
        for _ in 0..5 {
            run();
        }
        let stats = gpu.stats();
        assert_eq!(
            stats.buffers_created, warm.buffers_created,
            "{layout:?}: buffers created after warming up"
        );
        let times = stats.times.since(&warm.times);
        assert!(times.pack_ns > 0 && times.submit_ns > 0 && times.wait_ns > 0);
        assert!(times.readback_ns > 0 && times.host_ns() > times.pack_ns);
    }
}

#[test]
fn a_real_photograph_through_a_typical_pipeline() {
    let Some(gpu) = vulkan() else { return };
    let engine = Engine::new(EngineConfig {
        backend: BackendChoice::Cpu,
        ..EngineConfig::default()
    })
    .unwrap();
    let (info, frame) = engine
        .decode(&common::read("photos/dragonfly-1280.jpg"))
        .unwrap();
    for text in [
        "fit:800x800|sharpen:0.5",
        "fit:333x333:mitchell|gray",
        "fill:512x512:catmull|contrast:20",
        "scale:1.7:bilinear",
        "fit:100x100:nearest|pixelate:7",
    ] {
        let pipeline: Pipeline = text.parse().unwrap();
        let (_, psnr) = check(gpu, &frame, info.orientation, &pipeline.ops);
        eprintln!("{text}: PSNR {psnr:.1} dB");
    }
}

fn gpu_engine(gpu: GpuConfig) -> Option<Engine> {
    let engine = Engine::new(EngineConfig {
        backend: BackendChoice::Gpu,
        gpu,
        threads: 4,
        ..EngineConfig::default()
    })
    .unwrap();
    let status = engine.backend_status();
    match status.gpu_unavailable {
        None => Some(engine),
        Some(reason) if in_ci() => panic!("CI needs a GPU adapter: {reason}"),
        Some(reason) => {
            eprintln!("skipping: {reason}");
            None
        }
    }
}

fn cpu_engine() -> Engine {
    Engine::new(EngineConfig {
        backend: BackendChoice::Cpu,
        ..EngineConfig::default()
    })
    .unwrap()
}

fn backend_config() -> GpuConfig {
    GpuConfig {
        backends: Some(backend_under_test()),
        ..GpuConfig::default()
    }
}

#[test]
fn the_engine_batches_jobs_from_many_callers() {
    let Some(engine) = gpu_engine(GpuConfig {
        max_batch_frames: 8,
        batch_window_micros: 20_000,
        ..backend_config()
    }) else {
        return;
    };
    let photo = common::read("photos/dragonfly-1280.jpg");
    let pipeline: Pipeline = "fit:320x320|sharpen:0.5|png".parse().unwrap();
    let outputs = engine.process_batch(vec![photo.clone(); 16], &pipeline);
    let reference = cpu_engine().process(&photo, &pipeline).unwrap();
    let expected = common::decode_png(&reference.bytes);
    for output in outputs {
        let output = output.unwrap();
        assert_eq!(output.backend, BackendUsed::Gpu);
        let got = common::decode_png(&output.bytes);
        assert!(common::psnr(&expected, &got) > 45.0);
    }
    let stats = engine.backend_status().gpu_stats.unwrap();
    assert_eq!(stats.frames, 16);
    assert!(
        stats.batches < 16,
        "16 jobs from 4 workers went in {} batches",
        stats.batches
    );
    eprintln!("16 jobs in {} batches", stats.batches);
}

#[test]
fn frames_above_the_binding_limit_run_on_the_cpu() {
    let Some(gpu) = vulkan() else { return };
    // 5800 x 5800 RGBA is 134.6 MB, above the 128 MiB storage-binding cap.
    let limit = gpu.info().max_binding_bytes;
    if limit > 512 << 20 {
        // A real GPU's 2 GiB binding: the frame would exceed the engine's pixel limit first.
        eprintln!(
            "binding limit {} MiB: not exercised on this adapter",
            limit >> 20
        );
        return;
    }
    let side = ((limit / 4) as f64).sqrt() as u32 + 8;
    let frame = Frame::new(
        side,
        side,
        Layout::Rgba8,
        vec![128; side as usize * side as usize * 4],
    )
    .unwrap();
    let ops = [Op::Fit(Fit {
        width: 64,
        height: 64,
        filter: Filter::Lanczos3,
    })];
    let sizes = sizes_of(&frame, &ops);
    let refused = gpu.run(&frame, &ops, &sizes);
    assert_eq!(
        refused.unwrap_err(),
        prism_engine::backend::gpu::NotOnGpu::TooLarge
    );
    assert_eq!(gpu.stats().too_large, 1);

    // Through the engine the same frame completes on the CPU.
    let Some(engine) = gpu_engine(backend_config()) else {
        return;
    };
    let png = encode_png(&frame);
    let output = engine
        .process(&png, &"fit:64x64|png".parse().unwrap())
        .unwrap();
    assert_eq!(
        (output.width, output.height, output.backend),
        (64, 64, BackendUsed::Cpu)
    );
}

fn encode_png(frame: &Frame) -> Vec<u8> {
    let engine = cpu_engine();
    let spec = "png".parse::<Pipeline>().unwrap().output;
    engine.encode(frame.clone(), &spec).unwrap().1
}

#[test]
fn an_injected_device_loss_loses_no_job() {
    let Some(engine) = gpu_engine(GpuConfig {
        failures_before_disable: 2,
        reprobe_after_millis: 0,
        ..backend_config()
    }) else {
        return;
    };
    let photo = common::read("photos/dragonfly-1280.jpg");
    let pipeline: Pipeline = "fit:200x200|gray|png".parse().unwrap();
    let expected = cpu_engine().process(&photo, &pipeline).unwrap();

    assert!(engine.inject_gpu_device_loss());
    let outputs = engine.process_batch(vec![photo.clone(); 12], &pipeline);
    let mut on_cpu = 0;
    for output in outputs {
        let output = output.expect("every job completes");
        if output.backend == BackendUsed::Cpu {
            // The CPU rerun gives exactly the CPU backend's bytes.
            assert_eq!(output.bytes, expected.bytes);
            on_cpu += 1;
        }
    }
    let stats = engine.backend_status().gpu_stats.unwrap();
    eprintln!("after the injected loss: {stats:?}");
    assert!(on_cpu >= 1 && stats.fallbacks >= 1, "{stats:?}");
    assert!(stats.last_error.is_some());

    // The device is re-probed and the GPU serves again.
    let again = engine.process(&photo, &pipeline).unwrap();
    assert_eq!(again.backend, BackendUsed::Gpu);
    assert!(engine.backend_status().gpu_stats.unwrap().reprobes >= 1);
}

#[test]
fn a_backend_that_is_not_compiled_in_means_the_cpu() {
    // Metal and DX12 are not built on Linux: no adapter, one reason, every job on the CPU.
    let engine = Engine::new(EngineConfig {
        backend: BackendChoice::Gpu,
        gpu: GpuConfig {
            backends: Some("metal,dx12".into()),
            ..GpuConfig::default()
        },
        ..EngineConfig::default()
    })
    .unwrap();
    let status = engine.backend_status();
    assert!(status.gpu.is_none());
    assert!(status.gpu_unavailable.is_some(), "{status:?}");
    let output = engine
        .process(
            &common::read("photos/dragonfly-1280.jpg"),
            &"fit:100x100".parse().unwrap(),
        )
        .unwrap();
    assert_eq!(output.backend, BackendUsed::Cpu);
}

#[test]
fn auto_never_picks_a_software_adapter() {
    let engine = Engine::new(EngineConfig {
        backend: BackendChoice::Auto,
        gpu: backend_config(),
        ..EngineConfig::default()
    })
    .unwrap();
    let status = engine.backend_status();
    if let Some(info) = &status.gpu {
        assert!(!info.software, "auto opened {info:?}");
    } else if in_ci() {
        // CI has only lavapipe: auto must have refused it for being software.
        let reason = status.gpu_unavailable.unwrap_or_default();
        assert!(reason.contains("software"), "{reason}");
    }
}

#[test]
fn the_gl_backend_matches_too() {
    if std::env::var("WGPU_BACKEND").is_ok() {
        return; // the real-GPU script picks one backend
    }
    let Some(gpu) = open("gl") else { return };
    let frame = pattern(33, 17, Layout::Rgba8);
    // Rotated first, so the ops see a 17x33 frame.
    for op in every_op(17, 33) {
        check(&gpu, &frame, Orientation::Rotate90, &[op]);
    }
}
