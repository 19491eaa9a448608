//! Criterion benchmarks of each stage on a 12 MP photograph and a 1280 px one:
//! decode, every operation, encode in each format, and the whole default pipeline; and the
//! stages of a thumbnail at 1, 1/2, 1/4 and 1/8 scale, on the 12 MP photo (progressive) and
//! a baseline re-encode of it.
//!
//!   cargo bench --bench engine            (all)
//!   cargo bench --bench engine -- ops/    (a subset)
//!   cargo bench --bench engine -- scale/  (the thumbnail stages per scale)

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use prism_engine::{Engine, EngineConfig, Frame, Op, OutputFormat, OutputSpec, Pipeline};

const PHOTOS: [(&str, &str); 2] = [
    ("12mp", "dragonfly-12mp.jpg"),
    ("1280", "dragonfly-1280.jpg"),
];

/// Operations measured, as pipeline text (the resize targets are a quarter of each side).
const OPS: [&str; 17] = [
    "fit:1056x1056",
    "fill:800x800",
    "resize:1000x700",
    "scale:0.25",
    "crop:100,100,1000,700",
    "rotate:90",
    "flip:h",
    "gray",
    "brightness:20",
    "contrast:20",
    "saturation:30",
    "gamma:1.8",
    "sepia",
    "invert",
    "blur:2",
    "sharpen:1",
    "pixelate:8",
];

fn photo(file: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/photos")
            .join(file),
    )
    .expect("photo fixture")
}

fn op(text: &str) -> Op {
    let pipeline: Pipeline = text.parse().expect("valid op");
    pipeline.ops.into_iter().next().expect("one op")
}

fn megapixels(frame: &Frame) -> Throughput {
    Throughput::Elements(u64::from(frame.width()) * u64::from(frame.height()))
}

/// A group of few, long samples (each iteration handles a whole photo), throughput in pixels.
fn photo_group<'c>(
    c: &'c mut Criterion,
    name: &str,
    seconds: u64,
    frame: &Frame,
) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(seconds))
        .throughput(megapixels(frame));
    group
}

fn benches(c: &mut Criterion) {
    let engine = Engine::new(EngineConfig::default()).expect("engine starts");
    for (label, file) in PHOTOS {
        let bytes = photo(file);
        let (_, frame) = engine.decode(&bytes).expect("decodes");

        let mut group = photo_group(c, "decode", 3, &frame);
        group.bench_function(label, |b| b.iter(|| engine.decode(black_box(&bytes))));
        group.finish();

        let mut group = photo_group(c, "ops", 2, &frame);
        for text in OPS {
            let op = op(text);
            let size = op
                .output_size(frame.width(), frame.height())
                .expect("fits the photo");
            group.bench_with_input(BenchmarkId::new(text, label), &frame, |b, frame| {
                b.iter_batched(
                    || frame.clone(),
                    |f| op.apply(f, size),
                    criterion::BatchSize::LargeInput,
                )
            });
        }
        group.finish();

        let mut group = photo_group(c, "encode", 3, &frame);
        for format in [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp] {
            let spec = OutputSpec {
                format: Some(format),
                ..OutputSpec::default()
            };
            group.bench_with_input(
                BenchmarkId::new(format.to_string(), label),
                &frame,
                |b, frame| {
                    b.iter_batched(
                        || frame.clone(),
                        |f| engine.encode(f, &spec),
                        criterion::BatchSize::LargeInput,
                    )
                },
            );
        }
        group.finish();

        let mut group = photo_group(c, "pipeline", 3, &frame);
        for text in ["fit:1280x1280|jpeg:85", "fit:320x320|jpeg:85"] {
            let pipeline: Pipeline = text.parse().expect("valid pipeline");
            group.bench_with_input(BenchmarkId::new(text, label), &bytes, |b, bytes| {
                b.iter(|| engine.process(black_box(bytes), &pipeline))
            });
        }
        group.finish();
    }
}

/// Decode (as a first step shrinking that much lets it), resize and encode, per scale. The
/// baseline file is the progressive one decoded and written again (jpeg-encoder writes
/// baseline), so the two differ only in how they are coded.
fn scale_benches(c: &mut Criterion) {
    let engine = Engine::new(EngineConfig::default()).expect("engine starts");
    let progressive = photo(PHOTOS[0].1);
    let (_, frame) = engine.decode(&progressive).expect("decodes");
    let jpeg = |quality| OutputSpec {
        format: Some(OutputFormat::Jpeg),
        quality,
        ..OutputSpec::default()
    };
    let (_, baseline) = engine.encode(frame.clone(), &jpeg(90)).expect("encodes");
    let thumbnail_jpeg = jpeg(85);
    let mut group = photo_group(c, "scale", 3, &frame);
    for (coding, bytes) in [("progressive", &progressive), ("baseline", &baseline)] {
        for shrink in [1u32, 4, 10, 30] {
            let id =
                |stage: &str| BenchmarkId::new(format!("{stage}/{coding}"), format!("1:{shrink}"));
            group.bench_function(id("decode"), |b| {
                b.iter(|| engine.decode_for_shrink(black_box(bytes), f64::from(shrink)))
            });
            // The decoded frame may already be smaller (JPEG shrink-on-load); the thumbnail's
            // size is the stored size shrunk.
            let (_, decoded) = engine
                .decode_for_shrink(bytes, f64::from(shrink))
                .expect("decodes");
            let fit = op(&format!(
                "fit:{}x{}",
                frame.width() / shrink,
                frame.height() / shrink
            ));
            let size = fit
                .output_size(decoded.width(), decoded.height())
                .expect("fits the photo");
            group.bench_function(id("resize"), |b| {
                b.iter_batched(
                    || decoded.clone(),
                    |f| fit.apply(f, size),
                    criterion::BatchSize::LargeInput,
                )
            });
            let thumbnail = fit.apply(decoded, size).expect("resizes");
            group.bench_function(id("encode"), |b| {
                b.iter_batched(
                    || thumbnail.clone(),
                    |f| engine.encode(f, &thumbnail_jpeg),
                    criterion::BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(engine_benches, benches, scale_benches);
criterion_main!(engine_benches);
