//! The `never` policy: train one model and never grow — the from-scratch baseline that
//! growth is measured against (paper Table 2, rows marked †).

use growlm_policy::{parse_params, Decision, Observation, Policy, PolicyError, Registry};
use serde::Deserialize;

/// The name this policy is registered under.
pub const NAME: &str = "never";

/// The `[policy]` table's keys: none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeverConfig {}

/// Never grows.
#[derive(Debug, Default)]
pub struct Never;

impl Policy for Never {
    fn name(&self) -> &str {
        NAME
    }
    fn decide(&mut self, _obs: &Observation<'_>) -> Decision {
        Decision::Continue
    }
}

/// Builds the policy; it takes no parameters.
pub fn build(table: &toml::Table) -> Result<Box<dyn Policy>, PolicyError> {
    parse_params::<NeverConfig>(NAME, table)?;
    Ok(Box::new(Never))
}

/// Registers `never`.
pub fn register(registry: &mut Registry) {
    registry.register(
        NAME,
        "train the first stage only, never grow (from-scratch baseline)",
        build,
    );
}

#[cfg(test)]
mod tests {
    use growlm_policy::{first_growth, refusal};

    #[test]
    fn never_grows_and_takes_no_parameters() {
        let mut p = super::build(&toml::Table::new()).unwrap();
        assert_eq!(first_growth(p.as_mut(), 10, 10_000, |n| 10.0 / n as f64), None);
        let e = refusal(super::build, "steps = [1]");
        assert!(e.contains("policy.steps"), "{e}");
    }
}
