//! The `solver` policy acting on a loss law (`law` and `params` in `[policy]`): "whether"
//! as well as "when". At the first step it asks the law
//! ([`growlm_solver::GrowthPair::answer_steps`]) for the run's budget (`train.max_steps`):
//! growth at the best step within it, or the small model all the way. It then grows at that
//! step, or never.

use growlm_policy::{Decision, Observation, Policy};
use growlm_solver::{GrowthPair, ScalingLaw, SizeCost};
use serde::{Deserialize, Serialize};

use crate::NAME;

/// The plan, decided once (saved in checkpoints, so a resumed run keeps it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LawState {
    /// Whether the plan is made.
    planned: bool,
    /// The growth step, or none: never grow.
    grow_at: Option<u64>,
}

/// Grows where the law says growth ends lowest within the budget, or never.
pub struct LawPolicy {
    law: ScalingLaw,
    params: [f64; 2],
    state: LawState,
}

impl LawPolicy {
    /// A policy for the small and target models of `params` parameters under `law`.
    pub fn new(law: ScalingLaw, params: [f64; 2]) -> Self {
        Self {
            law,
            params,
            state: LawState::default(),
        }
    }

    /// The growth step the law recommends for a run of `steps` steps of `tokens_per_step`
    /// tokens, with FLOPs per step `fs` (small) and `ft` (target); none: never grow.
    pub fn plan(&self, steps: u64, tokens_per_step: f64, fs: f64, ft: f64) -> Option<u64> {
        let size = |name: &str, params: f64, flops_per_step: f64| SizeCost {
            name: name.into(),
            params,
            flops_per_step,
        };
        let pair = GrowthPair {
            small: size("small", self.params[0], fs),
            target: size("target", self.params[1], ft),
            tokens_per_step,
        };
        pair.answer_steps(&self.law, &[], steps).recommended.grow_at
    }
}

impl Policy for LawPolicy {
    fn name(&self) -> &str {
        NAME
    }

    fn decide(&mut self, obs: &Observation<'_>) -> Decision {
        let Some(next) = obs.next_flops_per_step.filter(|_| obs.can_grow() && obs.stage == 0) else {
            return Decision::Continue;
        };
        if !self.state.planned && obs.step > 0 {
            let tokens_per_step = obs.tokens as f64 / obs.step as f64;
            self.state.grow_at = self.plan(obs.max_steps, tokens_per_step, obs.flops_per_step, next);
            self.state.planned = true;
        }
        match self.state.grow_at {
            Some(g) if obs.step >= g => Decision::Grow,
            _ => Decision::Continue,
        }
    }

    growlm_policy::typed_state!(NAME, state);

    fn describe(&self) -> String {
        format!(
            "solver (law L(N, D) = {:.3} + {:.3e}·N^-{:.3} + {:.3e}·D^-{:.3}; {} -> {} parameters)",
            self.law.e, self.law.a, self.law.alpha, self.law.b, self.law.beta, self.params[0], self.params[1]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use growlm_policy::ValPoint;

    const LAW: ScalingLaw = ScalingLaw::new(1.5, 40.0, 0.4, 300.0, 0.35);

    fn obs(step: u64, max_steps: u64) -> Observation<'static> {
        const NONE: &[ValPoint] = &[];
        Observation {
            step,
            tokens: step * 100,
            flops: 0.0,
            train_loss: 3.0,
            val_history: NONE,
            evaluated: false,
            stage: 0,
            n_stages: 2,
            flops_per_step: 6e6,
            next_flops_per_step: Some(2.4e7),
            stage_start: 0,
            max_steps,
        }
    }

    /// Steps the policy grows after, or none.
    fn run(policy: &mut LawPolicy, max_steps: u64) -> Option<u64> {
        (1..=max_steps).find(|&s| policy.decide(&obs(s, max_steps)) == Decision::Grow)
    }

    #[test]
    fn it_grows_where_the_law_says_and_never_when_the_small_model_does_as_well() {
        // Long enough for the target to pay (a budget past the law's crossover): the policy
        // grows at the law's best step.
        let mut p = LawPolicy::new(LAW, [1e4, 4e4]);
        let steps = 3_000_000;
        let planned = p
            .plan(steps, 100.0, 6e6, 2.4e7)
            .expect("the law recommends growth here");
        assert!(planned > 1 && planned < steps);
        assert_eq!(run(&mut p, steps), Some(planned));
        // The plan survives a checkpoint.
        let mut resumed = LawPolicy::new(LAW, [1e4, 4e4]);
        resumed.load_state(p.state()).unwrap();
        assert_eq!(resumed.state, p.state);
        // A law in which size does not matter: never grow.
        let mut flat = LawPolicy::new(ScalingLaw { a: 0.0, ..LAW }, [1e4, 4e4]);
        assert_eq!(run(&mut flat, 2000), None);
    }
}
