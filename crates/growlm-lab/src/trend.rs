//! The trend across scale (issue "growth across scale", item 3; beyond the paper): one arm
//! of each kept frontier experiment, its ×frontier with the 95% interval against the
//! parameters of the model it grows into, one series per corpus. Read from the experiments'
//! `results.json` and the arm's run configs, so that it rebuilds from committed results.

use std::path::{Path, PathBuf};

use growlm_train::RunDir;
use plotters::prelude::*;
use serde::Serialize;

use crate::plot::{svg, Drawn};
use crate::stats::Interval;
use crate::LabError;

/// One experiment's arm on the trend.
#[derive(Debug, Clone, Serialize)]
pub struct TrendPoint {
    /// The experiment directory.
    pub dir: PathBuf,
    /// The arm's label.
    pub arm: String,
    /// The corpus (`sotu`, or the file stem of a path).
    pub corpus: String,
    /// Parameters of the model the arm ends with.
    pub params: usize,
    /// Seeds measured.
    pub seeds: Vec<u64>,
    /// ×frontier over the seeds.
    pub x_frontier: Interval,
    /// The iso-FLOP gap over the seeds.
    pub gap: Option<Interval>,
}

#[derive(serde::Deserialize)]
struct Kept {
    frontier: Option<KeptFrontier>,
}

#[derive(serde::Deserialize)]
struct KeptFrontier {
    arms: Vec<KeptArm>,
}

#[derive(serde::Deserialize)]
struct KeptArm {
    arm: String,
    seeds: Vec<u64>,
    x_frontier: Option<Interval>,
    iso_flop_gap: Option<Interval>,
}

/// `arm` of the frontier experiment kept in `dir` (its `results.json` and the arm's first
/// run's `config.toml`).
pub fn point(dir: &Path, arm: &str) -> Result<TrendPoint, LabError> {
    let file = dir.join("results.json");
    let text = std::fs::read_to_string(&file).map_err(LabError::io(&file))?;
    let bad = |why: String| LabError::Invalid(format!("{}: {why}", file.display()));
    let kept: Kept = serde_json::from_str(&text).map_err(|e| bad(format!("not an experiment's results ({e})")))?;
    let arms = kept
        .frontier
        .ok_or_else(|| bad("has no frontier; give a frontier experiment's directory".into()))?
        .arms;
    let names = || arms.iter().map(|a| a.arm.as_str()).collect::<Vec<_>>().join(", ");
    let a = arms
        .iter()
        .find(|a| a.arm == arm)
        .ok_or_else(|| bad(format!("no arm `{arm}`; its arms: {}", names())))?;
    let x_frontier = a
        .x_frontier
        .ok_or_else(|| bad(format!("arm `{arm}` is outside the frontier on every seed")))?;
    let seed = *a
        .seeds
        .first()
        .ok_or_else(|| bad(format!("arm `{arm}` has no seeds")))?;
    let cfg = RunDir::new(dir.join(crate::experiment::JobId::arm(arm, seed).name())).config()?;
    let corpus = cfg.data.source.as_config_str();
    let corpus = Path::new(&corpus)
        .file_stem()
        .map_or(corpus.clone(), |s| s.to_string_lossy().into_owned());
    let last = cfg
        .stages
        .last()
        .ok_or_else(|| bad(format!("arm `{arm}`'s config has no stages")))?;
    Ok(TrendPoint {
        dir: dir.to_path_buf(),
        arm: arm.to_string(),
        corpus,
        params: last.model.num_params(),
        seeds: a.seeds.clone(),
        x_frontier,
        gap: a.iso_flop_gap,
    })
}

/// Colours of the corpora, in the order they first appear.
const COLOURS: [RGBColor; 4] = [
    RGBColor(33, 102, 172),
    RGBColor(178, 24, 43),
    RGBColor(27, 120, 55),
    RGBColor(118, 42, 131),
];

/// Writes the trend of `points` to `path`: ×frontier (mean, 95% interval) against the
/// grown model's parameters on a log axis, a colour per corpus named in the legend, the
/// line ×1 (no saving) dashed.
pub fn trend_svg(path: &Path, title: &str, points: &[TrendPoint]) -> Result<(), LabError> {
    svg(path, || draw(path, title, points))
}

fn draw(path: &Path, title: &str, points: &[TrendPoint]) -> Drawn {
    let mut corpora: Vec<&str> = Vec::new();
    for p in points {
        if !corpora.contains(&p.corpus.as_str()) {
            corpora.push(&p.corpus);
        }
    }
    let (lo, hi) = points.iter().fold((f64::INFINITY, 0f64), |(lo, hi), p| {
        let n = p.params as f64;
        (lo.min(n), hi.max(n))
    });
    let (lo, hi) = if lo.is_finite() {
        (lo / 2.0, hi * 2.0)
    } else {
        (1e4, 1e6)
    };
    let (ylo, yhi) = points.iter().fold((0.9f64, 1.1f64), |(a, b), p| {
        let [l, h] = p.x_frontier.ci.unwrap_or([p.x_frontier.mean; 2]);
        (a.min(l), b.max(h))
    });
    let pad = 0.08 * (yhi - ylo);
    let mut sizes: Vec<f64> = points.iter().map(|p| p.params as f64).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    let root = SVGBackend::new(path, (640, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        // A tick at each grown model's size: the points are what the axis is read for.
        .build_cartesian_2d((lo..hi).log_scale().with_key_points(sizes), (ylo - pad)..(yhi + pad))?;
    c.configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_desc("parameters of the grown model")
        .y_desc("×frontier (95% CI)")
        .x_label_formatter(&|x| format!("{:.1}k", x / 1e3))
        .label_style(("sans-serif", 14))
        .draw()?;
    c.draw_series(DashedLineSeries::new(
        [(lo, 1.0), (hi, 1.0)],
        6,
        4,
        BLACK.mix(0.6).stroke_width(1),
    ))?;
    for (k, corpus) in corpora.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        // Series side by side: each corpus nudged along the log axis.
        let nudge = 1.0 + 0.06 * (k as f64 - (corpora.len() as f64 - 1.0) / 2.0);
        let mine: Vec<&TrendPoint> = points.iter().filter(|p| p.corpus == *corpus).collect();
        let at = |p: &TrendPoint| p.params as f64 * nudge;
        // The interval: a vertical bar with caps a few percent wide on the log axis.
        for p in &mine {
            let Some([l, h]) = p.x_frontier.ci else { continue };
            let (x, w) = (at(p), 1.04);
            for seg in [[(x, l), (x, h)], [(x / w, l), (x * w, l)], [(x / w, h), (x * w, h)]] {
                c.draw_series(std::iter::once(PathElement::new(seg.to_vec(), colour.stroke_width(2))))?;
            }
        }
        c.draw_series(
            mine.iter()
                .map(|p| Circle::new((at(p), p.x_frontier.mean), 5, colour.filled())),
        )?
        .label(format!("{corpus} ({} seeds)", seeds_label(&mine)))
        .legend(move |(x, y)| Circle::new((x + 8, y), 5, colour.filled()));
        let mut line: Vec<(f64, f64)> = mine.iter().map(|p| (at(p), p.x_frontier.mean)).collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        c.draw_series(LineSeries::new(line, colour.mix(0.5).stroke_width(1)))?;
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(200, 200, 200))
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}

/// `3` where every point has 3 seeds, else the range (`2–3`).
fn seeds_label(points: &[&TrendPoint]) -> String {
    let (lo, hi) = points.iter().fold((usize::MAX, 0), |(lo, hi), p| {
        (lo.min(p.seeds.len()), hi.max(p.seeds.len()))
    });
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}–{hi}")
    }
}

/// The points as a markdown table: corpus, parameters, seeds, ×frontier and the gap.
pub fn markdown(points: &[TrendPoint]) -> String {
    let mut s = String::from(
        "| corpus | grown model's params | experiment | arm | seeds | ×frontier | iso-FLOP gap |\n|---|---|---|---|---|---|---|\n",
    );
    for p in points {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            p.corpus,
            p.params,
            p.dir.display(),
            p.arm,
            p.seeds.len(),
            p.x_frontier.show(2),
            p.gap.map_or("—".into(), |g| g.show(4)),
        );
    }
    s
}
