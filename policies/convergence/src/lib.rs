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

use growlm_policy::{Decision, Observation, Params, Policy, PolicyError, Registry};
use growlm_solver::fit_line;

/// Paper's convergence point expressed as an elasticity (see the module docs).
pub const PAPER_ELASTICITY: f64 = 3e-6 * 70_000.0 / 3.0;

/// Settings of the convergence policy.
#[derive(Debug, Clone, PartialEq)]
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

/// Grows once the validation loss has flattened.
#[derive(Debug, Clone)]
pub struct Convergence {
    config: ConvergenceConfig,
    /// Consecutive flat evaluations in the current stage.
    flat: u64,
    /// Stage the counter belongs to.
    stage: usize,
}

impl Convergence {
    /// A policy with the given settings.
    pub fn new(config: ConvergenceConfig) -> Self {
        Self {
            config,
            flat: 0,
            stage: 0,
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
        "convergence"
    }

    fn decide(&mut self, obs: &Observation<'_>) -> Decision {
        if obs.stage != self.stage {
            self.stage = obs.stage;
            self.flat = 0;
        }
        if !obs.evaluated || !obs.can_grow() {
            return Decision::Continue;
        }
        let history: Vec<(f64, f64)> = obs.stage_history().map(|p| (p.step as f64, p.loss)).collect();
        if self.is_flat(&history) {
            self.flat += 1;
        } else {
            self.flat = 0;
        }
        if self.flat >= self.config.patience && obs.step >= self.config.min_steps {
            self.flat = 0;
            Decision::Grow
        } else {
            Decision::Continue
        }
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "flat": self.flat, "stage": self.stage })
    }

    fn load_state(&mut self, state: serde_json::Value) -> Result<(), PolicyError> {
        let bad = || PolicyError::State {
            policy: "convergence".into(),
            reason: format!("expected {{flat, stage}}, got {state}"),
        };
        self.flat = state.get("flat").and_then(|v| v.as_u64()).ok_or_else(bad)?;
        self.stage = state.get("stage").and_then(|v| v.as_u64()).ok_or_else(bad)? as usize;
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

/// Builds the policy from `window`, `patience`, `threshold`, `abs_threshold`,
/// `confidence`, `min_steps`.
pub fn build(table: &toml::Table) -> Result<Box<dyn Policy>, PolicyError> {
    let d = ConvergenceConfig::default();
    let mut p = Params::new("convergence", table);
    let window = p.u64_or("window", d.window as u64, 3)? as usize;
    let patience = p.u64_or("patience", d.patience, 1)?;
    let threshold = p.positive_f64_or("threshold", d.threshold)?;
    let abs_threshold = p.optional_positive_f64("abs_threshold")?;
    let confidence = p.f64_or("confidence", d.confidence)?;
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(p.error(
            "confidence",
            format!("must be between 0 and 1 (exclusive), got {confidence}"),
        ));
    }
    let min_steps = p.u64_or("min_steps", 0, 0)?;
    p.finish()?;
    Ok(Box::new(Convergence::new(ConvergenceConfig {
        window,
        patience,
        threshold,
        abs_threshold,
        confidence,
        min_steps,
    })))
}

/// Registers `convergence`.
pub fn register(registry: &mut Registry) {
    registry.register(
        "convergence",
        "grow once the validation loss stops falling (paper §3.2, App. A)",
        build,
    );
}
