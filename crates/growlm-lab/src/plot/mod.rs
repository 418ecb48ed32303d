//! The figures (SVG, plotters), drawn to go in a paper: a run's `loss.svg`, validation loss
//! against FLOPs for several runs with growth points marked (paper Figure 4), the
//! compute-optimal frontier, and the solver's fits with the effect conversion rate
//! (Appendix A, Figures 7–8). FLOPs are on a log scale in scientific notation, steps are
//! integers, the loss axis is limited to the informative part of the curves (warm-up's
//! first losses left out; a curve is cut where it leaves the axis), the train loss is drawn smoothed over the raw one, and growth
//! points are marked and labelled with their step.

use std::path::{Path, PathBuf};

use growlm_train::{GrowEvent, MetricsRow, RunDir};

mod flops;
mod heatmap;
mod png;
mod solve;

pub use flops::{
    cut, dirs_series, frontier_svg, growth_marks, loss_flops_svg, plotted, run_series, size_label, Plotted,
};
pub use heatmap::{heatmap_svg, ratio_colour, HeatCell};
use plotters::prelude::*;
pub use png::{png, png_dir, MAX_PNG_SIDE};
pub use solve::{solve_svg, SolveFigure};

use crate::LabError;

pub(crate) type Drawn = Result<(), Box<dyn std::error::Error>>;

/// Runs `draw` and names `path` in its error.
pub(crate) fn svg(path: &Path, draw: impl FnOnce() -> Drawn) -> Result<(), LabError> {
    draw().map_err(|e| LabError::Plot {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Writes `loss.svg` into a run directory from its metrics and events; returns its path.
/// Train loss (raw and smoothed) and validation loss against step and against FLOPs,
/// growth steps marked and labelled.
pub fn loss_svg(run: &RunDir) -> Result<PathBuf, LabError> {
    let rows = run.metrics()?;
    let events = run.events()?;
    let path = run.file(RunDir::LOSS_SVG);
    svg(&path, || draw_loss(&path, &rows, &events))?;
    Ok(path)
}

/// A centred moving average of `v` over `window` points (fewer at the ends), skipping
/// non-finite values: a trend without the lag of an exponential average.
pub fn smooth(v: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let pts: Vec<(f64, f64)> = v.iter().copied().filter(|p| p.1.is_finite()).collect();
    let half = window / 2;
    // Prefix sums: each window's mean in O(1).
    let mut sum = vec![0.0; pts.len() + 1];
    for (i, p) in pts.iter().enumerate() {
        sum[i + 1] = sum[i] + p.1;
    }
    (0..pts.len())
        .map(|i| {
            let (lo, hi) = (i.saturating_sub(half), (i + half + 1).min(pts.len()));
            (pts[i].0, (sum[hi] - sum[lo]) / (hi - lo) as f64)
        })
        .collect()
}

/// The smoothing window for `n` points: about 2% of them, at least 5.
fn window(n: usize) -> usize {
    (n / 50).max(5)
}

/// The loss range worth drawing over several series: from just below the lowest loss to
/// the highest loss of each series after its first `skip` fraction of points (the
/// warm-up's first losses would squeeze the rest into a sliver).
pub fn loss_range(series: &[&[f64]], skip: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for s in series {
        let finite: Vec<f64> = s.iter().copied().filter(|v| v.is_finite()).collect();
        if finite.is_empty() {
            continue;
        }
        let from = ((finite.len() as f64 * skip) as usize).min(finite.len() - 1);
        lo = finite.iter().copied().fold(lo, f64::min);
        hi = finite[from..].iter().copied().fold(hi, f64::max);
    }
    if !(lo < hi) {
        return if lo.is_finite() {
            (lo - 0.5, lo + 0.5)
        } else {
            (0.0, 1.0)
        };
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad, hi + pad)
}

/// `1.5e13`-style labels for a FLOPs axis.
pub(crate) fn sci(x: &f64) -> String {
    format!("{x:.1e}")
}

/// Ticks for a log axis over `lo..hi`: 1, 2 and 5 times each power of ten inside it, so an
/// axis spanning less than a decade still has labels between its decades.
pub(crate) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return ticks;
    }
    let mut decade = 10f64.powi(lo.log10().floor() as i32);
    while decade <= hi {
        ticks.extend(
            [1.0, 2.0, 5.0]
                .iter()
                .map(|m| m * decade)
                .filter(|t| (lo..=hi).contains(t)),
        );
        decade *= 10.0;
    }
    ticks
}

fn draw_loss(path: &Path, rows: &[MetricsRow], events: &[GrowEvent]) -> Drawn {
    let train: Vec<f64> = rows.iter().map(|r| r.train_loss).collect();
    let val: Vec<f64> = rows.iter().filter_map(|r| r.val_loss).collect();
    let (ymin, ymax) = loss_range(&[&smooth_values(&train), &val], 0.1);
    let root = SVGBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    let growth_rows: Vec<&MetricsRow> = events
        .iter()
        .filter_map(|e| rows.iter().find(|r| r.step == e.step))
        .collect();
    // x of a row on each panel: the step, then the cumulative FLOPs (log scale).
    type X = fn(&MetricsRow) -> f64;
    let (by_step, by_flops): (X, X) = (|r| r.step as f64, |r| r.flops);
    let xmax_steps = rows.iter().map(by_step).fold(1.0, f64::max);
    let flops: Vec<f64> = rows.iter().map(by_flops).filter(|f| *f > 0.0).collect();
    let (fmin, fmax) = (
        flops.iter().copied().fold(f64::INFINITY, f64::min).min(1.0e300),
        flops.iter().copied().fold(1.0, f64::max),
    );
    macro_rules! panel {
        ($area:expr, $label:expr, $x:expr, $log:expr, $chart:expr, $fmt:expr) => {{
            let mut c = $chart;
            c.configure_mesh()
                .x_desc($label)
                .y_desc("loss")
                .x_labels(6)
                .x_label_formatter($fmt)
                .y_label_formatter(&|y: &f64| format!("{y:.2}"))
                .bold_line_style(RGBColor(228, 228, 228))
                .light_line_style(TRANSPARENT)
                .draw()?;
            let raw: Vec<(f64, f64)> = rows.iter().map(|r| ($x(r), r.train_loss)).collect();
            let val: Vec<(f64, f64)> = rows.iter().filter_map(|r| Some(($x(r), r.val_loss?))).collect();
            let (faint, blue) = (RGBColor(190, 200, 235), RGBColor(40, 80, 200));
            let lines = [
                ("train (raw)", raw.clone(), faint.stroke_width(1)),
                (
                    "train (smoothed)",
                    smooth(&raw, window(raw.len())),
                    blue.stroke_width(2),
                ),
                ("validation", val, RED.stroke_width(2)),
            ];
            for (name, pts, style) in lines {
                // Cut where a curve leaves the axis, not drawn along its edge.
                for piece in flops::cut(&pts, ymin, ymax, $log) {
                    c.draw_series(LineSeries::new(piece, style))?;
                }
                c.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                    .label(name)
                    .legend(move |(a, b)| PathElement::new(vec![(a, b), (a + 20, b)], style));
            }
            for g in &growth_rows {
                let x = $x(g);
                c.draw_series(DashedLineSeries::new(
                    [(x, ymin), (x, ymax)],
                    6,
                    4,
                    BLACK.stroke_width(1),
                ))?;
                c.draw_series(std::iter::once(Text::new(
                    format!("grew at {}", g.step),
                    (x, ymin + (ymax - ymin) * 0.06),
                    ("sans-serif", 13).into_font(),
                )))?;
            }
            c.configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }};
    }
    let build = |area, caption: &str| {
        let mut b = ChartBuilder::on(area);
        b.caption(caption, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55);
        b
    };
    panel!(
        &left,
        "step",
        by_step,
        false,
        build(&left, "loss against step").build_cartesian_2d(0.0..xmax_steps, ymin..ymax)?,
        &|x: &f64| format!("{x:.0}")
    );
    if fmin < fmax {
        panel!(
            &right,
            "training FLOPs",
            by_flops,
            true,
            build(&right, "loss against training FLOPs").build_cartesian_2d(
                (fmin..fmax).log_scale().with_key_points(log_ticks(fmin, fmax)),
                ymin..ymax
            )?,
            &sci
        );
    }
    root.present()?;
    Ok(())
}

/// The train losses smoothed (for the range: raw spikes do not stretch the axis).
fn smooth_values(v: &[f64]) -> Vec<f64> {
    let pts: Vec<(f64, f64)> = v.iter().enumerate().map(|(i, y)| (i as f64, *y)).collect();
    smooth(&pts, window(pts.len())).into_iter().map(|p| p.1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_are_one_two_five_per_decade_inside_the_range() {
        assert_eq!(log_ticks(3e11, 2.5e12), vec![5e11, 1e12, 2e12]);
        assert_eq!(log_ticks(0.9, 11.0), vec![1.0, 2.0, 5.0, 10.0]);
        assert!(log_ticks(0.0, 1.0).is_empty() && log_ticks(2.0, 1.0).is_empty());
    }

    #[test]
    fn smoothing_is_a_centred_mean_and_the_range_leaves_out_the_warm_up() {
        let v: Vec<(f64, f64)> = [1.0, 2.0, 3.0, 10.0, 5.0]
            .iter()
            .enumerate()
            .map(|(i, y)| (i as f64, *y))
            .collect();
        let s = smooth(&v, 3);
        // Windows: [1,2], [1,2,3], [2,3,10], [3,10,5], [10,5].
        let want = [1.5, 2.0, 5.0, 6.0, 7.5];
        for (p, w) in s.iter().zip(want) {
            assert!((p.1 - w).abs() < 1e-12, "{s:?}");
        }
        // 10 points from 9 down to 0: skipping the first 20% leaves 7 as the top; 5% padding.
        let falling: Vec<f64> = (0..10).rev().map(f64::from).collect();
        let (lo, hi) = loss_range(&[&falling], 0.2);
        assert!((lo + 0.35).abs() < 1e-12 && (hi - 7.35).abs() < 1e-12, "{lo} {hi}");
    }
}
