//! `cargo xtask compare`: the equal-loss speed-up of runs against a from-scratch reference
//! (paper §4.3 and Table 2), measured by `growlm::lab::compare`.

use std::path::PathBuf;

use anyhow::Result;
use growlm::lab::{compare, plot};
use growlm::train::{RunCurve, RunDir};

/// Arguments of `cargo xtask compare`.
#[derive(clap::Args)]
pub struct CompareArgs {
    /// The from-scratch reference run directory (e.g. `--only-stage 1` of the same config).
    #[arg(long)]
    reference: PathBuf,
    /// Run directories to compare.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Compare at this validation loss instead of each run's final one.
    #[arg(long)]
    at: Option<f64>,
    /// Write the results as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Plot validation loss against FLOPs (SVG), growth points marked.
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// Runs the command.
pub fn run(a: CompareArgs) -> Result<()> {
    let name = |p: &PathBuf| p.display().to_string();
    let reference = RunDir::new(&a.reference).curve()?;
    let mut rows = Vec::new();
    let mut curves: Vec<(String, RunCurve)> = Vec::new();
    for dir in &a.runs {
        let curve = RunDir::new(dir).curve()?;
        rows.push(compare(&name(dir), &curve, &reference, a.at).map_err(|e| at_flag(e, a.at))?);
        curves.push((name(dir), curve));
    }
    println!("equal-loss speed-up against {} (paper Table 2)", a.reference.display());
    println!(
        "{:<28} {:>9} {:>8} {:>11} {:>11} {:>9} {:>9} {:>9}",
        "run", "val loss", "ppl", "FLOPs", "ref FLOPs", "×FLOPs", "×tokens", "×wall"
    );
    for r in &rows {
        let mark = if r.reached { " " } else { "≥" };
        println!(
            "{:<28} {:>9.4} {:>8.2} {:>11.3e} {:>11.3e} {mark}{:>8.2} {mark}{:>8.2} {mark}{:>8.2}{}",
            r.run,
            r.final_val_loss,
            r.perplexity,
            r.flops,
            r.reference_flops_to_loss,
            r.speedup_flops,
            r.speedup_tokens,
            r.speedup_wall,
            if r.reached {
                ""
            } else {
                "  (reference does not reach this loss: lower bound)"
            }
        );
    }
    if let Some(path) = &a.json {
        crate::write_file(path, serde_json::to_string_pretty(&rows)?.as_bytes())?;
    }
    if let Some(path) = &a.plot {
        let all: Vec<(&str, &RunCurve)> = std::iter::once((a.reference.to_str().unwrap_or("reference"), &reference))
            .chain(curves.iter().map(|(n, c)| (n.as_str(), c)))
            .collect();
        plot::loss_flops_svg(path, "validation loss against training FLOPs", &all, false)?;
    }
    Ok(())
}

/// A loss the run never reaches was asked for with `--at`.
fn at_flag(e: growlm::lab::LabError, at: Option<f64>) -> anyhow::Error {
    match at {
        Some(l) => anyhow::Error::new(e).context(format!("--at {l}")),
        None => e.into(),
    }
}
