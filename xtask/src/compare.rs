//! `cargo xtask compare`: the equal-loss speed-up of runs against a from-scratch reference
//! (paper §4.3 and Table 2; DESIGN.md §Evaluation protocol).
//!
//! For each run, the loss compared is its final validation loss (or `--at LOSS`). The
//! reference's cost to reach it is read off the reference's running-minimum validation
//! curve, interpolated linearly between the two evaluations that bracket it, in FLOPs,
//! tokens and wall seconds alike; the run's cost is its total, the small model's training
//! included (for `--at`, the same interpolation on the run's own curve). A reference that
//! never reaches the loss gives "not reached" and the ratio of budgets as a lower bound,
//! never an extrapolation.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use growlm::train::{output::read_jsonl, GrowEvent, MetricsRow};
use plotters::prelude::*;
use serde::Serialize;

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

/// Cumulative cost at one evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Validation loss.
    pub loss: f64,
    /// Cumulative FLOPs, tokens and wall seconds.
    pub cost: [f64; 3],
}

/// A run's validation curve with its growth steps.
pub struct RunCurve {
    /// Evaluations, oldest first.
    pub points: Vec<Point>,
    /// Cost at the end of the run.
    pub total: [f64; 3],
    /// FLOPs and loss at each growth.
    pub growths: Vec<(f64, f64)>,
}

pub(crate) fn read_run(dir: &Path) -> Result<RunCurve> {
    let rows: Vec<MetricsRow> = read_jsonl(&dir.join("metrics.jsonl"))
        .with_context(|| format!("{}: not a run directory (no readable metrics.jsonl)", dir.display()))?;
    let cost = |r: &MetricsRow| [r.flops, r.tokens as f64, r.wall_s];
    let points: Vec<Point> = rows
        .iter()
        .filter_map(|r| r.val_loss.map(|loss| Point { loss, cost: cost(r) }))
        .collect();
    let Some(last) = rows.last() else {
        bail!("{}: metrics.jsonl is empty", dir.display())
    };
    if points.is_empty() {
        bail!("{}: no validation loss was measured", dir.display());
    }
    let events: Vec<GrowEvent> = read_jsonl(&dir.join("events.jsonl")).unwrap_or_default();
    let growths = events
        .iter()
        .filter_map(|e| rows.iter().find(|r| r.step == e.step).map(|r| (r.flops, e.loss_after)))
        .collect();
    Ok(RunCurve {
        points,
        total: cost(last),
        growths,
    })
}

/// The cost at which the running minimum of `points` first reaches `loss`, interpolated
/// linearly between the bracketing evaluations; `None` if it never does.
pub fn cost_to_reach(points: &[Point], loss: f64) -> Option<[f64; 3]> {
    // The running-minimum curve: at each evaluation, the lowest loss so far.
    let mut prev: Option<Point> = None;
    for p in points {
        let min = prev.map_or(p.loss, |a| a.loss.min(p.loss));
        if min <= loss {
            return Some(match prev {
                Some(a) if a.loss > loss => {
                    let f = (a.loss - loss) / (a.loss - min);
                    std::array::from_fn(|i| a.cost[i] + f * (p.cost[i] - a.cost[i]))
                }
                _ => p.cost,
            });
        }
        prev = Some(Point {
            loss: min,
            cost: p.cost,
        });
    }
    None
}

/// One row of the comparison.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    /// The run directory.
    pub run: String,
    /// The loss compared (the run's final validation loss, or `--at`).
    pub final_val_loss: f64,
    /// Its perplexity.
    pub perplexity: f64,
    /// The run's FLOPs to that loss (its total for the final loss).
    pub flops: f64,
    /// The reference's FLOPs to that loss (its total budget when not reached).
    pub reference_flops_to_loss: f64,
    /// Reference FLOPs ÷ run FLOPs (a lower bound when not reached).
    pub speedup_flops: f64,
    /// The same in tokens.
    pub speedup_tokens: f64,
    /// The same in wall-clock seconds.
    pub speedup_wall: f64,
    /// Whether the reference reaches the loss.
    pub reached: bool,
}

/// Compares `run` with `reference` at `at` (default: the run's final validation loss).
pub fn compare(name: &str, run: &RunCurve, reference: &RunCurve, at: Option<f64>) -> Result<Row> {
    let loss = at.unwrap_or(run.points.last().expect("a run has evaluations").loss);
    let own = match at {
        Some(l) => cost_to_reach(&run.points, l).with_context(|| format!("{name} never reaches loss {l}"))?,
        None => run.total,
    };
    let (theirs, reached) = match cost_to_reach(&reference.points, loss) {
        Some(c) => (c, true),
        None => (reference.total, false),
    };
    let ratio = |i: usize| theirs[i] / own[i].max(f64::MIN_POSITIVE);
    Ok(Row {
        run: name.to_string(),
        final_val_loss: loss,
        perplexity: loss.exp(),
        flops: own[0],
        reference_flops_to_loss: theirs[0],
        speedup_flops: ratio(0),
        speedup_tokens: ratio(1),
        speedup_wall: ratio(2),
        reached,
    })
}

/// Runs the command.
pub fn run(a: CompareArgs) -> Result<()> {
    let reference = read_run(&a.reference)?;
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    for dir in &a.runs {
        let curve = read_run(dir)?;
        rows.push(compare(&dir.display().to_string(), &curve, &reference, a.at)?);
        curves.push((dir.display().to_string(), curve));
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
        std::fs::write(path, serde_json::to_string_pretty(&rows)?).with_context(|| path.display().to_string())?;
    }
    if let Some(path) = &a.plot {
        plot(path, &a.reference.display().to_string(), &reference, &curves)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

pub(crate) fn plot(path: &Path, ref_name: &str, reference: &RunCurve, runs: &[(String, RunCurve)]) -> Result<()> {
    let all: Vec<(&str, &RunCurve)> = std::iter::once((ref_name, reference))
        .chain(runs.iter().map(|(n, c)| (n.as_str(), c)))
        .collect();
    let pts = || all.iter().flat_map(|(_, c)| c.points.iter());
    let xmax = pts().map(|p| p.cost[0]).fold(1.0, f64::max);
    let ymin = pts().map(|p| p.loss).fold(f64::INFINITY, f64::min) * 0.98;
    let ymax = pts().map(|p| p.loss).fold(f64::NEG_INFINITY, f64::max) * 1.02;
    let root = SVGBackend::new(path, (900, 550)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption("validation loss against training FLOPs", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..xmax, ymin..ymax)?;
    c.configure_mesh().x_desc("FLOPs").y_desc("validation loss").draw()?;
    for (i, (name, curve)) in all.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        c.draw_series(LineSeries::new(curve.points.iter().map(|p| (p.cost[0], p.loss)), color))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        c.draw_series(
            curve
                .growths
                .iter()
                .map(|&(x, y)| Cross::new((x, y), 6, color.stroke_width(2))),
        )?;
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(points: &[(f64, f64)]) -> RunCurve {
        let points: Vec<Point> = points
            .iter()
            .map(|&(flops, loss)| Point {
                loss,
                cost: [flops, flops * 10.0, flops / 100.0],
            })
            .collect();
        RunCurve {
            total: points.last().unwrap().cost,
            points,
            growths: vec![],
        }
    }

    #[test]
    fn the_speed_up_matches_a_hand_computation() {
        // Reference: losses 4, 3, 2.5 (a bump), 2.8, 2.0 at 100…500 FLOPs. Its running
        // minimum is 4, 3, 2.5, 2.5, 2.0; a run ending at 2.25 after 200 FLOPs: the
        // reference reaches 2.25 between 400 (2.5) and 500 (2.0), at 400 + 0.5·100 = 450.
        let reference = curve(&[(100.0, 4.0), (200.0, 3.0), (300.0, 2.5), (400.0, 2.8), (500.0, 2.0)]);
        let run = curve(&[(100.0, 3.5), (200.0, 2.25)]);
        let r = compare("grown", &run, &reference, None).unwrap();
        assert!(r.reached);
        assert_eq!(r.reference_flops_to_loss, 450.0);
        assert_eq!(r.speedup_flops, 450.0 / 200.0);
        assert_eq!(r.speedup_tokens, 4500.0 / 2000.0);
        assert!((r.speedup_wall - 2.25).abs() < 1e-12);
        assert!((r.perplexity - 2.25f64.exp()).abs() < 1e-12);
        // The running minimum, not the bump: 2.6 is reached between 200 (3.0) and 300
        // (2.5), at 200 + 0.8·100 = 280 — not again at 400.
        assert!((cost_to_reach(&reference.points, 2.6).unwrap()[0] - 280.0).abs() < 1e-9);
        // --at: both sides interpolate; the run reaches 3.0 at 100 + (0.5/1.25)·100 = 140.
        let r = compare("grown", &run, &reference, Some(3.0)).unwrap();
        assert!(
            (r.flops - 140.0).abs() < 1e-9 && r.reference_flops_to_loss == 200.0,
            "{r:?}"
        );
    }

    #[test]
    fn a_reference_that_never_reaches_the_loss_gives_a_lower_bound() {
        let reference = curve(&[(100.0, 4.0), (300.0, 2.5)]);
        let run = curve(&[(100.0, 3.0), (200.0, 2.0)]);
        let r = compare("grown", &run, &reference, None).unwrap();
        assert!(!r.reached);
        assert_eq!(r.reference_flops_to_loss, 300.0);
        assert_eq!(r.speedup_flops, 1.5);
        assert!(compare("grown", &run, &reference, Some(1.0)).is_err());
    }
}
