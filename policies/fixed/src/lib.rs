//! The `fixed` policy: grow at listed steps — the heuristic schedules of earlier work and
//! the fixed growth point of the paper's main comparison (§4.3, Table 2: 72k steps).
//!
//! `steps = [s1, s2, …]`: after step `s1` completes the model grows into stage 1, after
//! `s2` into stage 2, and so on.

use growlm_policy::{invalid, parse_params, Decision, Observation, Policy, PolicyError, Registry};
use serde::{Deserialize, Serialize};

/// The name this policy is registered under.
pub const NAME: &str = "fixed";

/// The `[policy]` table's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedConfig {
    /// Growth after each of these steps: positive, strictly increasing.
    pub steps: Vec<u64>,
}

impl FixedConfig {
    /// Checks the steps; errors name the key.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let s = &self.steps;
        if s.is_empty() {
            return Err(invalid(
                NAME,
                "steps",
                "list at least one growth step, e.g. `steps = [500]`",
            ));
        }
        if s.windows(2).any(|w| w[0] >= w[1]) || s[0] == 0 {
            return Err(invalid(
                NAME,
                "steps",
                format!("must be positive and strictly increasing, got {s:?}"),
            ));
        }
        Ok(())
    }
}

/// Grows when the completed step count reaches the next listed step.
#[derive(Debug, Clone)]
pub struct Fixed {
    steps: Vec<u64>,
}

impl Fixed {
    /// Growth after each of `steps` (strictly increasing).
    pub fn new(steps: Vec<u64>) -> Self {
        Self { steps }
    }
}

impl Policy for Fixed {
    fn name(&self) -> &str {
        NAME
    }
    fn decide(&mut self, obs: &Observation<'_>) -> Decision {
        match self.steps.get(obs.stage) {
            Some(&s) if obs.step >= s && obs.can_grow() => Decision::Grow,
            _ => Decision::Continue,
        }
    }
    fn describe(&self) -> String {
        format!("fixed (grow after steps {:?})", self.steps)
    }
}

/// Builds the policy from `steps` (see [`FixedConfig`]).
pub fn build(table: &toml::Table) -> Result<Box<dyn Policy>, PolicyError> {
    let config: FixedConfig = parse_params(NAME, table)?;
    config.validate()?;
    Ok(Box::new(Fixed::new(config.steps)))
}

/// Registers `fixed`.
pub fn register(registry: &mut Registry) {
    registry.register(NAME, "grow after the steps listed in `policy.steps`", build);
}

#[cfg(test)]
mod tests {
    use growlm_policy::{first_growth_of, refusal};

    #[test]
    fn fires_exactly_at_its_steps() {
        assert_eq!(
            first_growth_of(super::build, "steps = [37]", 10, 100, |_| 1.0),
            Some(37)
        );
    }

    #[test]
    fn bad_steps_are_refused_with_the_key_named() {
        let err = |params: &str| refusal(super::build, params);
        assert!(err("steps = [50, 20]").contains("increasing"));
        assert!(err("steps = [0]").contains("policy.steps"));
        assert!(err("").contains("steps"));
        assert!(err("steps = []").contains("policy.steps"));
        assert!(err("steps = [5]\nstep = 3").contains("policy.step"));
    }
}
