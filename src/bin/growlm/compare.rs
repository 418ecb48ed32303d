//! `cargo xtask compare`: the equal-loss speed-up of runs against a from-scratch reference
//! (paper §4.3 and Table 2), measured by `growlm::lab::compare`; or, with `--frontier`,
//! runs against the compute-optimal frontier of from-scratch runs of any sizes
//! (`growlm::lab::frontier`).

use std::path::PathBuf;

use anyhow::Result;
use growlm::lab::frontier::{measure, Envelope, FrontierRow, FrontierRun};
use growlm::lab::stats::Interval;
use growlm::lab::{compare, plot};
use growlm::train::RunDir;

/// Arguments of `cargo xtask compare`.
#[derive(clap::Args)]
pub struct CompareArgs {
    /// The from-scratch reference run directory (e.g. `--only-stage 1` of the same config).
    #[arg(long, required_unless_present = "frontier", conflicts_with = "frontier")]
    reference: Option<PathBuf>,
    /// From-scratch run directories of any sizes and budgets: measure the runs against
    /// their lower envelope of final loss against FLOPs (the compute-optimal frontier).
    #[arg(long, num_args = 1..)]
    frontier: Vec<PathBuf>,
    /// Run directories to compare (with `--frontier`, default: the frontier's own runs).
    #[arg(required_unless_present = "frontier")]
    runs: Vec<PathBuf>,
    /// Compare at this validation loss instead of each run's final one.
    #[arg(long, conflicts_with = "frontier")]
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
    let Some(reference_dir) = a.reference.clone() else {
        return frontier(a);
    };
    let name = |p: &PathBuf| p.display().to_string();
    let reference = RunDir::new(&reference_dir).curve()?;
    let mut rows = Vec::new();
    for dir in &a.runs {
        let curve = RunDir::new(dir).curve()?;
        rows.push(compare(&name(dir), &curve, &reference, a.at).map_err(|e| at_flag(e, a.at))?);
    }
    println!(
        "equal-loss speed-up against {} (paper Table 2)",
        reference_dir.display()
    );
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
    if rows.len() > 1 {
        let x: Vec<f64> = rows.iter().map(|r| r.speedup_flops).collect();
        println!(
            "×FLOPs over the {} runs given (as seeds of one configuration): {}",
            rows.len(),
            Interval::of(&x).show_difference(1.0, 2)
        );
    }
    if let Some(path) = &a.json {
        crate::write_file(path, serde_json::to_string_pretty(&rows)?.as_bytes())?;
    }
    if let Some(path) = &a.plot {
        let all = plot::dirs_series(std::iter::once(&reference_dir).chain(&a.runs))?;
        let shown = plot::plotted(&all);
        plot::loss_flops_svg(path, "validation loss against training FLOPs", &shown, false)?;
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

/// `compare --frontier`: the envelope of the from-scratch runs, and every run against it.
fn frontier(a: CompareArgs) -> Result<()> {
    let read = |p: &PathBuf| FrontierRun::read(&p.display().to_string(), &RunDir::new(p));
    let scratch: Vec<FrontierRun> = a.frontier.iter().map(read).collect::<Result<_, _>>()?;
    let env = Envelope::new(&scratch)?;
    let runs: Vec<FrontierRun> = if a.runs.is_empty() {
        scratch.clone()
    } else {
        a.runs.iter().map(read).collect::<Result<_, _>>()?
    };
    println!(
        "the compute-optimal frontier of {} from-scratch runs (final loss against FLOPs):",
        scratch.len()
    );
    for p in &env.points {
        println!("  {:<40} {:>11.3e} FLOPs  loss {:.4}", p.run, p.flops, p.loss);
    }
    println!(
        "{:<32} {:>11} {:>9} {:>9} {:>8} {:>10} {:>10}",
        "run", "FLOPs", "val loss", "tok/param", "growth", "iso gap", "×frontier"
    );
    let rows: Vec<FrontierRow> = runs.iter().map(|r| measure(&env, r)).collect();
    for r in &rows {
        println!(
            "{:<32} {:>11.3e} {:>9.4} {:>9.1} {:>8} {:>10} {:>10}",
            r.run,
            r.flops,
            r.final_val_loss,
            r.tokens_per_param,
            r.growth_factor.map_or("-".into(), |g| format!("×{g:.2}")),
            r.iso_flop_gap.map_or("outside".into(), |g| format!("{g:+.4}")),
            r.x_frontier.map_or("outside".into(), |x| format!("{x:.3}")),
        );
        if let Some(o) = &r.outside {
            println!("    outside: {o}");
        }
    }
    let x: Vec<f64> = rows.iter().filter_map(|r| r.x_frontier).collect();
    if x.len() > 1 {
        println!(
            "×frontier over the {} runs inside the envelope (as seeds of one configuration): {}",
            x.len(),
            Interval::of(&x).show_difference(1.0, 3)
        );
    }
    if let Some(path) = &a.json {
        let out = serde_json::json!({ "envelope": env, "runs": rows });
        crate::write_file(path, serde_json::to_string_pretty(&out)?.as_bytes())?;
    }
    if let Some(path) = &a.plot {
        let all = plot::dirs_series(a.frontier.iter().chain(&a.runs))?;
        let shown = plot::plotted(&all);
        plot::frontier_svg(path, &env, &shown)?;
    }
    Ok(())
}
