//! A pre-registered prediction against the measured arms (beyond the paper; docs/solver.md,
//! "Pre-registering a new scale"). `solve --budget-steps … --transfer μ,R --grow-at … --json
//! FILE`, run on a scale's sizes before any of its grown runs exist and committed, names the
//! experiment's growth steps with a predicted final loss and ×frontier each. Once the arms
//! are measured, each is set beside the prediction for its growth step: the loss error, the
//! ×frontier error, and whether "grow or a size alone" was right against the measured
//! iso-FLOP gap's interval. The file's first commit is the proof of order.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::frontier::FrontierArm;
use super::law::Measured;
use super::results::RunResult;
use crate::stats::Interval;
use crate::LabError;

/// One option of a prediction file, as `solve --budget --json` writes it.
#[derive(Debug, Clone, Deserialize)]
struct Predicted {
    grow_at: Option<u64>,
    steps: u64,
    loss: f64,
    #[serde(default)]
    x_frontier: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct PredictedAnswer {
    best_growth: Predicted,
    recommended: PredictedRecommendation,
}

#[derive(Debug, Deserialize)]
struct PredictedRecommendation {
    name: String,
}

#[derive(Debug, Deserialize)]
struct PredictionFile {
    answer: PredictedAnswer,
    #[serde(default)]
    at: Vec<Predicted>,
}

/// One grown arm, predicted before it ran and measured.
#[derive(Debug, Clone, Serialize)]
pub struct PreregisteredCell {
    /// The arm's label.
    pub arm: String,
    /// The growth steps its runs took (one per seed, ascending, distinct).
    pub grew_at: Vec<u64>,
    /// The predicted growth steps set beside them (the same where the file names them).
    pub predicted_at: Vec<u64>,
    /// Every run's growth step is one the file predicted.
    pub exact: bool,
    /// Predicted final loss (mean over its runs' predicted steps).
    pub predicted: f64,
    /// Measured final loss over the seeds.
    pub measured: Interval,
    /// `predicted − measured mean`.
    pub error: f64,
    /// Predicted ×frontier (mean over its runs' predicted steps), if the file has it.
    pub predicted_x: Option<f64>,
    /// Measured ×frontier over the seeds inside the envelope.
    pub measured_x: Option<Interval>,
    /// `predicted_x − measured mean`.
    pub x_error: Option<f64>,
    /// The prediction says growth beats every size alone (×frontier above 1).
    pub predicted_grow: bool,
    /// What the measured iso-FLOP gap says.
    pub measured_best: Measured,
    /// The prediction agrees with the measurement (any answer agrees with "no difference").
    pub right: bool,
}

/// The comparison of a committed prediction with the measured arms.
#[derive(Debug, Clone, Serialize)]
pub struct Preregistered {
    /// The prediction file, as the experiment names it.
    pub file: PathBuf,
    /// The commit that first added it and its date (`git log`), where git knows it.
    pub committed: Option<String>,
    /// The prediction's recommendation (`grow at G` or `SIZE alone`) and best growth step.
    pub recommended: String,
    /// Its best growth step.
    pub best_at: Option<u64>,
    /// Each grown arm.
    pub cells: Vec<PreregisteredCell>,
    /// Arms predicted within 0.01 of the measured mean loss.
    pub within: usize,
    /// Arms whose "grow or a size alone" was right.
    pub right: usize,
}

impl Measured {
    /// What an iso-FLOP gap over the seeds says: below 0 (its interval, or its one value),
    /// above 0, or an interval that covers 0.
    pub fn of(gap: &Interval) -> Self {
        match gap.ci {
            Some([lo, _]) if lo > 0.0 => Measured::Alone,
            Some([_, hi]) if hi < 0.0 => Measured::Grow,
            Some(_) => Measured::NoDifference,
            None if gap.mean < 0.0 => Measured::Grow,
            None => Measured::Alone,
        }
    }

    /// Whether predicting growth (`grow`) or a size alone agrees with this.
    pub fn agrees(self, grow: bool) -> bool {
        match self {
            Measured::NoDifference => true,
            Measured::Grow => grow,
            Measured::Alone => !grow,
        }
    }
}

/// The first commit that added `path`, short hash and date, if git knows it.
fn first_commit(path: &Path) -> Option<String> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name()?;
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(["log", "--diff-filter=A", "--format=%h %cI", "--"])
        .arg(name)
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().last().map(str::to_string)
}

/// Sets the prediction in `file` (`shown` is how the experiment names it) beside the grown
/// arms of `arms`, whose runs are `runs`. Arms without a measured gap, or of another budget
/// than the prediction's, are left out.
pub(crate) fn compare(
    file: &Path,
    shown: &Path,
    arms: &[FrontierArm],
    runs: &[RunResult],
) -> Result<Preregistered, LabError> {
    let text = std::fs::read_to_string(file).map_err(LabError::io(file))?;
    let p: PredictionFile = serde_json::from_str(&text).map_err(|e| {
        LabError::Invalid(format!(
            "{}: not a prediction written by `solve --budget --json` ({e}); write it with `solve --budget-steps N --grow-at … --json FILE`",
            file.display()
        ))
    })?;
    let options: Vec<(u64, &Predicted)> =
        p.at.iter()
            .chain([&p.answer.best_growth])
            .filter_map(|o| Some((o.grow_at?, o)))
            .collect();
    if options.is_empty() {
        return Err(LabError::Invalid(format!(
            "{}: the prediction names no growth step; give `solve` `--grow-at` with the arms' steps",
            file.display()
        )));
    }
    let mut cells = Vec::new();
    for a in arms.iter().filter(|a| a.growth_factor.is_some()) {
        let Some(gap) = &a.iso_flop_gap else { continue };
        // Only the arms of the budget predicted.
        let mine: Vec<(u64, &Predicted)> = options
            .iter()
            .filter(|(_, o)| a.budget.is_none_or(|b| b == o.steps))
            .copied()
            .collect();
        let nearest = |g: u64| mine.iter().min_by_key(|(at, _)| at.abs_diff(g)).copied();
        let grew: Vec<u64> = runs
            .iter()
            .filter(|r| r.arm == a.arm)
            .filter_map(|r| r.growth_steps.first().copied())
            .collect();
        let Some(chosen) = grew.iter().map(|&g| nearest(g)).collect::<Option<Vec<_>>>() else {
            continue;
        };
        if chosen.is_empty() {
            continue;
        }
        let n = chosen.len() as f64;
        let predicted = chosen.iter().map(|(_, o)| o.loss).sum::<f64>() / n;
        let xs: Vec<f64> = chosen.iter().filter_map(|(_, o)| o.x_frontier).collect();
        let predicted_x = (xs.len() == chosen.len()).then(|| xs.iter().sum::<f64>() / n);
        let predicted_grow = predicted_x.is_some_and(|x| x > 1.0);
        let measured_best = Measured::of(gap);
        let distinct = |mut v: Vec<u64>| {
            v.sort_unstable();
            v.dedup();
            v
        };
        cells.push(PreregisteredCell {
            arm: a.arm.clone(),
            exact: grew.iter().zip(&chosen).all(|(g, (at, _))| g == at),
            grew_at: distinct(grew.clone()),
            predicted_at: distinct(chosen.iter().map(|(at, _)| *at).collect()),
            predicted,
            measured: a.final_val_loss,
            error: predicted - a.final_val_loss.mean,
            predicted_x,
            measured_x: a.x_frontier,
            x_error: predicted_x.zip(a.x_frontier).map(|(p, m)| p - m.mean),
            predicted_grow,
            measured_best,
            right: measured_best.agrees(predicted_grow),
        });
    }
    Ok(Preregistered {
        file: shown.to_path_buf(),
        committed: first_commit(file),
        recommended: p.answer.recommended.name,
        best_at: p.answer.best_growth.grow_at,
        within: cells.iter().filter(|c| c.error.abs() <= 0.01).count(),
        right: cells.iter().filter(|c| c.right).count(),
        cells,
    })
}
