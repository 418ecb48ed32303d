//! Validation loss against training FLOPs for many runs (paper Figure 4), and the
//! compute-optimal frontier drawn over them (docs/design.md §Evaluation protocol).
//!
//! Drawn to be read in a paper: one colour per model size, named once in the legend; the
//! grown runs bold, labelled and drawn last, above the sizes; curves cut where they leave
//! the loss axis instead of running along its edge; each growth marked on its own curve,
//! where the small model stopped; light major gridlines only.

use std::path::{Path, PathBuf};

use growlm_model::GptConfig;
use growlm_train::{RunCurve, RunDir};
use plotters::prelude::*;

use super::{loss_range, sci, svg, Drawn};
use crate::frontier::Envelope;
use crate::LabError;

/// One run of a figure.
#[derive(Debug, Clone, Copy)]
pub struct Plotted<'a> {
    /// Its legend entry. The runs of one model size share it (and its colour); a grown
    /// run has its own.
    pub series: &'a str,
    /// Whether the run grew: drawn bold, labelled, above the sizes.
    pub grown: bool,
    /// The curve.
    pub curve: &'a RunCurve,
}

/// A run directory's curve with its legend entry: a run that grew is named `name`, one
/// that did not by its model's size ([`size_label`]; `name` when it has no config).
pub fn run_series(name: &str, run: &RunDir) -> Result<(String, bool, RunCurve), LabError> {
    let curve = run.curve()?;
    let grown = !curve.growths.is_empty();
    // A run without its config (a bare metrics file) is named by `name` too.
    let size = || run.config().ok().map(|c| size_label(&c.stages[0].model));
    let series = match grown {
        true => name.to_string(),
        false => size().unwrap_or_else(|| name.to_string()),
    };
    Ok((series, grown, curve))
}

/// The run directories `dirs` as [`run_series`] names them, each by its path.
pub fn dirs_series<'a>(dirs: impl IntoIterator<Item = &'a PathBuf>) -> Result<Vec<(String, bool, RunCurve)>, LabError> {
    (dirs.into_iter())
        .map(|p| run_series(&p.display().to_string(), &RunDir::new(p)))
        .collect()
}

/// Borrowed as a figure's runs.
pub fn plotted(all: &[(String, bool, RunCurve)]) -> Vec<Plotted<'_>> {
    (all.iter())
        .map(|(series, grown, curve)| Plotted {
            series,
            grown: *grown,
            curve,
        })
        .collect()
}

/// A model size's legend entry: the family's short name ([`growlm_model::FamilyDesc::short`]),
/// width × depth and parameters, e.g. `L64x3 (142,336)` for a Llama of width 64 and 3 blocks.
pub fn size_label(m: &GptConfig) -> String {
    let family = m.describe().short;
    format!("{family}{}x{} ({})", m.d_model, m.n_layers, thousands(m.num_params()))
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The pieces of the polyline `pts` inside `lo..=hi` in y, each ended where it crosses a
/// bound, the crossing interpolated as drawn (in `ln x` on a log axis). Non-finite points
/// break the line. A curve that leaves the axis is cut there, not drawn along its edge.
pub fn cut(pts: &[(f64, f64)], lo: f64, hi: f64, log_x: bool) -> Vec<Vec<(f64, f64)>> {
    let fx = |x: f64| if log_x { x.ln() } else { x };
    let gx = |u: f64| if log_x { u.exp() } else { u };
    let inside = |y: f64| y >= lo && y <= hi;
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    let mut flush = |cur: &mut Vec<(f64, f64)>| {
        if !cur.is_empty() {
            out.push(std::mem::take(cur));
        }
    };
    let mut prev: Option<(f64, f64)> = None;
    for &(x, y) in pts {
        if !(x.is_finite() && y.is_finite()) {
            flush(&mut cur);
            prev = None;
            continue;
        }
        if let Some((px, py)) = prev {
            // The bounds crossed between the two points, in the order they are met.
            let mut hits: Vec<(f64, f64)> = [lo, hi]
                .into_iter()
                .filter(|b| (py - b) * (y - b) < 0.0)
                .map(|b| ((b - py) / (y - py), b))
                .collect();
            hits.sort_by(|a, b| a.0.total_cmp(&b.0));
            for (t, b) in hits {
                let at = (gx(fx(px) + t * (fx(x) - fx(px))), b);
                if cur.is_empty() {
                    cur.push(at);
                } else {
                    cur.push(at);
                    flush(&mut cur);
                }
            }
        }
        if inside(y) {
            cur.push((x, y));
        } else {
            flush(&mut cur);
        }
        prev = Some((x, y));
    }
    flush(&mut cur);
    out
}

/// Where each growth of `c` is marked: on the curve, at its last evaluation before the
/// growth (the loss the small model grew from), with the growth's step.
pub fn growth_marks(c: &RunCurve) -> Vec<(u64, (f64, f64))> {
    c.growths
        .iter()
        .filter_map(|&(step, flops, _)| {
            let p = c.points.iter().rev().find(|p| p.cost[0] <= flops && p.cost[0] > 0.0)?;
            Some((step, (p.cost[0], p.loss)))
        })
        .collect()
}

/// Validation loss against training FLOPs of `runs`, growths marked on their curves; with
/// `log_x`, FLOPs on a log scale.
pub fn loss_flops_svg(path: &Path, title: &str, runs: &[Plotted<'_>], log_x: bool) -> Result<(), LabError> {
    svg(path, || draw(path, title, runs, log_x, None))
}

/// The compute-optimal frontier of `envelope` (a thick black line through its points) over
/// the curves of `runs`, FLOPs on a log scale.
pub fn frontier_svg(path: &Path, envelope: &Envelope, runs: &[Plotted<'_>]) -> Result<(), LabError> {
    svg(path, || {
        draw(
            path,
            "compute-optimal frontier: the best size from scratch at each FLOPs, and the runs",
            runs,
            true,
            Some(envelope),
        )
    })
}

/// Colours for the sizes (Okabe–Ito's colour-blind-safe set, black left to the frontier),
/// then plotters' palette past eight.
fn size_colour(i: usize) -> RGBColor {
    const SET: [RGBColor; 7] = [
        RGBColor(86, 180, 233),
        RGBColor(230, 159, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(240, 228, 66),
    ];
    SET.get(i).copied().unwrap_or_else(|| {
        let c = Palette99::pick(i).to_rgba();
        RGBColor(c.0, c.1, c.2)
    })
}

/// Colours for the grown runs: dark, saturated, apart from the sizes'.
fn grown_colour(i: usize) -> RGBColor {
    const SET: [RGBColor; 4] = [
        RGBColor(200, 0, 30),
        RGBColor(90, 0, 160),
        RGBColor(120, 70, 0),
        RGBColor(0, 90, 60),
    ];
    SET.get(i).copied().unwrap_or_else(|| {
        let c = Palette99::pick(i + 3).to_rgba();
        RGBColor(c.0, c.1, c.2)
    })
}

/// More grown runs than this in one figure go unlabelled, and the legend names them as one
/// entry: a regime study's dozens of cells would overprint each other.
const CROWDED: usize = 6;

fn draw(path: &Path, title: &str, runs: &[Plotted<'_>], log_x: bool, env: Option<&Envelope>) -> Drawn {
    let xs = || {
        runs.iter()
            .flat_map(|r| r.curve.points.iter().map(|p| p.cost[0]))
            .chain(env.into_iter().flat_map(|e| e.points.iter().map(|p| p.flops)))
            .filter(|x| *x > 0.0)
    };
    let losses: Vec<Vec<f64>> = runs
        .iter()
        .map(|r| r.curve.points.iter().map(|p| p.loss).collect())
        .chain(env.map(|e| e.points.iter().map(|p| p.loss).collect()))
        .collect();
    let series: Vec<&[f64]> = losses.iter().map(Vec::as_slice).collect();
    let (ymin, ymax) = loss_range(&series, 0.15);
    let xmax = xs().fold(1.0, f64::max);
    // The x axis starts where the first curve comes onto the loss axis, cut as drawn.
    let pts_of = |r: &Plotted<'_>| -> Vec<(f64, f64)> {
        let inside = r.curve.points.iter().filter(|p| p.cost[0] > 0.0);
        inside.map(|p| (p.cost[0], p.loss)).collect()
    };
    let onto =
        (runs.iter().flat_map(|r| cut(&pts_of(r), ymin, ymax, log_x))).filter_map(|piece| piece.first().map(|p| p.0));
    let frontier = env.into_iter().flat_map(|e| e.points.iter().map(|p| p.flops));
    let xmin = onto.chain(frontier).fold(xmax, f64::min);
    // The legend's entries in order of first appearance; sizes first, then grown runs.
    let mut names: Vec<(&str, bool)> = Vec::new();
    for grown in [false, true] {
        for r in runs.iter().filter(|r| r.grown == grown) {
            if !names.iter().any(|(n, _)| *n == r.series) {
                names.push((r.series, grown));
            }
        }
    }
    let crowded = names.iter().filter(|(_, g)| *g).count() > CROWDED;
    let colour = |r: &Plotted<'_>| {
        let same_kind = names.iter().filter(|(_, g)| *g == r.grown);
        let i = same_kind.take_while(|(n, _)| *n != r.series).count();
        if r.grown {
            grown_colour(i)
        } else {
            size_colour(i)
        }
    };
    let root = SVGBackend::new(path, (1000, 620)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut b = ChartBuilder::on(&root);
    b.caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(64);
    // One body for both axes: plotters' log and linear ranges are different types.
    macro_rules! body {
        ($c:expr) => {{
            let mut c = $c;
            c.configure_mesh()
                .x_desc("training FLOPs")
                .y_desc("validation loss")
                .x_labels(8)
                .y_labels(8)
                .x_label_formatter(&sci)
                .y_label_formatter(&|y: &f64| format!("{y:.2}"))
                .label_style(("sans-serif", 16))
                .axis_desc_style(("sans-serif", 17))
                .bold_line_style(RGBColor(228, 228, 228))
                .light_line_style(TRANSPARENT)
                .draw()?;
            // Sizes first, grown runs over them.
            for grown in [false, true] {
                for r in runs.iter().filter(|r| r.grown == grown) {
                    let col = colour(r);
                    let pts: Vec<(f64, f64)> = r
                        .curve
                        .points
                        .iter()
                        .filter(|p| p.cost[0] > 0.0)
                        .map(|p| (p.cost[0], p.loss))
                        .collect();
                    let style = col.stroke_width(if grown { 3 } else { 2 });
                    for piece in cut(&pts, ymin, ymax, log_x) {
                        c.draw_series(LineSeries::new(piece, style))?;
                    }
                    if let Some(&last) = pts.last().filter(|p| p.1 >= ymin && p.1 <= ymax) {
                        c.draw_series(std::iter::once(Circle::new(last, 3, col.filled())))?;
                    }
                    for (step, at) in growth_marks(r.curve) {
                        if at.1 < ymin || at.1 > ymax {
                            continue;
                        }
                        let size = if grown { 7 } else { 5 };
                        c.draw_series(std::iter::once(Circle::new(at, size, WHITE.filled())))?;
                        c.draw_series(std::iter::once(Circle::new(at, size, col.stroke_width(2))))?;
                        if grown && !crowded {
                            // Up and to the right of its mark, clear of the curve.
                            let font = ("sans-serif", 14).into_font().color(&col);
                            let text = Text::new(format!("grew at {step}"), (9, -20), font);
                            c.draw_series(std::iter::once(EmptyElement::at(at) + text))?;
                        }
                    }
                }
            }
            if let Some(e) = env {
                let pts: Vec<(f64, f64)> = e.points.iter().map(|p| (p.flops, p.loss)).collect();
                let line: Vec<(f64, f64)> = e.curve();
                for piece in cut(&line, ymin, ymax, true) {
                    c.draw_series(LineSeries::new(piece, BLACK.stroke_width(3)))?;
                }
                // Sizes whose cheapest budgets differ by a few steps' FLOPs each lead the
                // envelope for an instant before the line starts; their dots would float
                // off it, unlabelled.
                let start = line.first().map_or(f64::INFINITY, |p| p.0);
                let inside = pts.into_iter().filter(|p| p.0 >= start && p.1 >= ymin && p.1 <= ymax);
                c.draw_series(inside.map(|p| Circle::new(p, 5, BLACK.filled())))?;
            }
            // The legend: one line per size and per grown run, then the frontier.
            for (name, grown) in &names {
                let Some(r) = runs.iter().find(|r| r.series == *name).filter(|_| !(crowded && *grown)) else {
                    continue;
                };
                let col = colour(r);
                let w = if *grown { 3 } else { 2 };
                c.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                    .label(*name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], col.stroke_width(w)));
            }
            if crowded {
                let n = names.iter().filter(|(_, g)| *g).count();
                let dark = RGBColor(90, 90, 90);
                c.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                    .label(format!("{n} grown runs (bold, one colour each)"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], dark.stroke_width(3)));
            }
            if env.is_some() {
                c.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                    .label("frontier (best size from scratch)")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], BLACK.stroke_width(3)));
            }
            c.configure_series_labels()
                // Loss falls with FLOPs: the lower left is where no curve runs.
                .position(SeriesLabelPosition::LowerLeft)
                .label_font(("sans-serif", 14))
                .background_style(WHITE.mix(0.9))
                .border_style(RGBColor(160, 160, 160))
                .draw()?;
        }};
    }
    if log_x {
        let (lo, hi) = (xmin * 0.9, xmax * 1.1);
        body!(b.build_cartesian_2d(
            (lo..hi).log_scale().with_key_points(super::log_ticks(lo, hi)),
            ymin..ymax
        )?);
    } else {
        body!(b.build_cartesian_2d(0.0..xmax * 1.02, ymin..ymax)?);
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_curve_is_cut_where_it_crosses_the_axis_bounds() {
        // Linear x: from 3 down to 0 across the band [1, 2], with a spike back to 5.
        let pts = [(0.0, 3.0), (1.0, 1.5), (2.0, 0.0), (3.0, 1.5), (4.0, 5.0), (5.0, 1.0)];
        let got = cut(&pts, 1.0, 2.0, false);
        // (0,3)->(1,1.5) enters at y=2, x=2/3; (1,1.5)->(2,0) leaves at y=1, x=4/3;
        // (2,0)->(3,1.5) enters at x=2+2/3; (3,1.5)->(4,5) leaves at y=2, x=3+1/7;
        // (4,5)->(5,1) enters at y=2, x=4.75 and ends inside at (5,1).
        let want: Vec<Vec<(f64, f64)>> = vec![
            vec![(2.0 / 3.0, 2.0), (1.0, 1.5), (4.0 / 3.0, 1.0)],
            vec![(2.0 + 2.0 / 3.0, 1.0), (3.0, 1.5), (3.0 + 1.0 / 7.0, 2.0)],
            vec![(4.75, 2.0), (5.0, 1.0)],
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.len(), w.len(), "{got:?}");
            for (a, b) in g.iter().zip(w) {
                assert!((a.0 - b.0).abs() < 1e-12 && (a.1 - b.1).abs() < 1e-12, "{got:?}");
            }
        }
        // Through the whole band in one step: a two-point piece; a NaN breaks the line.
        assert_eq!(
            cut(&[(0.0, 3.0), (4.0, -1.0)], 1.0, 2.0, false),
            vec![vec![(1.0, 2.0), (2.0, 1.0)]]
        );
        let broken = cut(&[(0.0, 1.5), (1.0, f64::NAN), (2.0, 1.5), (3.0, 1.2)], 1.0, 2.0, false);
        assert_eq!(broken, vec![vec![(0.0, 1.5)], vec![(2.0, 1.5), (3.0, 1.2)]]);
        // Log x: the crossing is interpolated in ln x, at the geometric mean here.
        let log = cut(&[(10.0, 3.0), (1000.0, 1.0)], 0.0, 2.0, true);
        assert!((log[0][0].0 - 100.0).abs() < 1e-9 && log[0][0].1 == 2.0, "{log:?}");
    }

    #[test]
    fn parameter_counts_are_written_in_thousands() {
        assert_eq!(thousands(142_336), "142,336");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
