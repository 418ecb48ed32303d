//! The solver's "whether" checked against a frontier experiment: the law `L(N, D)` fitted to
//! every size run of every seed ([`growlm_solver::law`]) predicts each grown run's final
//! loss from its growth step alone (no grown run is fitted), and recommends growing or a
//! size alone at the run's FLOPs. Each arm is then compared with what was measured:
//! the loss within 0.01, and the recommendation against the measured iso-FLOP gap's
//! interval (issue "where growth pays", item 3). Beside it, the law anchored at its runs
//! with a growth transfer ([`growlm_solver::transfer`]) fitted to the other arms' runs:
//! each arm is predicted without its own runs (leave one arm out).

use std::path::Path;

use growlm_solver::{
    Anchored, GrownPoint, GrowthLaw, GrowthPair, LawFit, LossModel, ScalingLaw, SizeCost, Transfer, TransferFit,
};
use growlm_train::RunDir;
use serde::Serialize;

use super::{FrontierArm, Job};
use crate::solve::budget::{growth_pair, law_points};
use crate::stats::Interval;
use crate::LabError;

/// What the measurement says is best at an arm's FLOPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Measured {
    /// Growth beat the frontier (the gap's interval below 0; one seed: its gap below 0).
    Grow,
    /// A size alone did better (the interval above 0).
    Alone,
    /// No difference at this n (the interval covers 0): either answer agrees.
    NoDifference,
}

/// One arm (at one budget) predicted and measured.
#[derive(Debug, Clone, Serialize)]
pub struct LawCell {
    /// The arm's label.
    pub arm: String,
    /// Predicted final loss (mean over its runs, each from its own growth step).
    pub predicted: f64,
    /// Measured final loss over the seeds.
    pub measured: Interval,
    /// `predicted − measured mean`.
    pub error: f64,
    /// Whether the law recommends growing at this arm's FLOPs (its growth beats every size
    /// alone there).
    pub predicted_grow: bool,
    /// The best size alone at those FLOPs by the law.
    pub best_alone: String,
    /// What the measured gap says.
    pub measured_best: Measured,
    /// The recommendation agrees with the measurement (within its interval).
    pub agrees: bool,
    /// The anchored law's prediction with a transfer fitted to the other arms' runs
    /// (`None` where they are fewer than 2).
    pub calibrated: Option<Calibrated>,
}

/// An arm predicted by the anchored law with a transfer fitted to every other arm.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Calibrated {
    /// Predicted final loss (mean over its runs).
    pub predicted: f64,
    /// `predicted − measured mean`.
    pub error: f64,
    /// Whether it recommends growing at the arm's FLOPs.
    pub predicted_grow: bool,
    /// The recommendation agrees with the measurement.
    pub agrees: bool,
}

/// The law's fit and its predictions of the arms.
#[derive(Debug, Clone, Serialize)]
pub struct LawCheck {
    /// The law, fitted to every size run of every seed.
    pub fit: LawFit,
    /// Each arm that grew.
    pub cells: Vec<LawCell>,
    /// Arms predicted within 0.01 of the measured mean loss.
    pub within: usize,
    /// Arms whose recommendation agrees with the measurement.
    pub agree: usize,
    /// The transfer fitted to the runs of every arm checked here, those measured against
    /// the frontier (reported; each arm's calibrated prediction leaves its own runs out).
    pub transfer: Option<TransferFit>,
    /// Arms with a calibrated prediction.
    pub calibrated: usize,
    /// Of them, predicted within 0.01.
    pub within_calibrated: usize,
    /// Of them, recommending what the measurement says.
    pub agree_calibrated: usize,
}

/// One grown run as the law sees it: its growth, its budget and its measured loss.
struct GrownRun {
    pair: GrowthPair,
    grow_at: u64,
    steps: u64,
    loss: f64,
}

impl GrownRun {
    /// The run as a transfer's fit sees it.
    fn point(&self) -> GrownPoint {
        self.pair.measured(self.grow_at, self.steps, self.loss)
    }

    /// The prediction of `model` and whether it beats every size alone at the run's FLOPs
    /// (`None` without sizes), with the best size alone's name.
    fn predict(&self, model: &dyn LossModel, costs: &[SizeCost]) -> (f64, Option<(bool, String)>) {
        let o = self.pair.grown(model, self.grow_at, self.steps);
        let alone = costs
            .iter()
            .map(|c| self.pair.alone(model, c, o.flops))
            .min_by(|x, y| x.loss.total_cmp(&y.loss));
        let rec = alone.map(|b| (o.loss < b.loss, b.name.trim_end_matches(" alone").to_string()));
        (o.loss, rec)
    }
}

/// The mean prediction of `runs` by `model`, whether most of them grow, and the last best
/// size alone.
fn predict_arm(runs: &[&GrownRun], model: &dyn LossModel, costs: &[SizeCost]) -> (f64, bool, String) {
    let (mut sum, mut grow, mut seen, mut best) = (0.0, 0, 0, String::new());
    for r in runs {
        let (loss, rec) = r.predict(model, costs);
        sum += loss;
        if let Some((g, name)) = rec {
            grow += usize::from(g);
            seen += 1;
            best = name;
        }
    }
    (sum / runs.len() as f64, grow * 2 > seen, best)
}

/// Fits the law to the done size runs of `jobs` and predicts each grown arm of `arms`: by
/// loss matching, and by the anchored law with a transfer fitted to every other arm's runs
/// (leave one arm out; [`growlm_solver::transfer`]).
pub(crate) fn check(dir: &Path, jobs: &[Job], arms: &[FrontierArm]) -> Result<Option<LawCheck>, LabError> {
    let done = |j: &&Job| RunDir::new(dir.join(&j.name)).is_done();
    let sizes: Vec<(String, RunDir)> = jobs
        .iter()
        .filter(|j| j.is_reference())
        .filter(done)
        .map(|j| (j.name.clone(), RunDir::new(dir.join(&j.name))))
        .collect();
    let (points, costs) = law_points(&sizes)?;
    let Ok(fit) = ScalingLaw::fit(&points) else {
        return Ok(None);
    };
    let anchored = Anchored::new(fit.law, &points);
    // Each grown arm with its finished runs and what the measurement says.
    let mut grown: Vec<(&FrontierArm, Measured, Vec<GrownRun>)> = Vec::new();
    for a in arms.iter().filter(|a| a.growth_factor.is_some()) {
        let Some(gap) = &a.iso_flop_gap else { continue };
        let measured_best = Measured::of(gap);
        let mut runs = Vec::new();
        for j in jobs
            .iter()
            .filter(|j| !j.is_reference() && j.id.label() == a.arm)
            .filter(done)
        {
            let s = RunDir::new(dir.join(&j.name)).summary()?;
            let Some(&g) = s.growth_steps.first() else { continue };
            runs.push(GrownRun {
                pair: growth_pair(&j.cfg)?,
                loss: s.final_val_loss,
                grow_at: g,
                steps: s.steps,
            });
        }
        if !runs.is_empty() {
            grown.push((a, measured_best, runs));
        }
    }
    let fit_without = |skip: Option<usize>| {
        let others: Vec<GrownPoint> = grown
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip)
            .flat_map(|(_, (_, _, runs))| runs.iter().map(GrownRun::point))
            .collect();
        Transfer::fit(&anchored, &others).ok()
    };
    let mut cells = Vec::new();
    for (i, (a, measured_best, runs)) in grown.iter().enumerate() {
        let runs: Vec<&GrownRun> = runs.iter().collect();
        let (predicted, predicted_grow, best_alone) = predict_arm(&runs, &fit.law, &costs);
        let calibrated = fit_without(Some(i)).map(|t| {
            let model = GrowthLaw {
                law: anchored.clone(),
                transfer: t.transfer,
            };
            let (loss, grow, _) = predict_arm(&runs, &model, &costs);
            Calibrated {
                predicted: loss,
                error: loss - a.final_val_loss.mean,
                predicted_grow: grow,
                agrees: measured_best.agrees(grow),
            }
        });
        cells.push(LawCell {
            arm: a.arm.clone(),
            predicted,
            measured: a.final_val_loss,
            error: predicted - a.final_val_loss.mean,
            predicted_grow,
            best_alone,
            measured_best: *measured_best,
            agrees: measured_best.agrees(predicted_grow),
            calibrated,
        });
    }
    let calibrated = || cells.iter().filter_map(|c| c.calibrated.as_ref());
    Ok(Some(LawCheck {
        fit,
        transfer: fit_without(None),
        within: cells.iter().filter(|c| c.error.abs() <= 0.01).count(),
        agree: cells.iter().filter(|c| c.agrees).count(),
        within_calibrated: calibrated().filter(|c| c.error.abs() <= 0.01).count(),
        agree_calibrated: calibrated().filter(|c| c.agrees).count(),
        calibrated: calibrated().count(),
        cells,
    }))
}
