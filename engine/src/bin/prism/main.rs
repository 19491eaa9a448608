//! `prism`: process images from the command line, inspect headers, list operations.

mod inputs;
mod process;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use prism_engine::backend::gpu::GpuBackend;
use prism_engine::pipeline::{FILTERS, PRESETS, all_steps};
use prism_engine::{BackendChoice, GpuConfig, Limits};

#[derive(Parser)]
#[command(
    name = "prism",
    version,
    about = "Prism image engine: resize, crop, rotate, filter, compress"
)]
struct Cli {
    /// Where pixel operations run: auto (the GPU where the cost model says it pays, never a
    /// software adapter), cpu, or gpu (any adapter, llvmpipe included).
    #[arg(long, global = true, default_value = "auto")]
    backend: BackendChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Process files, directories or globs into OUTDIR.
    Process(process::ProcessArgs),
    /// Show format, dimensions, orientation, ICC profile and size of each file (header only).
    Info {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One JSON array instead of text lines.
        #[arg(long)]
        json: bool,
    },
    /// List operations, filters and presets with their arguments.
    Ops,
    /// Show the GPU adapter (name, backend, device type, driver) and the limits in use, or
    /// why there is none. `WGPU_BACKEND` (vulkan, gl, ...) narrows the search.
    GpuInfo {
        #[arg(long)]
        json: bool,
    },
}

/// Fresh large buffers fault in 2 MiB at a time (see `LargeBlocksOnHugePages`).
#[global_allocator]
static ALLOCATOR: prism_engine::LargeBlocksOnHugePages = prism_engine::LargeBlocksOnHugePages;

fn main() -> ExitCode {
    prism_engine::share_one_arena();
    // SAFETY: no other thread exists yet.
    unsafe { prism_engine::quiet_mesa_device_select() };
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Process(args) => process::run(args, cli.backend),
        Command::Info { files, json } => info(&files, json),
        Command::Ops => {
            print_ops();
            Ok(true)
        }
        Command::GpuInfo { json } => gpu_info(json),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("prism: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn info(files: &[PathBuf], json: bool) -> anyhow::Result<bool> {
    // Probing reads headers only, so no input-size limit is needed to describe a file, and
    // no engine: describing files never opens a GPU device or starts worker threads.
    let limits = Limits {
        max_input_bytes: usize::MAX,
        max_pixels: u64::MAX,
        ..Limits::default()
    };
    let mut all_ok = true;
    let mut entries = Vec::new();
    for file in files {
        let probed = std::fs::read(file)
            .map_err(|e| e.to_string())
            .and_then(|bytes| prism_engine::probe(&bytes, &limits).map_err(|e| e.to_string()));
        all_ok &= probed.is_ok();
        if json {
            entries.push(match &probed {
                Ok(info) => serde_json::json!({ "file": file, "info": info }),
                Err(error) => serde_json::json!({ "file": file, "error": error }),
            });
            continue;
        }
        match probed {
            Ok(info) => println!(
                "{}: {} {}x{}, orientation {} ({:?}), ICC profile: {}, alpha: {}, {} bytes",
                file.display(),
                info.format,
                info.width,
                info.height,
                info.orientation.exif_value(),
                info.orientation,
                if info.has_icc_profile { "yes" } else { "no" },
                if info.has_alpha { "yes" } else { "no" },
                info.byte_len
            ),
            Err(error) => println!("{}: error: {error}", file.display()),
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
    }
    Ok(all_ok)
}

fn gpu_info(json: bool) -> anyhow::Result<bool> {
    let opened = GpuBackend::new(&GpuConfig::default(), true).map(|gpu| gpu.info());
    if json {
        let value = match &opened {
            Ok(info) => serde_json::json!({ "adapter": info, "auto_uses_it": !info.software }),
            Err(reason) => serde_json::json!({ "adapter": null, "reason": reason }),
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(opened.is_ok());
    }
    match opened {
        Ok(info) => {
            println!("adapter:      {}", info.name);
            println!("backend:      {}", info.backend);
            println!("device type:  {}", info.device_type);
            println!("driver:       {} {}", info.driver, info.driver_info);
            println!(
                "limits:       {} MiB per binding, {} workgroups per dimension",
                info.max_binding_bytes >> 20,
                info.max_workgroups_per_dimension
            );
            println!(
                "--backend auto: {}",
                if info.software {
                    "does not use it (software adapter, slower than the CPU backend)"
                } else {
                    "uses it where the cost model says it pays"
                }
            );
            Ok(true)
        }
        Err(reason) => {
            println!("no GPU: {reason}");
            Ok(false)
        }
    }
}

fn print_ops() {
    println!("Operations (join steps with `|`, e.g. `orient|fit:1280x1280|sharpen:0.5|jpeg:85`):");
    for spec in all_steps() {
        // A syntax too long for the column gets a line of its own.
        let syntax = if spec.syntax.len() > 34 {
            println!("  {}", spec.syntax);
            ""
        } else {
            spec.syntax
        };
        println!("  {syntax:<34} {}", spec.about);
    }
    println!("\nFilters for resampling steps: {FILTERS}");
    println!("\nPresets:");
    for (name, expansion, meaning) in PRESETS {
        println!("  {name:<12} = {expansion:<32} {meaning}");
    }
}
