//! The figures (SVG, plotters): a run's `loss.svg`, validation loss against FLOPs for
//! several runs with growth points marked (paper Figure 4), and the solver's fits with the
//! effect conversion rate (Appendix A, Figures 7–8).

use std::path::{Path, PathBuf};

use growlm_solver::{Curve, Fit};
use growlm_train::{GrowEvent, MetricsRow, RunCurve, RunDir};
use plotters::prelude::*;

use crate::LabError;

type Drawn = Result<(), Box<dyn std::error::Error>>;

/// Runs `draw` and names `path` in its error.
fn svg(path: &Path, draw: impl FnOnce() -> Drawn) -> Result<(), LabError> {
    draw().map_err(|e| LabError::Plot {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Writes `loss.svg` into a run directory from its metrics and events; returns its path.
/// Train and validation loss against step and against FLOPs, growth steps marked.
pub fn loss_svg(run: &RunDir) -> Result<PathBuf, LabError> {
    let rows = run.metrics()?;
    let events = run.events()?;
    let path = run.file(RunDir::LOSS_SVG);
    svg(&path, || draw_loss(&path, &rows, &events))?;
    Ok(path)
}

fn draw_loss(path: &Path, rows: &[MetricsRow], events: &[GrowEvent]) -> Drawn {
    let finite = |v: f64| v.is_finite().then_some(v);
    let losses: Vec<f64> = rows
        .iter()
        .flat_map(|r| [finite(r.train_loss), r.val_loss.and_then(finite)])
        .flatten()
        .collect();
    let ymin = losses.iter().copied().fold(f64::INFINITY, f64::min);
    let ymax = losses.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (ymin, ymax) = if ymin < ymax {
        (ymin * 0.98, ymax * 1.02)
    } else {
        (0.0, 1.0)
    };
    let root = SVGBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    let growth_rows: Vec<&MetricsRow> = events
        .iter()
        .filter_map(|e| rows.iter().find(|r| r.step == e.step))
        .collect();
    // x of a row on each panel: the step, then the cumulative FLOPs.
    type X = fn(&MetricsRow) -> f64;
    let (by_step, by_flops): (X, X) = (|r| r.step as f64, |r| r.flops);
    for (area, label, x) in [(&left, "step", by_step), (&right, "training FLOPs", by_flops)] {
        let xmax = rows.iter().map(x).fold(1.0, f64::max);
        let mut c = ChartBuilder::on(area)
            .caption(format!("loss against {label}"), ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..xmax, ymin..ymax)?;
        c.configure_mesh().x_desc(label).y_desc("loss").draw()?;
        let train = RGBColor(150, 170, 230);
        c.draw_series(LineSeries::new(
            rows.iter()
                .filter(|r| r.train_loss.is_finite())
                .map(|r| (x(r), r.train_loss)),
            train,
        ))?
        .label("train")
        .legend(move |(a, b)| PathElement::new(vec![(a, b), (a + 20, b)], train));
        c.draw_series(LineSeries::new(
            rows.iter().filter_map(|r| Some((x(r), r.val_loss.and_then(finite)?))),
            RED.stroke_width(2),
        ))?
        .label("validation")
        .legend(|(a, b)| PathElement::new(vec![(a, b), (a + 20, b)], RED));
        for g in &growth_rows {
            c.draw_series(LineSeries::new([(x(g), ymin), (x(g), ymax)], BLACK.mix(0.5)))?;
        }
        if !growth_rows.is_empty() {
            c.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                .label("growth")
                .legend(|(a, b)| PathElement::new(vec![(a + 10, b - 6), (a + 10, b + 6)], BLACK));
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// Validation loss against training FLOPs of `runs` (name, curve), growth points marked
/// with a cross; with `log_x`, FLOPs on a log scale.
pub fn loss_flops_svg(path: &Path, title: &str, runs: &[(&str, &RunCurve)], log_x: bool) -> Result<(), LabError> {
    svg(path, || draw_loss_flops(path, title, runs, log_x))
}

fn draw_loss_flops(path: &Path, title: &str, runs: &[(&str, &RunCurve)], log_x: bool) -> Drawn {
    let pts = || runs.iter().flat_map(|(_, c)| c.points.iter());
    let xmax = pts().map(|p| p.cost[0]).fold(1.0, f64::max);
    let xmin = pts().map(|p| p.cost[0]).filter(|x| *x > 0.0).fold(xmax, f64::min);
    let ymin = pts().map(|p| p.loss).fold(f64::INFINITY, f64::min) * 0.98;
    let ymax = pts().map(|p| p.loss).fold(f64::NEG_INFINITY, f64::max) * 1.02;
    let root = SVGBackend::new(path, (900, 550)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut b = ChartBuilder::on(&root);
    b.caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50);
    // One body for both axes: plotters' log and linear ranges are different types.
    macro_rules! body {
        ($c:expr) => {{
            let mut c = $c;
            c.configure_mesh().x_desc("FLOPs").y_desc("validation loss").draw()?;
            for (i, (name, curve)) in runs.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                c.draw_series(LineSeries::new(curve.points.iter().map(|p| (p.cost[0], p.loss)), color))?
                    .label(*name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
                c.draw_series(
                    curve
                        .growths
                        .iter()
                        .map(|&(_, x, y)| Cross::new((x, y), 6, color.stroke_width(2))),
                )?;
            }
            c.configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }};
    }
    if log_x {
        body!(b.build_cartesian_2d((xmin * 0.9..xmax * 1.1).log_scale(), ymin..ymax)?);
    } else {
        body!(b.build_cartesian_2d(0.0..xmax, ymin..ymax)?);
    }
    root.present()?;
    Ok(())
}

/// The solver's figure: both curves with their fits (left), and the predicted and
/// empirical effect conversion rate E(Gb) against Fs/Ft (right).
pub struct SolveFigure<'a> {
    /// The small model's curve and fit.
    pub small: (&'a Curve, &'a Fit),
    /// The target's curve and fit.
    pub target: (&'a Curve, &'a Fit),
    /// Predicted E at growth steps: `[Gb, E]`.
    pub effect: &'a [[f64; 2]],
    /// Empirical E of grown runs: `[Gb, E]`.
    pub empirical: &'a [[f64; 2]],
    /// Fs/Ft.
    pub ratio: f64,
    /// Last growth step drawn.
    pub horizon: f64,
}

/// Draws the solver's figure into `path`.
pub fn solve_svg(path: &Path, f: &SolveFigure<'_>) -> Result<(), LabError> {
    svg(path, || draw_solve(path, f))
}

fn draw_solve(path: &Path, f: &SolveFigure<'_>) -> Drawn {
    let (small, target, horizon, ratio) = (f.small.0, f.target.0, f.horizon, f.ratio);
    let root = SVGBackend::new(path, (1200, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    let xmax = horizon.max(*target.steps.last().unwrap_or(&1.0));
    let all = small.losses.iter().chain(&target.losses);
    let ymin = all.clone().cloned().fold(f64::INFINITY, f64::min) * 0.95;
    let ymax = all.cloned().fold(f64::NEG_INFINITY, f64::max) * 1.02;
    let mut c = ChartBuilder::on(&left)
        .caption("validation loss", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..xmax, ymin..ymax)?;
    c.configure_mesh().x_desc("step").y_desc("loss").draw()?;
    for ((curve, fit), color, name) in [(f.small, BLUE, "small"), (f.target, RED, "target")] {
        c.draw_series(
            curve
                .steps
                .iter()
                .zip(&curve.losses)
                .map(|(x, y)| Circle::new((*x, *y), 2, color.filled())),
        )?
        .label(format!("{name} (data)"))
        .legend(move |(x, y)| Circle::new((x + 10, y), 3, color.filled()));
        c.draw_series(LineSeries::new(
            (0..=200).map(|i| xmax * i as f64 / 200.0).map(|x| (x, fit.value(x))),
            color,
        ))?
        .label(format!("{name} fit ({:?})", fit.model))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    let emax = f
        .effect
        .iter()
        .chain(f.empirical)
        .map(|p| p[1])
        .fold(ratio * 2.0, f64::max)
        .min(ratio * 20.0);
    let mut c = ChartBuilder::on(&right)
        .caption("effect conversion rate E(Gb) vs Fs/Ft", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..horizon, 0.0..emax)?;
    c.configure_mesh().x_desc("growth step Gb").y_desc("E").draw()?;
    c.draw_series(LineSeries::new(f.effect.iter().map(|p| (p[0], p[1].min(emax))), BLUE))?
        .label("predicted E")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    c.draw_series(LineSeries::new([(0.0, ratio), (horizon, ratio)], BLACK.stroke_width(1)))?
        .label("Fs/Ft")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    c.draw_series(
        f.empirical
            .iter()
            .map(|p| Cross::new((p[0], p[1].min(emax)), 5, RED.stroke_width(2))),
    )?
    .label("empirical E")
    .legend(|(x, y)| Cross::new((x + 10, y), 4, RED));
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
