//! The solver's report (paper §3.2, eq. 1–3, Appendix A): fit the small and target loss
//! curves, predict the optimal growth point and the speed-up, compare with grown runs,
//! and plan a multi-stage growth through middle models (beyond the paper).
//!
//! [`SolveInputs`] names the curves (run directories or CSV files) and the options;
//! [`solve`] returns a typed [`SolveReport`], which serialises to `solve.json`.

use std::path::{Path, PathBuf};

use growlm_solver::{
    empirical_effect, fit, fit_best, plan_stages, Curve, Fit, GrowthProblem, ModelKind, Optimum, Plan, PlanStage,
};
use growlm_train::{read_val_curve, RunConfig, RunDir, Schedule};

pub mod budget;
mod report;
mod text;

pub use report::{write, FitReport, Fits, SolveReport};

use crate::error::Context;
use crate::LabError;

/// Which curve model to fit (eq. 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurveChoice {
    /// The model with the lowest AIC.
    Best,
    /// This model.
    Model(ModelKind),
}

/// How to get Fs/Ft, the small model's FLOPs per step over the target's.
#[derive(Debug, Clone, PartialEq)]
pub enum FlopsRatio {
    /// From the run directories' metrics (CSV curves carry none).
    FromRuns,
    /// Given.
    Given(f64),
    /// From the first stage of one run config and the last stage of another.
    FromConfigs {
        /// The small model's config (its first stage).
        small: PathBuf,
        /// The target's config (its last stage).
        target: PathBuf,
    },
}

/// What to solve.
#[derive(Debug, Clone)]
pub struct SolveInputs {
    /// The small model's curve: a run directory or a CSV `step,val_loss`.
    pub small: PathBuf,
    /// The target model's from-scratch curve.
    pub target: PathBuf,
    /// From-scratch curves of the stages between small and target, in order (run
    /// directories): with them, a multi-stage plan to the target loss.
    pub via: Vec<PathBuf>,
    /// Fs/Ft.
    pub flops_ratio: FlopsRatio,
    /// Loss at which to compare FLOPs (default: the target fit at its last step).
    pub target_loss: Option<f64>,
    /// Last growth step considered (default: twice the small curve's last step).
    pub horizon: Option<f64>,
    /// Fit only points at or before this step. Default: for run directories trained with
    /// a `wsd` schedule, the earliest end of their stable phase, since the curve models
    /// of eq. 1 do not describe the final decay; else every point.
    pub fit_until: Option<f64>,
    /// Curve model.
    pub model: CurveChoice,
    /// |L_s'| threshold per step for the convergence-stage step (paper: 3e-6).
    pub convergence_threshold: f64,
    /// Recovery delay δ in target steps.
    pub delay: f64,
    /// Grown runs (run directories that grew once) for the empirical E.
    pub grown: Vec<PathBuf>,
}

impl SolveInputs {
    /// The small and target curves with every default.
    pub fn new(small: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Self {
        Self {
            small: small.into(),
            target: target.into(),
            via: Vec::new(),
            flops_ratio: FlopsRatio::FromRuns,
            target_loss: None,
            horizon: None,
            fit_until: None,
            model: CurveChoice::Best,
            convergence_threshold: 3e-6,
            delay: 0.0,
            grown: Vec::new(),
        }
    }
}

/// A solve with what its printout and figure need besides the report.
#[derive(Debug, Clone)]
pub struct Solved {
    /// The report.
    pub report: SolveReport,
    /// The curves fitted (small, target).
    pub curves: [Curve; 2],
    /// The fits (small, target).
    pub fit: [Fit; 2],
    /// The optimum (or why there is none).
    pub optimum: Result<Optimum, String>,
    /// Whether `fit_until` came from the runs' wsd stable phase.
    pub stable_phase: bool,
    /// The first and last growth steps considered.
    pub range: [f64; 2],
    /// The stages' names of the plan (small, via…, target).
    pub plan_names: Vec<String>,
    /// Predicted E at each empirical point's growth step.
    pub predicted_at_empirical: Vec<Option<f64>>,
}

/// A curve file or run directory, cut at `until` when given, with its FLOPs per step.
fn read(path: &Path, until: Option<f64>) -> Result<(Curve, Option<f64>), LabError> {
    let what = || path.display().to_string();
    let v = read_val_curve(path)?;
    let mut curve = Curve::new(v.steps, v.losses).context_with(what)?;
    if let Some(step) = until {
        curve = curve
            .until(step)
            .context_with(|| format!("{} up to step {step} (fit_until)", path.display()))?;
    }
    Ok((curve, v.flops_per_step))
}

fn config_flops(path: &Path, last: bool) -> Result<f64, LabError> {
    let cfg = RunConfig::from_file(path)?;
    let stage = if last { cfg.stages.last() } else { cfg.stages.first() }
        .ok_or_else(|| LabError::Invalid(format!("{}: the config has no stages", path.display())))?;
    Ok(stage.model.flops_per_step(cfg.train.batch_size, cfg.train.seq_len))
}

/// Fits `curve` with the model chosen.
pub fn fit_curve(curve: &Curve, model: CurveChoice) -> Result<Fit, LabError> {
    Ok(match model {
        CurveChoice::Best => fit_best(curve, 0.95)?.remove(0),
        CurveChoice::Model(m) => fit(curve, m, 0.95)?,
    })
}

/// (Gb, steps after growth, final loss) of a grown run directory.
fn grown_run(dir: &Path) -> Result<(f64, f64, f64), LabError> {
    let run = RunDir::new(dir);
    let events = run.events().context_with(|| format!("grown run {}", dir.display()))?;
    let gb = events
        .first()
        .ok_or_else(|| LabError::Invalid(format!("{} never grew (events.jsonl is empty)", dir.display())))?
        .step as f64;
    let rows = run.metrics()?;
    let last = rows
        .iter()
        .rev()
        .find(|r| r.val_loss.is_some())
        .ok_or_else(|| LabError::Invalid(format!("{} has no validation loss", dir.display())))?;
    Ok((gb, last.step as f64 - gb, last.val_loss.unwrap_or(f64::NAN)))
}

/// The last step of the stable phase of a run directory trained with a `wsd` schedule.
pub fn wsd_stable_end(path: &Path) -> Result<Option<f64>, LabError> {
    let run = RunDir::new(path);
    if !run.file(RunDir::CONFIG).is_file() {
        return Ok(None);
    }
    let train = run.config()?.train;
    Ok((train.schedule == Schedule::Wsd).then(|| (train.max_steps - train.decay_len()) as f64))
}

/// Fits, solves and plans.
pub fn solve(a: &SolveInputs) -> Result<Solved, LabError> {
    let mut fit_until = a.fit_until;
    let mut stable_phase = false;
    if fit_until.is_none() {
        let ends: Vec<Option<f64>> = [&a.small, &a.target]
            .into_iter()
            .chain(&a.via)
            .map(|p| wsd_stable_end(p))
            .collect::<Result<_, _>>()?;
        fit_until = ends.into_iter().flatten().reduce(f64::min);
        stable_phase = fit_until.is_some();
    }
    let ((small, small_fps), (target, target_fps)) = (read(&a.small, fit_until)?, read(&a.target, fit_until)?);
    let ratio = match &a.flops_ratio {
        FlopsRatio::Given(r) if *r > 0.0 && r.is_finite() => *r,
        FlopsRatio::Given(r) => return Err(LabError::Invalid(format!("the FLOPs ratio must be positive, got {r}"))),
        FlopsRatio::FromConfigs { small, target } => config_flops(small, false)? / config_flops(target, true)?,
        FlopsRatio::FromRuns => match (small_fps, target_fps) {
            (Some(s), Some(t)) => s / t,
            _ => {
                return Err(LabError::Invalid(
                    "CSV curves carry no FLOPs: give the FLOPs ratio, or the small and target configs".into(),
                ))
            }
        },
    };
    let (fs, ft) = (fit_curve(&small, a.model)?, fit_curve(&target, a.model)?);
    let last_small = *small.steps.last().unwrap_or(&1.0);
    let horizon = a.horizon.unwrap_or(2.0 * last_small);
    let lo = small.steps[0].max(1.0);
    let target_loss = a
        .target_loss
        .unwrap_or_else(|| ft.value(*target.steps.last().unwrap_or(&1.0)));
    let problem = GrowthProblem {
        small: fs.clone(),
        target: ft.clone(),
        flops_small: ratio,
        flops_target: 1.0,
        delay: a.delay,
    };
    let optimum = problem.optimum(lo, horizon, target_loss).map_err(|e| e.to_string());
    let convergence = problem.convergence_step(a.convergence_threshold, horizon * 10.0);
    let effect = problem.effect_curve(lo, horizon, 100);
    let grown: Vec<(f64, f64, f64)> = a.grown.iter().map(|d| grown_run(d)).collect::<Result<_, _>>()?;
    let empirical = empirical_effect(&ft, &grown);
    let predicted_at_empirical = empirical.iter().map(|[g, _]| problem.effect(*g)).collect();
    // A plan that cannot be made is reported beside the two-stage result, not instead of it.
    let mut plan_names = Vec::new();
    let plan = (!a.via.is_empty()).then(|| {
        let ends = [(&fs, small_fps), (&ft, target_fps)];
        plan(a, fit_until, ends, target_loss, &mut plan_names).map_err(|e| crate::chain(&e))
    });
    let gb_ci = fs.delta_ci(|p| {
        let mut q = problem.clone();
        q.small.params.iter_mut().zip(p).for_each(|(a, b)| a.1 = *b);
        q.optimal_by_root(lo, horizon).ok()
    });
    let report = SolveReport {
        plan: plan.as_ref().and_then(|p| p.as_ref().ok()).cloned(),
        plan_error: plan.and_then(|p| p.err()),
        optimal_growth_step: optimum.as_ref().ok().map(|o| o.by_root),
        optimal_growth_step_ci: gb_ci,
        optimal_growth_step_by_flops: optimum.as_ref().ok().map(|o| o.by_flops),
        flops_ratio: ratio,
        convergence_step: convergence,
        convergence_threshold: a.convergence_threshold,
        predicted_speedup: optimum.as_ref().ok().map(|o| o.speedup),
        target_loss,
        fit_until,
        error: optimum.as_ref().err().cloned(),
        note: optimum.as_ref().ok().and_then(|o| o.note.clone()),
        fits: Fits {
            small: (&fs).into(),
            target: (&ft).into(),
        },
        effect_conversion_rate: effect,
        empirical_effect_conversion_rate: empirical,
    };
    Ok(Solved {
        report,
        curves: [small, target],
        fit: [fs, ft],
        optimum,
        stable_phase,
        range: [lo, horizon],
        plan_names,
        predicted_at_empirical,
    })
}

/// The multi-stage plan small → via… → target to `target_loss`, with the small and target
/// fits already made (and their FLOPs per step); `names` gets the stages' names.
fn plan(
    a: &SolveInputs,
    until: Option<f64>,
    ends: [(&Fit, Option<f64>); 2],
    target_loss: f64,
    names: &mut Vec<String>,
) -> Result<Plan, LabError> {
    let flops = |path: &Path, per_step: Option<f64>| {
        per_step.ok_or_else(|| {
            LabError::Invalid(format!(
                "every stage needs a run directory, whose metrics carry FLOPs per step: {} has none",
                path.display()
            ))
        })
    };
    names.push(a.small.display().to_string());
    let mut stages = vec![PlanStage {
        curve: ends[0].0.clone(),
        flops_per_step: flops(&a.small, ends[0].1)?,
    }];
    for v in &a.via {
        let (curve, fps) = read(v, until)?;
        let flops_per_step = flops(v, fps)?;
        let curve = fit_curve(&curve, a.model).context_with(|| format!("middle model {}", v.display()))?;
        names.push(v.display().to_string());
        stages.push(PlanStage { curve, flops_per_step });
    }
    names.push(a.target.display().to_string());
    stages.push(PlanStage {
        curve: ends[1].0.clone(),
        flops_per_step: flops(&a.target, ends[1].1)?,
    });
    Ok(plan_stages(&stages, target_loss)?)
}
