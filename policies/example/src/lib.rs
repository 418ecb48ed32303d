//! The `example` policy, a template for writing your own (see `policies/README.md`):
//! grow once the validation loss of the current stage falls below `loss_below`, or after
//! `every` steps in the stage, whichever comes first.

use growlm_policy::{Decision, Observation, Params, Policy, PolicyError, Registry};

/// Grows on a loss threshold or periodically.
#[derive(Debug, Clone)]
pub struct Example {
    every: u64,
    loss_below: Option<f64>,
}

impl Policy for Example {
    fn name(&self) -> &str {
        "example"
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
    let mut p = Params::new("example", table);
    let every = p.u64_or("every", 200, 1)?;
    let loss_below = p.optional_positive_f64("loss_below")?;
    p.finish()?;
    Ok(Box::new(Example { every, loss_below }))
}

/// Registers `example`.
pub fn register(registry: &mut Registry) {
    registry.register(
        "example",
        "template: grow every `every` steps or once val loss < `loss_below`",
        build,
    );
}
