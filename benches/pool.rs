//! Criterion benchmarks of the pool: throughput of `process_batch` against thread count and
//! batch size, on the 1280 px photograph fitted to 320 px.
//!
//!   cargo bench --bench pool

use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use prism_engine::{Engine, EngineConfig, Pipeline};

fn benches(c: &mut Criterion) {
    let photo = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/photos/dragonfly-1280.jpg"),
    )
    .expect("photo fixture");
    let pipeline: Pipeline = "fit:320x320|jpeg:85".parse().expect("valid pipeline");
    let mut group = c.benchmark_group("process_batch");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    for threads in [1, 2] {
        let config = EngineConfig {
            threads,
            max_in_flight: threads,
            ..EngineConfig::default()
        };
        let engine = Engine::new(config).expect("engine starts");
        for batch in [1, 8, 32] {
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("threads-{threads}"), batch),
                &batch,
                |b, &batch| {
                    b.iter(|| {
                        let results = engine.process_batch(vec![photo.clone(); batch], &pipeline);
                        assert!(results.iter().all(Result::is_ok));
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(pool_benches, benches);
criterion_main!(pool_benches);
