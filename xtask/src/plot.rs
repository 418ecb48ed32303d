//! `loss.svg`, written into every run directory at the end of `train` (and of each run of
//! an experiment): train and validation loss against step and against FLOPs, growth
//! steps marked.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use growlm::train::{output::read_jsonl, GrowEvent, MetricsRow};
use plotters::prelude::*;

/// Writes `dir/loss.svg` from the run's `metrics.jsonl` and `events.jsonl`; returns its path.
pub fn loss_svg(dir: &Path) -> Result<PathBuf> {
    let rows: Vec<MetricsRow> = read_jsonl(&dir.join("metrics.jsonl"))
        .with_context(|| format!("{}: no readable metrics.jsonl", dir.display()))?;
    let events: Vec<GrowEvent> = read_jsonl(&dir.join("events.jsonl")).unwrap_or_default();
    let path = dir.join("loss.svg");
    draw(&path, &rows, &events).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn draw(path: &Path, rows: &[MetricsRow], events: &[GrowEvent]) -> Result<()> {
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
