//! The solver's "whether" checked against a frontier experiment: the law `L(N, D)` fitted to
//! every size run of every seed ([`growlm_solver::law`]) predicts each grown run's final
//! loss from its growth step alone (no grown run is fitted), and recommends growing or a
//! size alone at the run's FLOPs. Each arm is then compared with what was measured:
//! the loss within 0.01, and the recommendation against the measured iso-FLOP gap's
//! interval (issue "where growth pays", item 3).

use std::path::Path;

use growlm_solver::{LawFit, ScalingLaw};
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
}

/// Fits the law to the done size runs of `jobs` and predicts each grown arm of `arms`.
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
    let mut cells = Vec::new();
    for a in arms.iter().filter(|a| a.growth_factor.is_some()) {
        let runs: Vec<&Job> = jobs
            .iter()
            .filter(|j| !j.is_reference() && j.name.rsplit_once("-s").is_some_and(|(l, _)| l == a.arm))
            .filter(done)
            .collect();
        let mut predicted = Vec::new();
        let mut grow = Vec::new();
        let mut best_alone = String::new();
        for j in &runs {
            let pair = growth_pair(&j.cfg)?;
            let s = RunDir::new(dir.join(&j.name)).summary()?;
            let Some(&g) = s.growth_steps.first() else { continue };
            let o = pair.grown(&fit.law, g, s.steps);
            let alone = costs
                .iter()
                .map(|c| pair.alone(&fit.law, c, o.flops))
                .min_by(|x, y| x.loss.total_cmp(&y.loss));
            if let Some(b) = alone {
                grow.push(o.loss < b.loss);
                best_alone = b.name.trim_end_matches(" alone").to_string();
            }
            predicted.push(o.loss);
        }
        if predicted.is_empty() {
            continue;
        }
        let p = predicted.iter().sum::<f64>() / predicted.len() as f64;
        let predicted_grow = grow.iter().filter(|g| **g).count() * 2 > grow.len();
        let measured_best = match &a.iso_flop_gap {
            Some(i) => match i.ci {
                Some([lo, _]) if lo > 0.0 => Measured::Alone,
                Some([_, hi]) if hi < 0.0 => Measured::Grow,
                Some(_) => Measured::NoDifference,
                None if i.mean < 0.0 => Measured::Grow,
                None => Measured::Alone,
            },
            None => continue,
        };
        let agrees = match measured_best {
            Measured::NoDifference => true,
            Measured::Grow => predicted_grow,
            Measured::Alone => !predicted_grow,
        };
        cells.push(LawCell {
            arm: a.arm.clone(),
            predicted: p,
            measured: a.final_val_loss,
            error: p - a.final_val_loss.mean,
            predicted_grow,
            best_alone,
            measured_best,
            agrees,
        });
    }
    Ok(Some(LawCheck {
        fit,
        within: cells.iter().filter(|c| c.error.abs() <= 0.01).count(),
        agree: cells.iter().filter(|c| c.agrees).count(),
        cells,
    }))
}
