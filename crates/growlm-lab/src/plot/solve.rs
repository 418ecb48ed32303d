//! The solver's figure (paper Appendix A, Figures 7–8): the small and target curves with
//! their fits, and the predicted and empirical effect conversion rate against Fs/Ft.

use std::path::Path;

use growlm_solver::{Curve, Fit};
use plotters::prelude::*;

use super::{svg, Drawn};
use crate::LabError;

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
