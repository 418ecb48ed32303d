//! Harnesses for testing a policy (paper §3.2's growth decision) on synthetic curves,
//! without a model or an engine.

use crate::{invalid, Builder, Decision, Observation, Policy, PolicyError, ValPoint};

/// Builds a policy with its `build` function from `params`, the lines of its `[policy]`
/// table as TOML text (`"steps = [37]"`), as the registry would from a config.
pub fn build_from(build: Builder, params: &str) -> Result<Box<dyn Policy>, PolicyError> {
    let table: toml::Table = toml::from_str(params).map_err(|e| invalid("", "policy", e.to_string()))?;
    build(&table)
}

/// The message with which `build` refuses `params` (see [`build_from`]), for asserting
/// that it names the offending key.
///
/// # Panics
/// If `build` accepts `params`.
pub fn refusal(build: Builder, params: &str) -> String {
    match build_from(build, params) {
        Ok(_) => panic!("the policy accepted `{params}`"),
        Err(e) => e.to_string(),
    }
}

/// A harness for testing a policy on a synthetic curve: feeds `policy` one observation
/// per step from 1 to `steps` of a two-stage run (next stage 3× the FLOPs), with a
/// validation loss `curve(step)` every `every` steps, and returns the first step at which
/// it asks to grow.
pub fn first_growth(policy: &mut dyn Policy, every: u64, steps: u64, curve: impl Fn(u64) -> f64) -> Option<u64> {
    first_growth_within(policy, every, steps, steps, curve)
}

/// [`first_growth`] of the policy `build` makes from `params` (see [`build_from`]).
///
/// # Panics
/// If `build` refuses `params`.
pub fn first_growth_of(
    build: Builder,
    params: &str,
    every: u64,
    steps: u64,
    curve: impl Fn(u64) -> f64,
) -> Option<u64> {
    let mut policy = build_from(build, params).unwrap_or_else(|e| panic!("`{params}` refused: {e}"));
    first_growth(policy.as_mut(), every, steps, curve)
}

/// As [`first_growth`], in a run whose step budget (`max_steps`) is `budget`.
pub fn first_growth_within(
    policy: &mut dyn Policy,
    every: u64,
    steps: u64,
    budget: u64,
    curve: impl Fn(u64) -> f64,
) -> Option<u64> {
    let mut history = Vec::new();
    for step in 1..=steps {
        let evaluated = step % every == 0;
        if evaluated {
            history.push(ValPoint {
                step,
                loss: curve(step),
                stage: 0,
            });
        }
        let obs = Observation {
            step,
            tokens: step * 100,
            flops: step as f64,
            train_loss: curve(step),
            val_history: &history,
            evaluated,
            stage: 0,
            n_stages: 2,
            flops_per_step: 1.0,
            next_flops_per_step: Some(3.0),
            stage_start: 0,
            max_steps: budget,
        };
        if policy.decide(&obs) == Decision::Grow {
            return Some(step);
        }
    }
    None
}

/// Deterministic noise in [-1, 1] for synthetic curves.
pub fn test_noise(step: u64) -> f64 {
    let x = step
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}
