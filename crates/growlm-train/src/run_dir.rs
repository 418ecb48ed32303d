//! A run directory (docs/design.md §Runs): the one place that names a run's files and reads
//! them back as the typed rows the engine writes.
//!
//! A run directory holds `config.toml` (the resolved config), `metrics.jsonl` (one
//! [`MetricsRow`] per step), `events.jsonl` (one [`GrowEvent`] per growth), `summary.json`
//! (a [`Summary`], written last: its presence means the run is done), `checkpoints/`,
//! `snapshots/` and `loss.svg`. Validation curves are read here too, from a run directory
//! or from a CSV file with a `step,val_loss` header (the solver's input, paper §3.2).

use std::path::{Path, PathBuf};

use crate::output::{read_jsonl, GrowEvent, MetricsRow, Summary};
use crate::{RunConfig, TrainError};

/// A run directory's path, with its files named once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// The resolved config's file name.
    pub const CONFIG: &'static str = "config.toml";
    /// The per-step metrics' file name.
    pub const METRICS: &'static str = "metrics.jsonl";
    /// The growth events' file name.
    pub const EVENTS: &'static str = "events.jsonl";
    /// The summary's file name (written last).
    pub const SUMMARY: &'static str = "summary.json";
    /// The loss figure's file name.
    pub const LOSS_SVG: &'static str = "loss.svg";
    /// Written into an experiment arm's directory when it branched from a snapshot.
    pub const BRANCHED_FROM: &'static str = "branched-from";

    /// The run directory at `path` (nothing is read or created).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of one of its files.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Whether the run finished (its `summary.json` and `config.toml` exist).
    pub fn is_done(&self) -> bool {
        self.file(Self::SUMMARY).is_file() && self.file(Self::CONFIG).is_file()
    }

    /// Whether the run was branched from another run's snapshot.
    pub fn is_branched(&self) -> bool {
        self.file(Self::BRANCHED_FROM).is_file()
    }

    /// Wall seconds this run spent itself: its summary's, less what the run it branched
    /// from had spent up to the branch point (the rows it copied).
    pub fn own_wall_s(&self) -> Result<f64, TrainError> {
        let total = self.summary()?.wall_s;
        if !self.is_branched() {
            return Ok(total);
        }
        let path = self.file(Self::BRANCHED_FROM);
        let from = std::fs::read_to_string(&path).map_err(TrainError::io(&path))?;
        let step: u64 = from
            .trim()
            .rsplit("step-")
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| TrainError::Corrupt {
                path: path.clone(),
                reason: format!("`{from}` names no snapshot step"),
            })?;
        let copied = self
            .metrics()?
            .iter()
            .filter(|r| r.step <= step)
            .map(|r| r.wall_s)
            .fold(0.0, f64::max);
        Ok(total - copied)
    }

    /// Every row of `metrics.jsonl`.
    pub fn metrics(&self) -> Result<Vec<MetricsRow>, TrainError> {
        let path = self.file(Self::METRICS);
        if !path.is_file() {
            return Err(TrainError::Corrupt {
                path,
                reason: "not a run directory (no metrics.jsonl); train it first, or check the path".into(),
            });
        }
        read_jsonl(&path)
    }

    /// Every growth of `events.jsonl` (none when the file is absent: a run that never grew
    /// before its first write).
    pub fn events(&self) -> Result<Vec<GrowEvent>, TrainError> {
        let path = self.file(Self::EVENTS);
        if path.is_file() {
            read_jsonl(&path)
        } else {
            Ok(Vec::new())
        }
    }

    /// The run's `summary.json`.
    pub fn summary(&self) -> Result<Summary, TrainError> {
        let path = self.file(Self::SUMMARY);
        let bytes = std::fs::read(&path).map_err(TrainError::io(&path))?;
        serde_json::from_slice(&bytes).map_err(|e| TrainError::Corrupt {
            path,
            reason: e.to_string(),
        })
    }

    /// The run's resolved `config.toml`.
    pub fn config(&self) -> Result<RunConfig, TrainError> {
        RunConfig::from_file(&self.file(Self::CONFIG))
    }

    /// The run's validation curve with its costs and growths.
    pub fn curve(&self) -> Result<RunCurve, TrainError> {
        let rows = self.metrics()?;
        RunCurve::from_rows(&rows, &self.events()?).map_err(|reason| TrainError::Corrupt {
            path: self.file(Self::METRICS),
            reason,
        })
    }
}

/// One evaluation of a run: its validation loss and what it cost so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalPoint {
    /// Steps completed.
    pub step: u64,
    /// Validation loss.
    pub loss: f64,
    /// Cumulative cost: FLOPs, tokens and wall seconds, in that order.
    pub cost: [f64; 3],
}

/// A run's validation curve, its cost at the end and its growths.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCurve {
    /// Evaluations, oldest first (at least one).
    pub points: Vec<EvalPoint>,
    /// Steps at the end of the run.
    pub steps: u64,
    /// Cost at the end of the run: FLOPs, tokens and wall seconds.
    pub total: [f64; 3],
    /// Each growth: its step, the FLOPs spent when it grew and the loss just after.
    pub growths: Vec<(u64, f64, f64)>,
}

impl RunCurve {
    /// The curve of `rows` (a run's metrics) with the growths of `events`; an error names
    /// what is missing.
    pub fn from_rows(rows: &[MetricsRow], events: &[GrowEvent]) -> Result<Self, String> {
        let cost = |r: &MetricsRow| [r.flops, r.tokens as f64, r.wall_s];
        let last = rows.last().ok_or("metrics.jsonl is empty")?;
        let points: Vec<EvalPoint> = rows
            .iter()
            .filter_map(|r| {
                r.val_loss.map(|loss| EvalPoint {
                    step: r.step,
                    loss,
                    cost: cost(r),
                })
            })
            .collect();
        if points.is_empty() {
            return Err("no validation loss was measured".into());
        }
        let growths = events
            .iter()
            .filter_map(|e| {
                rows.iter()
                    .find(|r| r.step == e.step)
                    .map(|r| (e.step, r.flops, e.loss_after))
            })
            .collect();
        Ok(Self {
            points,
            steps: last.step,
            total: cost(last),
            growths,
        })
    }

    /// The final evaluation's loss.
    pub fn final_loss(&self) -> f64 {
        self.points.last().map_or(f64::NAN, |p| p.loss)
    }

    /// Training FLOPs per step, averaged over the run.
    pub fn flops_per_step(&self) -> f64 {
        self.total[0] / self.steps.max(1) as f64
    }
}

/// A validation curve as the solver reads it (paper §3.2, eq. 1): steps and losses, with
/// the FLOPs per step when the source records them (run directories do, CSV files do not).
#[derive(Debug, Clone, PartialEq)]
pub struct ValCurve {
    /// Steps of the evaluations.
    pub steps: Vec<f64>,
    /// Validation losses.
    pub losses: Vec<f64>,
    /// Training FLOPs per step (cumulative FLOPs at the last row ÷ its step).
    pub flops_per_step: Option<f64>,
}

/// Reads the validation curve at `path`: a run directory (the rows of `metrics.jsonl`
/// with a validation loss) or a CSV file whose header names `step` and `val_loss`.
pub fn read_val_curve(path: &Path) -> Result<ValCurve, TrainError> {
    if path.is_dir() {
        let rows = RunDir::new(path).metrics()?;
        let flops_per_step = rows.last().filter(|r| r.step > 0).map(|r| r.flops / r.step as f64);
        let (steps, losses) = rows
            .iter()
            .filter_map(|r| r.val_loss.map(|l| (r.step as f64, l)))
            .unzip();
        return Ok(ValCurve {
            steps,
            losses,
            flops_per_step,
        });
    }
    let bad = |reason: String| TrainError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .map_or(vec![], |(_, h)| h.split(',').map(str::trim).collect());
    let column = |name: &str| header.iter().position(|c| *c == name);
    let (Some(si), Some(li)) = (column("step"), column("val_loss")) else {
        return Err(bad(format!(
            "the CSV header must name the columns `step` and `val_loss`, found {header:?}"
        )));
    };
    let (mut steps, mut losses) = (Vec::new(), Vec::new());
    for (i, line) in lines {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let num = |j: usize| {
            f.get(j)
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| bad(format!("line {}: not a number in `{line}`", i + 1)))
        };
        steps.push(num(si)?);
        losses.push(num(li)?);
    }
    Ok(ValCurve {
        steps,
        losses,
        flops_per_step: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(step: u64, val: Option<f64>) -> MetricsRow {
        MetricsRow {
            step,
            tokens: step * 10,
            flops: step as f64 * 100.0,
            wall_s: step as f64 / 10.0,
            train_loss: 3.0,
            val_loss: val,
            lr: 0.1,
            stage: 0,
            width_active: 1.0,
            grad_norm: 1.0,
            skipped: 0,
        }
    }

    #[test]
    fn a_curve_keeps_the_evaluations_the_end_and_the_growths() {
        let rows = [
            row(1, None),
            row(2, Some(4.0)),
            row(3, None),
            row(4, Some(3.0)),
            row(5, None),
        ];
        let event = GrowEvent {
            event: "grow".into(),
            step: 3,
            from_stage: 0,
            to_stage: 1,
            operator: "x".into(),
            params_before: 1,
            params_after: 2,
            loss_before: 3.5,
            loss_after: 3.25,
        };
        let c = RunCurve::from_rows(&rows, &[event]).unwrap();
        assert_eq!(c.points.len(), 2);
        assert_eq!(c.points[1].cost, [400.0, 40.0, 0.4]);
        assert_eq!((c.steps, c.total), (5, [500.0, 50.0, 0.5]));
        assert_eq!(c.growths, [(3, 300.0, 3.25)]);
        assert_eq!((c.final_loss(), c.flops_per_step()), (3.0, 100.0));
        assert!(RunCurve::from_rows(&rows[..1], &[])
            .unwrap_err()
            .contains("no validation"));
        assert!(RunCurve::from_rows(&[], &[]).unwrap_err().contains("empty"));
    }

    #[test]
    fn a_run_directory_and_a_csv_give_the_same_curve() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        std::fs::create_dir(run.path()).unwrap();
        let text: String = [row(1, None), row(2, Some(4.0)), row(4, Some(3.0))]
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        std::fs::write(run.file(RunDir::METRICS), text).unwrap();
        let a = read_val_curve(run.path()).unwrap();
        assert_eq!(
            (a.steps.clone(), a.losses.clone(), a.flops_per_step),
            (vec![2.0, 4.0], vec![4.0, 3.0], Some(100.0))
        );
        let csv = dir.path().join("c.csv");
        std::fs::write(&csv, "val_loss, step\n4.0,2\n\n3.0, 4\n").unwrap();
        let b = read_val_curve(&csv).unwrap();
        assert_eq!((b.steps, b.losses, b.flops_per_step), (a.steps, a.losses, None));
        std::fs::write(&csv, "step,loss\n1,2\n").unwrap();
        assert!(read_val_curve(&csv).unwrap_err().to_string().contains("`val_loss`"));
        std::fs::write(&csv, "step,val_loss\n1,x\n").unwrap();
        assert!(read_val_curve(&csv).unwrap_err().to_string().contains("line 2"));
        let e = RunDir::new(dir.path().join("nope")).curve().unwrap_err().to_string();
        assert!(e.contains("not a run directory"), "{e}");
        assert!(!run.is_done() && run.events().unwrap().is_empty());
    }
}
