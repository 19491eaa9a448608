//! The engine's worker pool end to end: the three ways in, admission by queue and by
//! memory, cancellation, shutdown and stats.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::read;
use prism_engine::{Engine, EngineConfig, Error, ErrorKind, Pipeline};

fn engine(threads: usize, max_queue: usize, memory_budget_bytes: usize) -> Engine {
    let config = EngineConfig {
        threads,
        max_in_flight: threads,
        max_queue,
        memory_budget_bytes,
        ..EngineConfig::default()
    };
    Engine::new(config).unwrap()
}

fn pipeline(text: &str) -> Pipeline {
    text.parse().unwrap()
}

#[test]
fn batch_results_come_back_in_input_order_one_per_input() {
    let engine = engine(2, 4, 1 << 30);
    let sizes = [(96, 64), (227, 149), (32, 32), (1800, 1200)];
    let inputs = vec![
        read("generated/source.png"),
        read("libjpeg-turbo/testorig.jpg"),
        b"definitely not an image".to_vec(),
        read("pngsuite/basn6a08.png"),
        read("pngsuite/xd0n2c08.png"),
        read("exif-orientation/Landscape_6.jpg"),
    ];
    let results = engine.process_batch(inputs, &pipeline("png"));
    assert_eq!(results.len(), 6);
    let kinds: Vec<Option<ErrorKind>> = results
        .iter()
        .map(|r| r.as_ref().err().map(Error::kind))
        .collect();
    assert_eq!(
        kinds,
        [
            None,
            None,
            Some(ErrorKind::Unsupported),
            None,
            Some(ErrorKind::Malformed),
            None
        ],
        "a bad input fails only itself"
    );
    let got: Vec<(u32, u32)> = results
        .iter()
        .flatten()
        .map(|o| (o.width, o.height))
        .collect();
    assert_eq!(got, sizes);
    let stats = engine.stats();
    assert_eq!((stats.completed, stats.failed), (4, 2));
}

#[test]
fn overloaded_when_full_and_dropping_a_queued_handle_frees_its_slot() {
    let engine = engine(1, 1, 1 << 30);
    // A job slow enough (an exact 31-tap blur of 12 MP) to keep the only worker busy.
    let slow = engine
        .submit(
            read("photos/dragonfly-12mp.jpg"),
            pipeline("blur:5|fit:64|png"),
        )
        .unwrap();
    while engine.stats().running == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let queued = engine
        .submit(read("generated/source.png"), pipeline("png"))
        .unwrap();
    let error = engine
        .submit(read("generated/source.png"), pipeline("png"))
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Overloaded {
                queued: 1,
                running: 1
            }
        ),
        "{error}"
    );
    assert_eq!(engine.stats().refused_overloaded, 1);

    drop(queued);
    assert_eq!(engine.stats().queued, 0, "cancelled job left the queue");
    let replacement = engine
        .submit(read("generated/source.png"), pipeline("png"))
        .unwrap();
    assert_eq!(engine.stats().cancelled, 1);
    drop(slow); // already running: it finishes, its result is discarded
    assert_eq!(replacement.wait().unwrap().width, 96);
}

#[test]
fn memory_budget_holds_under_64_concurrent_large_photos() {
    let photo = read("photos/dragonfly-12mp.jpg");
    let fit = pipeline("fit:320|jpeg");
    // Learn one job's reservation, then allow exactly four at a time on eight threads.
    let per_job = engine(1, 1, 1 << 34)
        .submit(photo.clone(), fit.clone())
        .unwrap()
        .memory_estimate();
    let budget = 4 * per_job + per_job / 2;
    let engine = engine(8, 64, budget);

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (engine, stop) = (engine.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let (mut max_reserved, mut max_running) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                let stats = engine.stats();
                max_reserved = max_reserved.max(stats.reserved_bytes);
                max_running = max_running.max(stats.running);
                std::thread::sleep(Duration::from_micros(200));
            }
            (max_reserved, max_running)
        })
    };
    let handles: Vec<_> = (0..64)
        .map(|_| engine.submit(photo.clone(), fit.clone()).unwrap())
        .collect();
    for handle in handles {
        let output = handle.wait().unwrap();
        assert_eq!((output.width, output.height), (320, 240));
    }
    stop.store(true, Ordering::Relaxed);
    let (max_reserved, max_running) = watcher.join().unwrap();
    assert!(
        max_reserved <= budget,
        "reserved {max_reserved} > budget {budget}"
    );
    assert!(
        max_running <= 4,
        "{max_running} jobs ran at once; the budget fits 4"
    );
    let stats = engine.stats();
    assert_eq!(
        (stats.completed, stats.reserved_bytes, stats.running),
        (64, 0, 0)
    );
}

#[test]
fn a_job_larger_than_the_budget_is_refused_at_once() {
    let engine = engine(1, 4, 64 << 20);
    let error = engine
        .submit(read("photos/dragonfly-12mp.jpg"), pipeline("fit:320"))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Limits, "{error}");
    assert_eq!(engine.stats().refused_too_large, 1);
}

#[test]
fn handles_are_futures_for_any_executor() {
    let engine = engine(2, 8, 1 << 30);
    let futures: Vec<_> = ["fit:10|png", "fit:20|png", "fit:30|png"]
        .iter()
        .map(|text| {
            engine
                .submit(read("generated/source.png"), pipeline(text))
                .unwrap()
        })
        .collect();
    let widths: Vec<u32> = futures
        .into_iter()
        .map(|future| pollster::block_on(future).unwrap().width)
        .collect();
    assert_eq!(widths, [10, 20, 30]);
}

#[test]
fn shutdown_finishes_queued_work_then_refuses() {
    let engine = engine(1, 16, 1 << 30);
    let handles: Vec<_> = (0..6)
        .map(|_| {
            engine
                .submit(
                    read("exif-orientation/Landscape_3.jpg"),
                    pipeline("fit:100|jpeg"),
                )
                .unwrap()
        })
        .collect();
    engine.shutdown();
    for handle in handles {
        assert!(handle.wait().is_ok(), "queued before shutdown, so finished");
    }
    let error = engine
        .submit(read("generated/source.png"), pipeline("png"))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ShuttingDown);
}

#[test]
fn shutdown_with_a_timeout_fails_what_it_could_not_finish() {
    let engine = engine(1, 16, 1 << 30);
    let slow = engine
        .submit(
            read("photos/dragonfly-12mp.jpg"),
            pipeline("blur:5|fit:64|png"),
        )
        .unwrap();
    let queued: Vec<_> = (0..3)
        .map(|_| {
            engine
                .submit(read("generated/source.png"), pipeline("png"))
                .unwrap()
        })
        .collect();
    while engine.stats().running == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let report = engine.shutdown_timeout(Duration::from_millis(10));
    assert_eq!((report.abandoned, report.still_running), (3, 1));
    for handle in queued {
        assert_eq!(handle.wait().unwrap_err().kind(), ErrorKind::ShuttingDown);
    }
    assert!(slow.wait().is_ok(), "the running job still completes");
}

#[test]
fn stats_report_stages_and_throughput() {
    let engine = engine(2, 8, 1 << 30);
    for _ in 0..3 {
        engine
            .process(
                &read("exif-orientation/Landscape_1.jpg"),
                &pipeline("fit:300|jpeg"),
            )
            .unwrap();
    }
    let stats = engine.stats();
    assert_eq!(stats.completed, 3);
    for stage in [stats.decode, stats.ops, stats.encode, stats.queue_wait] {
        assert_eq!(stage.count, 3);
        assert!(stage.p50 <= stage.p95 && stage.p95 <= stage.p99);
    }
    assert!(stats.decode.p50 > Duration::ZERO);
    assert!(stats.megapixels_per_second > 0.0);
    assert_eq!(stats.memory_budget_bytes, 1 << 30);
}
