//! The `convergence` policy: grow once the small model enters its convergence stage
//! (paper §3.2 and Appendix A), i.e. once the validation loss has stopped falling — for
//! the run's budget.
//!
//! # The default rule: `budget`
//! What "converged" means depends on how long the run may train: the paper's E(Gb) = Fs/Ft
//! point (eq. 3) moves later when there is more compute to spend. The `budget` rule
//! decides from the stage's own curve and the run's step budget `B` (`train.max_steps`),
//! with no scale to tune. After each evaluation at step `N` it fits the solver's power law
//! with an asymptote, `L = c + a·N^−α` (the scaling-law form; an exponential extrapolates
//! to an early plateau and makes the rule fire on noise), to the stage's
//! evaluations in `[N/4, N]` and compares the improvement the fit predicts for the rest of
//! the budget with the improvement of the last half of the steps so far:
//!
//! `g(N) = (L̂(N) − L̂(B)) / (L̂(N/2) − L̂(N))`.
//!
//! It grows once `g < rho` (default 0.25) — the whole 90% confidence interval of `g`
//! (delta method on the fit) below it — at `patience` evaluations in a row: the small
//! model would gain less in all its remaining budget than a quarter of what its last
//! `N/2` steps gave. `g` is dimensionless and invariant to rescaling the steps: for
//! `L = c + a·N^−α` it is `(1 − (N/B)^α)/(2^α − 1)`, so it fires at a fixed fraction of the
//! budget for a given curve shape (≈0.80·B for α = 0.5, where the paper-tiny pair's best
//! growth point lies) whatever the model size, corpus or run length. Fitting three quarters
//! of the stage's evaluations smooths a noisy validation curve, the confidence interval keeps
//! a noisy fit from firing early, and a curve still falling fast relative to its budget has
//! a large `g`. Steps count from the stage's start.
//!
//! # The deadline: `reserve`
//! A grown model needs steps to recover (§3.2: `Nt` must be large enough for the grown
//! model to return to the target's training dynamic; the paper trains 6k steps after
//! growing at 72k). Whatever the rule says, the policy grows at the latest when only
//! `reserve` (default 0.2) of `train.max_steps` is left per stage still to come — step
//! 2400 of 3000 for a two-stage run: the best step of the paper-tiny sweep on SOTU, and
//! within the seeds' spread of the best (3000) on the King James Bible
//! (`docs/when-to-grow.md`). The rule can only make growth earlier. On a pair whose small
//! model is still far from converged within the budget (E above Fs/Ft: continuing the
//! small model pays more than growing, eq. 3), the rule does not fire and the deadline
//! decides; the budget rule fires first when the small model flattens well within the
//! budget.
//!
//! # The `elasticity` rule
//! After each evaluation the slope of the validation loss per step is fitted by least
//! squares over the last `window` evaluations of the current stage, with a Student-t
//! confidence interval (`confidence`, default 0.9). The loss counts as flat when the whole
//! interval lies within ±threshold, so a noisy dip (or spike) cannot trigger growth; after `patience` flat evaluations in a row the policy grows.
//!
//! # The threshold
//! The paper declares GPT-Neo-125M converged at step ~70k, where |L′| < 3e-6 per step with
//! a validation loss near 3.0 (perplexity ≈ 20). A per-step slope depends on the length of
//! the run, so we use the scale-free *elasticity* `e = −L′(N)·N / L(N)`, the relative loss
//! decrease per relative increase in steps (minus the log-log slope). The paper's point
//! gives `e = 3e-6 · 70 000 / 3.0 ≈ 0.07`: doubling the training would cut the loss by
//! about 5%. `threshold` is that elasticity (default 0.07), measured at the centre of the
//! window; `abs_threshold` instead sets the per-step slope directly, as in the paper.

use growlm_policy::{at_least, invalid, parse_params, positive, Decision, Observation, Policy, PolicyError, Registry};
use growlm_solver::fit_line;
use serde::{Deserialize, Serialize};

/// The name this policy is registered under.
pub const NAME: &str = "convergence";

/// Paper's convergence point expressed as an elasticity (see the module docs).
pub const PAPER_ELASTICITY: f64 = 3e-6 * 70_000.0 / 3.0;

/// How the policy decides that the loss has converged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    /// Remaining improvement within the budget against the recent improvement (default).
    Budget,
    /// Elasticity of the recent slope below `threshold` (or `abs_threshold`).
    Elasticity,
}

/// Settings of the convergence policy: the `[policy]` table's keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConvergenceConfig {
    /// The rule: `budget` (default) or `elasticity`.
    pub rule: Rule,
    /// `budget` rule: grow when `g(N)` falls below this.
    pub rho: f64,
    /// `budget` rule: evaluations in `[N/2, N]` needed before deciding.
    pub min_evals: usize,
    /// `elasticity` rule: evaluations in the slope fit.
    pub window: usize,
    /// Consecutive flat evaluations needed.
    pub patience: u64,
    /// `elasticity` rule: elasticity threshold (`−L′·N/L`) [default: the paper's, 0.07].
    pub threshold: Option<f64>,
    /// Per-step slope threshold; replaces `threshold` when set.
    pub abs_threshold: Option<f64>,
    /// Confidence level of the slope interval.
    pub confidence: f64,
    /// Never grow before this step.
    pub min_steps: u64,
    /// The fraction of the run's budget (`train.max_steps`) kept for each later stage: the
    /// policy grows at the latest when only that much is left per stage still to come,
    /// whether or not the rule has fired (0 turns the deadline off).
    pub reserve: f64,
}

impl Default for ConvergenceConfig {
    fn default() -> Self {
        Self {
            rule: Rule::Budget,
            rho: 0.25,
            min_evals: 8,
            window: 6,
            patience: 2,
            threshold: None,
            abs_threshold: None,
            confidence: 0.9,
            min_steps: 0,
            reserve: 0.2,
        }
    }
}

impl ConvergenceConfig {
    /// Checks the ranges; errors name the key.
    pub fn validate(&self) -> Result<(), PolicyError> {
        at_least(NAME, "window", self.window, 3)?;
        if self.rule == Rule::Budget {
            for (key, set) in [
                ("threshold", self.threshold.is_some()),
                ("abs_threshold", self.abs_threshold.is_some()),
            ] {
                if set {
                    return Err(invalid(
                        NAME,
                        key,
                        "applies to the elasticity rule; add `rule = \"elasticity\"` (the default rule, `budget`, needs no threshold)",
                    ));
                }
            }
        }
        positive(NAME, "rho", self.rho)?;
        at_least(NAME, "min_evals", self.min_evals, 4)?;
        if !(0.0..1.0).contains(&self.reserve) {
            return Err(invalid(
                NAME,
                "reserve",
                format!(
                    "must be in [0, 1) (a fraction of train.max_steps), got {}",
                    self.reserve
                ),
            ));
        }
        at_least(NAME, "patience", self.patience, 1)?;
        for (key, v) in [("threshold", self.threshold), ("abs_threshold", self.abs_threshold)] {
            if let Some(v) = v {
                positive(NAME, key, v)?;
            }
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(invalid(
                NAME,
                "confidence",
                format!("must be between 0 and 1 (exclusive), got {}", self.confidence),
            ));
        }
        Ok(())
    }
}

/// What the policy remembers across steps (saved in checkpoints).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvergenceState {
    /// Consecutive flat evaluations in the current stage.
    pub flat: u64,
    /// Stage the counter belongs to.
    pub stage: usize,
}

/// Grows once the validation loss has flattened.
#[derive(Debug, Clone)]
pub struct Convergence {
    config: ConvergenceConfig,
    state: ConvergenceState,
}

impl Convergence {
    /// A policy with the given settings.
    pub fn new(config: ConvergenceConfig) -> Self {
        Self {
            config,
            state: ConvergenceState::default(),
        }
    }

    /// Whether the last `window` points of `history` (step, loss) are flat: the upper end
    /// of the decline rate's confidence interval is below the threshold.
    pub fn is_flat(&self, history: &[(f64, f64)]) -> bool {
        let c = &self.config;
        if history.len() < c.window {
            return false;
        }
        let tail = &history[history.len() - c.window..];
        let xs: Vec<f64> = tail.iter().map(|p| p.0).collect();
        let ys: Vec<f64> = tail.iter().map(|p| p.1).collect();
        let Ok(fit) = fit_line(&xs, &ys, c.confidence) else {
            return false;
        };
        let limit = match c.abs_threshold {
            Some(t) => t,
            None => c.threshold.unwrap_or(PAPER_ELASTICITY) * fit.y_mean / fit.x_mean.max(1.0),
        };
        // The whole confidence interval of the slope must lie within ±limit: the loss is
        // neither still falling faster than the threshold nor clearly rising (a noise
        // spike that tilts a short window upwards is not convergence).
        -limit < fit.slope_lo && fit.slope_hi < limit
    }
}

/// `g(N)` of the `budget` rule (see the module docs) and the upper end of its confidence
/// interval (delta method, at 90%).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gain {
    /// The estimate.
    pub value: f64,
    /// The upper end of its 90% confidence interval.
    pub upper: f64,
}

/// `g(N)` of the `budget` rule for the stage's evaluations `history` (steps from the
/// stage's start, loss) and the stage's budget `budget`, from the curve fitted to the
/// evaluations in `[N/4, N]`; `None` when there are fewer than `min_evals` evaluations in
/// `[N/2, N]` or no interval can be had.
pub fn remaining_gain(history: &[(f64, f64)], budget: f64, min_evals: usize) -> Option<Gain> {
    let &(n, _) = history.last()?;
    if history.iter().filter(|p| p.0 >= n / 2.0).count() < min_evals {
        return None;
    }
    let converged = Gain { value: 0.0, upper: 0.0 };
    if budget <= n {
        return Some(converged);
    }
    let (xs, ys): (Vec<f64>, Vec<f64>) = history.iter().copied().filter(|p| p.0 >= n / 4.0 && p.0 > 0.0).unzip();
    let fit = growlm_solver::Curve::new(xs.clone(), ys.clone())
        .ok()
        .and_then(|c| growlm_solver::fit(&c, growlm_solver::ModelKind::PowerLaw, 0.9).ok());
    let Some(fit) = fit else {
        // No curve fits a loss that has not fallen over the window: it has converged.
        let line = fit_line(&xs, &ys, 0.9).ok()?;
        return (line.slope_lo >= 0.0).then_some(converged);
    };
    let m = fit.curve_model();
    let g = |p: &[f64]| {
        let recent = m.value(p, n / 2.0) - m.value(p, n);
        (recent > 0.0).then(|| ((m.value(p, n) - m.value(p, budget)) / recent).max(0.0))
    };
    let Some(value) = g(&fit.values()) else {
        return Some(converged);
    };
    let [_, upper] = fit.delta_ci(g)?;
    Some(Gain { value, upper })
}

/// The step by which a stage must grow so that each of the `later` stages still to come
/// keeps `reserve` of the run's `max_steps` ([`ConvergenceConfig::reserve`]); `None` when
/// `reserve` is 0.
pub fn deadline(max_steps: u64, reserve: f64, later: usize) -> Option<u64> {
    (reserve > 0.0).then(|| {
        let kept = (reserve * max_steps as f64 * later as f64).round() as u64;
        max_steps.saturating_sub(kept)
    })
}

impl Policy for Convergence {
    fn name(&self) -> &str {
        NAME
    }

    fn decide(&mut self, obs: &Observation<'_>) -> Decision {
        let st = &mut self.state;
        if obs.stage != st.stage {
            st.stage = obs.stage;
            st.flat = 0;
        }
        if !obs.can_grow() {
            return Decision::Continue;
        }
        let later = obs.n_stages - 1 - obs.stage;
        if deadline(obs.max_steps, self.config.reserve, later).is_some_and(|d| obs.step >= d) {
            st.flat = 0;
            return Decision::Grow;
        }
        if !obs.evaluated {
            return Decision::Continue;
        }
        let history: Vec<(f64, f64)> = obs.stage_history().map(|p| (p.step as f64, p.loss)).collect();
        let flat = match self.config.rule {
            Rule::Elasticity => self.is_flat(&history),
            Rule::Budget => {
                let start = obs.stage_start as f64;
                let local: Vec<(f64, f64)> = history.iter().map(|p| (p.0 - start, p.1)).collect();
                let budget = obs.max_steps as f64 - start;
                // Confident that the remaining gain is small: the interval's upper end.
                remaining_gain(&local, budget, self.config.min_evals).is_some_and(|g| g.upper < self.config.rho)
            }
        };
        let st = &mut self.state;
        st.flat = if flat { st.flat + 1 } else { 0 };
        if st.flat >= self.config.patience && obs.step >= self.config.min_steps {
            st.flat = 0;
            Decision::Grow
        } else {
            Decision::Continue
        }
    }

    growlm_policy::typed_state!(NAME, state);

    fn describe(&self) -> String {
        let c = &self.config;
        let reserve = format!("{}% of the budget kept per later stage", c.reserve * 100.0);
        if c.rule == Rule::Budget {
            return format!(
                "convergence (budget rule: remaining gain within the budget < {} × the last half's, patience {}; {reserve})",
                c.rho, c.patience
            );
        }
        let thr = match c.abs_threshold {
            Some(t) => format!("|L'| < {t:e}/step"),
            None => format!("elasticity < {}", c.threshold.unwrap_or(PAPER_ELASTICITY)),
        };
        format!(
            "convergence ({thr} over {} evals at {:.0}% confidence, patience {}; {reserve})",
            c.window,
            c.confidence * 100.0,
            c.patience
        )
    }
}

/// Builds the policy from its `[policy]` table (the keys of [`ConvergenceConfig`]).
pub fn build(table: &toml::Table) -> Result<Box<dyn Policy>, PolicyError> {
    let config: ConvergenceConfig = parse_params(NAME, table)?;
    config.validate()?;
    Ok(Box::new(Convergence::new(config)))
}

/// Registers `convergence`.
pub fn register(registry: &mut Registry) {
    registry.register(
        NAME,
        "grow once the loss would gain little more within the budget, keeping a reserve for the grown model (paper §3.2, App. A)",
        build,
    );
}
