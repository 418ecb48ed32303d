//! `cargo xtask gpu-check`: the checks that need a GPU (`growlm::gpu_check`), as one
//! command to run when a GPU is at hand, with a short report. Without the `cuda` feature,
//! it rebuilds itself with it (`cargo run --release --bin growlm --features cuda -- gpu-check …`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use growlm::gpu_check::{checks_on, Check, CheckOptions};
use growlm::train::DeviceKind;

/// Arguments of `cargo xtask gpu-check`.
#[derive(clap::Args)]
pub struct GpuCheckArgs {
    /// Backend to check (flex runs the same checks on the CPU).
    #[arg(long, value_enum, default_value_t = crate::Device::Cuda)]
    device: crate::Device,
    /// Sequences per step of the GPT-Neo-125M bench.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Skip the throughput benches.
    #[arg(long)]
    no_bench: bool,
    /// Write the report as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Runs the command.
pub fn run(a: GpuCheckArgs) -> Result<()> {
    let kind = DeviceKind::from(a.device);
    if kind == DeviceKind::Cuda && !cfg!(feature = "cuda") {
        return rebuild_with_cuda(&a);
    }
    let o = CheckOptions {
        batch_size: a.batch_size,
        no_bench: a.no_bench,
        // The shipped configs of the source tree it was built from (`cargo install --path`
        // builds in place), wherever the command runs from.
        configs: Path::new(env!("CARGO_MANIFEST_DIR")).join("configs"),
    };
    let results = checks_on(kind, &o)?.context("cannot create a scratch directory")?;
    report(&results, &a)
}

fn report(results: &[Check], a: &GpuCheckArgs) -> Result<()> {
    println!("gpu-check on {:?}:", a.device);
    for c in results {
        println!("  [{}] {}: {}", if c.ok { "ok" } else { "FAIL" }, c.name, c.detail);
    }
    if let Some(p) = &a.json {
        crate::write_file(p, serde_json::to_string_pretty(results)?.as_bytes())?;
    }
    let failed = results.iter().filter(|c| !c.ok).count();
    if failed > 0 {
        bail!("{failed} of {} checks failed", results.len());
    }
    Ok(())
}

/// Without the `cuda` feature: rebuild and rerun this command with it.
fn rebuild_with_cuda(a: &GpuCheckArgs) -> Result<()> {
    let mut args = vec!["gpu-check".to_string(), "--batch-size".into(), a.batch_size.to_string()];
    if a.no_bench {
        args.push("--no-bench".into());
    }
    if let Some(p) = &a.json {
        args.extend(["--json".into(), p.display().to_string()]);
    }
    eprintln!("gpu-check: building with --features cuda (cargo run --release --bin growlm --features cuda)");
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "run",
            "--release",
            "--quiet",
            "--bin",
            "growlm",
            "--features",
            "cuda",
            "--",
        ])
        .args(&args)
        .status()
        .context("could not run cargo to build the CUDA check")?;
    if !status.success() {
        bail!("gpu-check with --features cuda failed ({status})");
    }
    Ok(())
}
