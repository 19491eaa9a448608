//! `prism process`: runs one pipeline over many files on N threads.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use prism_engine::{Engine, EngineConfig, Output, Pipeline};

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
    /// Worker threads.
    #[arg(short, long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
}

struct Finished {
    index: usize,
    result: Result<(Output, PathBuf), String>,
    latency: Duration,
}

pub fn run(args: ProcessArgs) -> anyhow::Result<bool> {
    let pipeline: Pipeline = args.pipeline.parse().context("--pipeline")?;
    let files = inputs::expand(&args.inputs)?;
    let stems = inputs::unique_stems(&files);
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let engine = Engine::new(EngineConfig::default());
    let progress = Progress::new(files.len());
    let mut summary = Summary::default();
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let (sender, receiver) = mpsc::channel::<Finished>();

    std::thread::scope(|scope| {
        for _ in 0..args.threads {
            let sender = sender.clone();
            let (engine, pipeline, files, stems, next, outdir) =
                (&engine, &pipeline, &files, &stems, &next, &args.output);
            scope.spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(index) else { break };
                    let began = Instant::now();
                    let result = process_one(engine, pipeline, file, &stems[index], outdir);
                    let finished = Finished {
                        index,
                        result,
                        latency: began.elapsed(),
                    };
                    if sender.send(finished).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        for finished in receiver {
            let file = files[finished.index].display();
            match finished.result {
                Ok((output, written)) => {
                    summary.succeeded += 1;
                    summary.megapixels +=
                        f64::from(output.input.width) * f64::from(output.input.height) / 1e6;
                    summary.latencies.push(finished.latency);
                    let line = format!(
                        "ok {file} -> {} {}x{} {} bytes in {:.1} ms",
                        written.display(),
                        output.width,
                        output.height,
                        output.bytes.len(),
                        finished.latency.as_secs_f64() * 1e3
                    );
                    progress.finished(&line, false);
                }
                Err(error) => {
                    summary.failed += 1;
                    progress.finished(&format!("failed {file}: {error}"), true);
                }
            }
        }
    });
    progress.done();
    summary.print(started.elapsed());
    Ok(summary.failed == 0)
}

fn process_one(
    engine: &Engine,
    pipeline: &Pipeline,
    file: &PathBuf,
    stem: &str,
    outdir: &std::path::Path,
) -> Result<(Output, PathBuf), String> {
    let bytes = std::fs::read(file).map_err(|e| format!("reading: {e}"))?;
    let output = engine
        .process(&bytes, pipeline)
        .map_err(|e| e.to_string())?;
    let path = outdir.join(format!("{stem}.{}", output.format.extension()));
    std::fs::write(&path, &output.bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok((output, path))
}
