//! The `solver` policy: grow at the optimal growth point of eq. 3, `E(Gb) = Fs/Ft`
//! (paper §3.2), refitting the small model's curve online as evaluations arrive.
//!
//! The target's curve comes from a reference run of the target trained from scratch
//! (`reference = "runs/pt-target"`, a run directory, or a CSV with `step,val_loss`). After
//! each evaluation with at least `min_points` points in the current stage, the small
//! model's validation curve is refitted, `E` is computed against the reference, and the
//! policy grows once the current step has reached the predicted root — or at once when `E`
//! is already below `Fs/Ft`. `Fs/Ft` comes from the engine's per-step FLOPs.
//!
//! Each fit uses every evaluation of the stage, so noise on the validation curve moves the
//! root little (tested with ±0.05 of independent and of step-correlated noise: growth
//! within 3% of the noiseless optimum). `patience` (default 1) asks for that many
//! evaluations in a row to put the root at or before their step.

use std::path::Path;

pub mod law;

use growlm_policy::{at_least, invalid, parse_params, Decision, Observation, Policy, PolicyError, Registry};
use growlm_solver::{fit_best, Curve, Fit, GrowthProblem};
use serde::{Deserialize, Serialize};

/// The name this policy is registered under.
pub const NAME: &str = "solver";

/// The `[policy]` table's keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolverConfig {
    /// The target model's from-scratch run directory, or a `step,val_loss` CSV (the
    /// curve-fitting mode of eq. 3).
    #[serde(default)]
    pub reference: Option<String>,
    /// Or a loss law `L(N, D)` fitted over a frontier's runs (`cargo xtask solve --budget`
    /// prints it): the policy then grows at the law's best step for the run's budget, or
    /// never when the small model alone is predicted to do as well (see [`law`]).
    #[serde(default)]
    pub law: Option<growlm_solver::ScalingLaw>,
    /// With `law`: the parameters of the small model and of the target.
    #[serde(default)]
    pub params: Option<[f64; 2]>,
    /// With `law`: a growth transfer calibrated on grown runs (`solve --budget --grown`
    /// prints it with `anchors`); the law then predicts a growth by it
    /// ([`growlm_solver::transfer`]) instead of by loss matching.
    #[serde(default)]
    pub transfer: Option<growlm_solver::Transfer>,
    /// With `transfer`: the law's residuals at its runs, `[params, tokens, residual]`.
    #[serde(default)]
    pub anchors: Option<Vec<[f64; 3]>>,
    /// Evaluations of the current stage needed before the first fit (at least 5).
    #[serde(default = "default_min_points")]
    pub min_points: usize,
    /// Search the root up to this multiple of the current step (at least 1).
    #[serde(default = "default_horizon")]
    pub horizon_factor: f64,
    /// Evaluations in a row whose fit puts the root at or before their step (at least 1).
    #[serde(default = "default_patience")]
    pub patience: u64,
}

fn default_patience() -> u64 {
    1
}

fn default_min_points() -> usize {
    8
}
fn default_horizon() -> f64 {
    3.0
}

impl SolverConfig {
    /// Checks the ranges; errors name the key.
    pub fn validate(&self) -> Result<(), PolicyError> {
        at_least(NAME, "min_points", self.min_points, 5)?;
        if !(self.horizon_factor >= 1.0 && self.horizon_factor.is_finite()) {
            return Err(invalid(
                NAME,
                "horizon_factor",
                format!("must be at least 1, got {}", self.horizon_factor),
            ));
        }
        at_least(NAME, "patience", self.patience, 1)?;
        match (&self.reference, &self.law, &self.params) {
            (Some(_), None, None) | (None, Some(_), Some(_)) => {}
            (None, None, _) => {
                return Err(invalid(
                    NAME,
                    "reference",
                    "give `reference` (the target's curve) or `law` and `params` (from `cargo xtask solve --budget`)",
                ))
            }
            (None, _, _) => {
                return Err(invalid(
                    NAME,
                    "params",
                    "`law` and `params` go together (`cargo xtask solve --budget` prints both)",
                ))
            }
            (Some(_), _, _) => {
                return Err(invalid(NAME, "law", "give either `reference` or `law`, not both"));
            }
        }
        match (&self.law, &self.transfer, &self.anchors) {
            (_, None, None) | (Some(_), Some(_), Some(_)) => {}
            (None, t, _) => {
                let key = if t.is_some() { "transfer" } else { "anchors" };
                return Err(invalid(NAME, key, "`transfer` and `anchors` go with `law`"));
            }
            _ => {
                return Err(invalid(
                    NAME,
                    "anchors",
                    "`transfer` and `anchors` go together (`cargo xtask solve --budget --grown` prints both)",
                ))
            }
        }
        if let Some(t) = self
            .transfer
            .filter(|t| !(t.gain.is_finite() && t.recovery.is_finite()))
        {
            return Err(invalid(
                NAME,
                "transfer",
                format!("gain and recovery must be finite, got {t:?}"),
            ));
        }
        if self.anchors.as_ref().is_some_and(Vec::is_empty) {
            return Err(invalid(
                NAME,
                "anchors",
                "give at least one [params, tokens, residual] row (`cargo xtask solve --budget --grown` prints them)",
            ));
        }
        if let Some(bad) = self
            .anchors
            .iter()
            .flatten()
            .find(|r| !(r[0] > 0.0 && r[1] > 0.0 && r[2].is_finite()))
        {
            return Err(invalid(
                NAME,
                "anchors",
                format!("each row is [params, tokens, residual] with positive params and tokens, got {bad:?}"),
            ));
        }
        if let Some(p) = self.params.filter(|p| !(p[0] > 0.0 && p[1] > p[0])) {
            return Err(invalid(
                NAME,
                "params",
                format!("must be [small, target] with 0 < small < target, got {p:?}"),
            ));
        }
        Ok(())
    }
}

/// What the policy remembers (saved in checkpoints).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SolverState {
    /// Last predicted growth step.
    predicted: Option<f64>,
    /// Evaluations in a row that put the root at or before their step.
    #[serde(default)]
    reached: u64,
}

/// Grows at the solver's predicted optimum.
pub struct SolverPolicy {
    target: Fit,
    min_points: usize,
    horizon_factor: f64,
    patience: u64,
    /// Last prediction, for logs and checkpoints.
    state: SolverState,
}

impl SolverPolicy {
    /// A policy against the fitted target curve `target` that grows after `patience`
    /// evaluations in a row have reached the predicted root.
    pub fn new(target: Fit, min_points: usize, horizon_factor: f64, patience: u64) -> Self {
        Self {
            target,
            min_points,
            horizon_factor,
            patience,
            state: SolverState::default(),
        }
    }

    /// The predicted growth step for the small curve `(steps, losses)` and `Fs/Ft`, or
    /// `None` when the curve cannot be fitted or `E` does not reach `Fs/Ft` in the horizon.
    pub fn predict(&self, steps: Vec<f64>, losses: Vec<f64>, ratio: f64) -> Option<f64> {
        let curve = Curve::new(steps, losses).ok()?;
        let small = fit_best(&curve, 0.95).ok()?.remove(0);
        let (lo, last) = (curve.steps[0].max(1.0), *curve.steps.last()?);
        let p = GrowthProblem {
            small,
            target: self.target.clone(),
            flops_small: ratio,
            flops_target: 1.0,
            delay: 0.0,
        };
        if p.effect(last).is_some_and(|e| e <= ratio) {
            // Already past the optimum: the root lies at or before the current step.
            return Some(p.optimal_by_root(lo, last).unwrap_or(last));
        }
        p.optimal_by_root(lo, last * self.horizon_factor).ok()
    }
}

impl Policy for SolverPolicy {
    fn name(&self) -> &str {
        NAME
    }

    fn decide(&mut self, obs: &Observation<'_>) -> Decision {
        let Some(next) = obs.next_flops_per_step.filter(|_| obs.evaluated && obs.can_grow()) else {
            return Decision::Continue;
        };
        let (steps, losses): (Vec<f64>, Vec<f64>) = obs
            .stage_history()
            .map(|p| ((p.step - obs.stage_start) as f64, p.loss))
            .unzip();
        if steps.len() < self.min_points {
            return Decision::Continue;
        }
        self.state.predicted = self.predict(steps, losses, obs.flops_per_step / next);
        let reached = self
            .state
            .predicted
            .is_some_and(|g| (obs.step - obs.stage_start) as f64 >= g);
        self.state.reached = if reached { self.state.reached + 1 } else { 0 };
        if self.state.reached >= self.patience {
            self.state.reached = 0;
            Decision::Grow
        } else {
            Decision::Continue
        }
    }

    growlm_policy::typed_state!(NAME, state);

    fn describe(&self) -> String {
        format!(
            "solver (target curve {:?}, refit from {} evaluations, patience {})",
            self.target.model, self.min_points, self.patience
        )
    }
}

/// Builds the policy from `reference` (required), `min_points` (default 8),
/// `horizon_factor` (default 3) and `patience` (default 1).
pub fn build(table: &toml::Table) -> Result<Box<dyn Policy>, PolicyError> {
    let c: SolverConfig = parse_params(NAME, table)?;
    c.validate()?;
    if let (Some(law), Some(params)) = (c.law, c.params) {
        let policy = law::LawPolicy::new(law, params);
        return Ok(Box::new(match (c.transfer, c.anchors) {
            (Some(t), Some(rows)) => policy.calibrated(t, &rows),
            _ => policy,
        }));
    }
    let reference = c.reference.unwrap_or_default();
    let bad_reference = |e: &dyn std::fmt::Display| invalid(NAME, "reference", e.to_string());
    let read = growlm_train::read_val_curve(Path::new(&reference)).map_err(|e| bad_reference(&e))?;
    let curve = Curve::new(read.steps, read.losses).map_err(|e| bad_reference(&e))?;
    let target = fit_best(&curve, 0.95).map_err(|e| bad_reference(&e))?.remove(0);
    Ok(Box::new(SolverPolicy::new(
        target,
        c.min_points,
        c.horizon_factor,
        c.patience,
    )))
}

/// Registers `solver`.
pub fn register(registry: &mut Registry) {
    registry.register(
        NAME,
        "grow where E(Gb) = Fs/Ft (eq. 3), refitting the small curve online",
        build,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use growlm_policy::ValPoint;

    fn csv(dir: &Path, f: impl Fn(f64) -> f64) -> std::path::PathBuf {
        let p = dir.join("target.csv");
        let mut s = "step,val_loss\n".to_string();
        for i in 1..=150 {
            let n = i as f64 * 100.0;
            s.push_str(&format!("{n},{}\n", f(n)));
        }
        std::fs::write(&p, s).unwrap();
        p
    }

    /// The policy against the exponential target `1.5 + 3.5·exp(−N/3000)`, `patience` set.
    fn policy(dir: &Path, patience: u64) -> Box<dyn Policy> {
        let path = csv(dir, |n| 1.5 + 3.5 * (-n / 3000.0).exp());
        let mut table = toml::Table::new();
        table.insert("reference".into(), toml::Value::String(path.display().to_string()));
        table.insert("patience".into(), toml::Value::Integer(patience as i64));
        build(&table).unwrap()
    }

    /// The first step (evaluations every 50) at which `policy` grows on `small`.
    fn first_growth(policy: &mut dyn Policy, small: impl Fn(u64) -> f64) -> Option<u64> {
        let mut history = Vec::new();
        for step in (50..=12_000u64).step_by(50) {
            history.push(ValPoint {
                step,
                loss: small(step),
                stage: 0,
            });
            let obs = Observation {
                step,
                tokens: 0,
                flops: 0.0,
                train_loss: 0.0,
                val_history: &history,
                evaluated: true,
                stage: 0,
                n_stages: 2,
                flops_per_step: 0.3,
                next_flops_per_step: Some(1.0),
                stage_start: 0,
                max_steps: 10_000,
            };
            if policy.decide(&obs) == Decision::Grow {
                return Some(step);
            }
        }
        None
    }

    /// Same curves as the solver's analytic test: optimum at N = −τs·ln(u/b_s) with
    /// u = rΔ/(τt/τs − r), r = Fs/Ft = 0.3.
    fn small(n: u64) -> f64 {
        2.0 + 3.0 * (-(n as f64) / 1000.0).exp()
    }

    fn optimum() -> f64 {
        let u: f64 = 0.3 * 0.5 / (3.0 - 0.3);
        -1000.0 * (u / 3.0).ln()
    }

    #[test]
    fn grows_at_the_analytic_optimum_of_exponential_curves() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = policy(dir.path(), 1);
        let fired = first_growth(p.as_mut(), small).expect("must grow") as f64;
        let n_opt = optimum();
        assert!(
            fired >= n_opt && fired <= n_opt + 100.0,
            "fired at {fired}, optimum {n_opt}"
        );
        assert!(p.state()["predicted"].as_f64().is_some());
        // Patience 3 waits for two more evaluations that agree.
        let mut p = policy(dir.path(), 3);
        let late = first_growth(p.as_mut(), small).unwrap() as f64;
        assert_eq!(late, fired + 100.0);
    }

    #[test]
    fn a_noisy_curve_does_not_move_the_growth_far() {
        // ±0.05 on the small curve, about the improvement of 1500 steps near the optimum
        // (≈3989), independent per evaluation or held for four evaluations (a bump).
        let dir = tempfile::tempdir().unwrap();
        let n_opt = optimum();
        let independent = |n: u64| small(n) + 0.05 * growlm_policy::test_noise(n);
        let bumpy = |n: u64| small(n) + 0.05 * growlm_policy::test_noise(n / 200);
        for (name, fired) in [
            ("independent", first_growth(policy(dir.path(), 1).as_mut(), independent)),
            ("bumpy", first_growth(policy(dir.path(), 1).as_mut(), bumpy)),
        ] {
            let fired = fired.expect("must grow") as f64;
            assert!(
                (fired - n_opt).abs() <= 0.03 * n_opt,
                "{name} noise: fired at {fired}, optimum {n_opt}"
            );
        }
    }

    #[test]
    fn a_missing_reference_is_refused() {
        let err = build(&toml::Table::new()).err().unwrap().to_string();
        assert!(err.contains("policy.reference"), "{err}");
        let mut t = toml::Table::new();
        t.insert("reference".into(), toml::Value::String("/no/such/run".into()));
        assert!(build(&t).err().unwrap().to_string().contains("/no/such/run"));
    }
}
