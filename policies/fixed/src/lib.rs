//! The `fixed` policy: grow at listed steps — the heuristic schedules of earlier work and
//! the fixed growth point of the paper's main comparison (§4.3, Table 2: 72k steps).
//!
//! `steps = [s1, s2, …]`: after step `s1` completes the model grows into stage 1, after
//! `s2` into stage 2, and so on.

use growlm_policy::{Decision, Observation, Params, Policy, PolicyError, Registry};

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
        "fixed"
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

/// Builds the policy from `steps`.
pub fn build(table: &toml::Table) -> Result<Box<dyn Policy>, PolicyError> {
    let mut p = Params::new("fixed", table);
    let steps = p.u64_list_or("steps", Vec::new())?;
    if steps.is_empty() {
        return Err(p.error("steps", "list at least one growth step, e.g. `steps = [500]`"));
    }
    if steps.windows(2).any(|w| w[0] >= w[1]) || steps[0] == 0 {
        return Err(p.error(
            "steps",
            format!("must be positive and strictly increasing, got {steps:?}"),
        ));
    }
    p.finish()?;
    Ok(Box::new(Fixed::new(steps)))
}

/// Registers `fixed`.
pub fn register(registry: &mut Registry) {
    registry.register("fixed", "grow after the steps listed in `policy.steps`", build);
}
