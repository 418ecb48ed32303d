//! The `example` policy, a template for writing your own (see `policies/README.md`):
//! grow once the validation loss of the current stage falls below `loss_below`, or after
//! `every` steps in the stage, whichever comes first.

use growlm_policy::{invalid, parse_params, Decision, Observation, Policy, PolicyError, Registry};
use serde::{Deserialize, Serialize};

/// The name this policy is registered under: written once, here.
pub const NAME: &str = "example";

/// The `[policy]` table's keys. `deny_unknown_fields` turns a typo into an error naming
/// the key; `default` lets every key be left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExampleConfig {
    /// Grow after this many steps in a stage (at least 1).
    pub every: u64,
    /// Grow once the stage's validation loss falls below this (positive), if set.
    pub loss_below: Option<f64>,
}

impl Default for ExampleConfig {
    fn default() -> Self {
        Self {
            every: 200,
            loss_below: None,
        }
    }
}

impl ExampleConfig {
    /// Checks the ranges; errors name the key.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.every == 0 {
            return Err(invalid(NAME, "every", "must be at least 1, got 0"));
        }
        if let Some(l) = self.loss_below.filter(|l| !(*l > 0.0 && l.is_finite())) {
            return Err(invalid(
                NAME,
                "loss_below",
                format!("must be a positive number, got {l}"),
            ));
        }
        Ok(())
    }
}

/// Grows on a loss threshold or periodically.
#[derive(Debug, Clone)]
pub struct Example {
    every: u64,
    loss_below: Option<f64>,
}

impl Policy for Example {
    fn name(&self) -> &str {
        NAME
    }

    fn decide(&mut self, obs: &Observation<'_>) -> Decision {
        if !obs.can_grow() {
            return Decision::Continue;
        }
        let reached = self
            .loss_below
            .is_some_and(|limit| obs.evaluated && obs.stage_history().last().is_some_and(|p| p.loss < limit));
        if reached || obs.step - obs.stage_start >= self.every {
            Decision::Grow
        } else {
            Decision::Continue
        }
    }

    fn describe(&self) -> String {
        format!(
            "example (grow every {} steps or below loss {:?})",
            self.every, self.loss_below
        )
    }
}

/// Builds the policy from `every` (default 200) and `loss_below` (optional).
pub fn build(table: &toml::Table) -> Result<Box<dyn Policy>, PolicyError> {
    let c: ExampleConfig = parse_params(NAME, table)?;
    c.validate()?;
    Ok(Box::new(Example {
        every: c.every,
        loss_below: c.loss_below,
    }))
}

/// Registers `example`.
pub fn register(registry: &mut Registry) {
    registry.register(
        NAME,
        "template: grow every `every` steps or once val loss < `loss_below`",
        build,
    );
}

#[cfg(test)]
mod tests {
    use growlm_policy::{first_growth_of, refusal};

    #[test]
    fn grows_periodically_or_below_the_loss() {
        let grows_at = |params: &str, curve: fn(u64) -> f64| first_growth_of(super::build, params, 10, 100, curve);
        assert_eq!(grows_at("every = 15", |_| 1.0), Some(15));
        assert_eq!(
            grows_at("every = 1000\nloss_below = 2.5", |n| 3.0 - n as f64 / 100.0),
            Some(60)
        );
    }

    #[test]
    fn bad_parameters_are_refused_with_the_key_named() {
        assert!(refusal(super::build, "every = 0").contains("policy.every"));
        assert!(refusal(super::build, "loss_below = -1").contains("policy.loss_below"));
        assert!(refusal(super::build, "evry = 3").contains("policy.evry"));
    }
}
