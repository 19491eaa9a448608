//! `prism process`: runs one pipeline over many files through the engine's worker pool.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use futures::executor::block_on;
use futures::stream::FuturesUnordered;
use prism_engine::{BackendChoice, Engine, EngineConfig, Output, Pipeline};

use crate::inputs;
use crate::report::{Progress, Summary};

#[derive(Args)]
pub struct ProcessArgs {
    /// Files, directories (searched for .jpg/.jpeg/.png/.webp/.gif) or globs.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Where results go: the input's stem with the output format's extension.
    #[arg(short, long)]
    output: PathBuf,
    /// Pipeline text or preset (see `prism ops`).
    #[arg(short, long, default_value = "fit:1280x1280")]
    pipeline: String,
    /// Worker threads (default: the number of cores).
    #[arg(short, long, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// Memory budget for the images being worked on, in MiB (default: a quarter of RAM).
    #[arg(long, value_parser = clap::value_parser!(u64).range(16..=1_048_576))]
    memory_limit_mb: Option<u64>,
}

/// Input indices, biggest file first: starting the longest jobs early keeps every worker
/// busy to the end instead of leaving one to finish a large photo alone.
fn largest_first(files: &[PathBuf]) -> Vec<usize> {
    let mut order: Vec<(u64, usize)> = files
        .iter()
        .enumerate()
        .map(|(index, file)| (std::fs::metadata(file).map_or(0, |m| m.len()), index))
        .collect();
    order.sort_by(|a, b| b.cmp(a));
    order.into_iter().map(|(_, index)| index).collect()
}

fn config_capacity(engine: &Engine) -> usize {
    let config = engine.config();
    config.max_in_flight.min(config.threads) + config.max_queue
}

/// Jobs submitted ahead of the workers, per thread: enough to keep them busy, few enough
/// that queued inputs (held outside the memory budget) do not pile up.
const QUEUED_PER_THREAD: usize = 1;

pub fn run(args: ProcessArgs, backend: BackendChoice) -> anyhow::Result<bool> {
    let pipeline: Pipeline = args.pipeline.parse().context("--pipeline")?;
    let files = inputs::expand(&args.inputs)?;
    let stems = inputs::unique_stems(&files);
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;

    let mut config = EngineConfig {
        backend,
        ..EngineConfig::default()
    };
    if let Some(threads) = args.threads {
        config.threads = usize::from(threads);
        config.max_in_flight = config.threads;
    }
    config.max_queue = QUEUED_PER_THREAD * config.threads;
    if let Some(mib) = args.memory_limit_mb {
        config.memory_budget_bytes = usize::try_from(mib << 20).context("--memory-limit-mb")?;
    }
    let engine = Engine::new(config)?;
    let status = engine.backend_status();
    match (&status.gpu, &status.gpu_unavailable) {
        (Some(gpu), _) => eprintln!(
            "backend {}: GPU {} ({}, {})",
            status.choice, gpu.name, gpu.backend, gpu.device_type
        ),
        (None, Some(reason)) => eprintln!("backend {}: CPU only ({reason})", status.choice),
        (None, None) => eprintln!("backend {}: CPU", status.choice),
    }

    let progress = Progress::new(files.len());
    let mut summary = Summary::default();
    let started = Instant::now();
    let finish = |index: usize, result: Result<Output, String>, summary: &mut Summary| {
        let file = files[index].display();
        let written = result.and_then(|output| {
            let path = args
                .output
                .join(format!("{}.{}", stems[index], output.format.extension()));
            std::fs::write(&path, &output.bytes)
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            Ok((output, path))
        });
        match written {
            Ok((output, path)) => {
                summary.record(&output);
                let line = format!(
                    "ok {file} -> {} {}x{} {} bytes on {} in {:.1} ms (queued {:.1} ms)",
                    path.display(),
                    output.width,
                    output.height,
                    output.bytes.len(),
                    output.backend.name(),
                    output.timings.work().as_secs_f64() * 1e3,
                    output.timings.queue.as_secs_f64() * 1e3
                );
                progress.finished(&line, false);
            }
            Err(error) => {
                summary.failed += 1;
                progress.finished(&format!("failed {file}: {error}"), true);
            }
        }
    };

    // Never more jobs out than the pool takes (running + queued), so `submit` is not
    // refused as overloaded: when full, collect whichever job finishes first.
    let capacity = config_capacity(&engine);
    let mut in_flight = FuturesUnordered::new();
    for index in largest_first(&files) {
        let file = &files[index];
        while in_flight.len() >= capacity {
            if let Some((done, result)) = block_on(in_flight.next()) {
                finish(done, result, &mut summary);
            }
        }
        let submitted = std::fs::read(file)
            .map_err(|e| format!("reading: {e}"))
            .and_then(|bytes| {
                engine
                    .submit(bytes, pipeline.clone())
                    .map_err(|e| e.to_string())
            });
        match submitted {
            Ok(handle) => {
                in_flight.push(async move { (index, handle.await.map_err(|e| e.to_string())) })
            }
            Err(error) => finish(index, Err(error), &mut summary),
        }
    }
    while let Some((index, result)) = block_on(in_flight.next()) {
        finish(index, result, &mut summary);
    }
    progress.done();
    summary.print(started.elapsed());
    Ok(summary.failed == 0)
}
