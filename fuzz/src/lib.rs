//! What the fuzz targets share: one engine with limits small enough that every input runs in
//! milliseconds, and the checks that turn a wrong answer into a crash the fuzzer reports.
//!
//! A panic anywhere (in this process or in a pool worker) aborts through libFuzzer's panic
//! hook, so the engine's own catch-and-report-as-`Internal` cannot hide one; the checks
//! below also fail on `Internal` for the paths where a panic would be caught first.

use std::sync::OnceLock;

use prism_engine::{
    BackendChoice, Engine, EngineConfig, Error, ErrorKind, ImageFormat, Limits, Pipeline,
};

/// Inputs up to 1 MiB and images up to 4 MP: the product's limits are larger, but the code
/// paths are the same and a fuzzer needs thousands of executions a second. Steps and job time
/// as in the product.
pub const LIMITS: Limits = Limits {
    max_input_bytes: 1 << 20,
    max_pixels: 4_000_000,
    max_output_pixels: 4_000_000,
    max_steps: 32,
    max_job_seconds: 60,
};

/// One engine per fuzzing process, CPU backend (no adapter probe), one worker.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(EngineConfig {
            limits: LIMITS,
            threads: 1,
            max_in_flight: 1,
            max_queue: 4,
            memory_budget_bytes: 512 << 20,
            backend: BackendChoice::Cpu,
            ..EngineConfig::default()
        })
        .expect("the fuzzing engine's configuration is valid")
    })
}

/// An error is fine; an internal one means a panic was caught on the way.
pub fn check_error(error: &Error) {
    assert_ne!(error.kind(), ErrorKind::Internal, "internal error: {error}");
}

/// Probes and decodes `data` if it carries `format`'s signature; a decoded frame must have
/// the probed size (the limits and the memory estimate were judged on it).
pub fn decode_as(format: ImageFormat, data: &[u8]) {
    if ImageFormat::sniff(data) != Some(format) {
        return;
    }
    match engine().decode(data) {
        Ok((info, frame)) => {
            assert_eq!((frame.width(), frame.height()), (info.width, info.height));
        }
        Err(error) => check_error(&error),
    }
}

/// A pipeline's canonical text must parse back to the same pipeline, and be a fixed point.
pub fn check_canonical_round_trip(pipeline: &Pipeline) {
    let text = pipeline.canonical();
    let reparsed: Pipeline = text
        .parse()
        .unwrap_or_else(|error| panic!("canonical text `{text}` does not parse: {error}"));
    assert_eq!(&reparsed, pipeline, "`{text}` parses to another pipeline");
    assert_eq!(reparsed.canonical(), text);
}
