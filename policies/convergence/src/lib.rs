//! The `convergence` policy: grow once the small model enters its convergence stage
//! (paper §3.2 and Appendix A), i.e. once the validation loss has stopped falling.
//!
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

use growlm_policy::{
    invalid, parse_params, state_from_json, state_to_json, Decision, Observation, Policy, PolicyError, Registry,
};
use growlm_solver::fit_line;
use serde::{Deserialize, Serialize};

/// The name this policy is registered under.
pub const NAME: &str = "convergence";

/// Paper's convergence point expressed as an elasticity (see the module docs).
pub const PAPER_ELASTICITY: f64 = 3e-6 * 70_000.0 / 3.0;

/// Settings of the convergence policy: the `[policy]` table's keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConvergenceConfig {
    /// Evaluations in the slope fit.
    pub window: usize,
    /// Consecutive flat evaluations needed.
    pub patience: u64,
    /// Elasticity threshold (`−L′·N/L`).
    pub threshold: f64,
    /// Per-step slope threshold; replaces `threshold` when set.
    pub abs_threshold: Option<f64>,
    /// Confidence level of the slope interval.
    pub confidence: f64,
    /// Never grow before this step.
    pub min_steps: u64,
}

impl Default for ConvergenceConfig {
    fn default() -> Self {
        Self {
            window: 6,
            patience: 2,
            threshold: PAPER_ELASTICITY,
            abs_threshold: None,
            confidence: 0.9,
            min_steps: 0,
        }
    }
}

impl ConvergenceConfig {
    /// Checks the ranges; errors name the key.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.window < 3 {
            return Err(invalid(
                NAME,
                "window",
                format!("must be at least 3, got {}", self.window),
            ));
        }
        if self.patience < 1 {
            return Err(invalid(NAME, "patience", "must be at least 1, got 0"));
        }
        for (key, v) in [
            ("threshold", Some(self.threshold)),
            ("abs_threshold", self.abs_threshold),
        ] {
            if let Some(v) = v.filter(|v| !(*v > 0.0 && v.is_finite())) {
                return Err(invalid(NAME, key, format!("must be a positive number, got {v}")));
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
            None => c.threshold * fit.y_mean / fit.x_mean.max(1.0),
        };
        // The whole confidence interval of the slope must lie within ±limit: the loss is
        // neither still falling faster than the threshold nor clearly rising (a noise
        // spike that tilts a short window upwards is not convergence).
        -limit < fit.slope_lo && fit.slope_hi < limit
    }
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
        if !obs.evaluated || !obs.can_grow() {
            return Decision::Continue;
        }
        let history: Vec<(f64, f64)> = obs.stage_history().map(|p| (p.step as f64, p.loss)).collect();
        let flat = self.is_flat(&history);
        let st = &mut self.state;
        st.flat = if flat { st.flat + 1 } else { 0 };
        if st.flat >= self.config.patience && obs.step >= self.config.min_steps {
            st.flat = 0;
            Decision::Grow
        } else {
            Decision::Continue
        }
    }

    fn state(&self) -> serde_json::Value {
        state_to_json(&self.state)
    }

    fn load_state(&mut self, state: serde_json::Value) -> Result<(), PolicyError> {
        self.state = state_from_json(NAME, state)?;
        Ok(())
    }

    fn describe(&self) -> String {
        let c = &self.config;
        let thr = match c.abs_threshold {
            Some(t) => format!("|L'| < {t:e}/step"),
            None => format!("elasticity < {}", c.threshold),
        };
        format!(
            "convergence ({thr} over {} evals at {:.0}% confidence, patience {})",
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
        "grow once the validation loss stops falling (paper §3.2, App. A)",
        build,
    );
}
