//! The `never` policy: train one model and never grow — the from-scratch baseline that
//! growth is measured against (paper Table 2, rows marked †).

use growlm_policy::{Decision, Observation, Params, Policy, PolicyError, Registry};

/// Never grows.
#[derive(Debug, Default)]
pub struct Never;

impl Policy for Never {
    fn name(&self) -> &str {
        "never"
    }
    fn decide(&mut self, _obs: &Observation<'_>) -> Decision {
        Decision::Continue
    }
}

/// Builds the policy; it takes no parameters.
pub fn build(table: &toml::Table) -> Result<Box<dyn Policy>, PolicyError> {
    Params::new("never", table).finish()?;
    Ok(Box::new(Never))
}

/// Registers `never`.
pub fn register(registry: &mut Registry) {
    registry.register(
        "never",
        "train the first stage only, never grow (from-scratch baseline)",
        build,
    );
}
