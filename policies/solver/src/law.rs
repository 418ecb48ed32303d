//! The `solver` policy acting on a loss law (`law` and `params` in `[policy]`): "whether"
//! as well as "when". At the first step it asks the law
//! ([`growlm_solver::GrowthPair::answer_steps`]) for the run's budget (`train.max_steps`):
//! growth at the best step within it, or the small model all the way. It then grows at that
//! step, or never.

use growlm_policy::{Decision, Observation, Policy};
use growlm_solver::{Anchored, GrowthLaw, GrowthPair, LossModel, ScalingLaw, SizeCost, Transfer};
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
    /// The law anchored at its runs with a calibrated transfer, when given.
    calibrated: Option<GrowthLaw>,
    params: [f64; 2],
    state: LawState,
}

impl LawPolicy {
    /// A policy for the small and target models of `params` parameters under `law`, a
    /// growth predicted by loss matching.
    pub fn new(law: ScalingLaw, params: [f64; 2]) -> Self {
        Self {
            law,
            calibrated: None,
            params,
            state: LawState::default(),
        }
    }

    /// The same policy predicting a growth by `transfer` over the law anchored at `anchors`
    /// (`[params, tokens, residual]` rows).
    pub fn calibrated(self, transfer: Transfer, anchors: &[[f64; 3]]) -> Self {
        Self {
            calibrated: Some(GrowthLaw {
                law: Anchored::from_rows(self.law, anchors),
                transfer,
            }),
            ..self
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
        let model: &dyn LossModel = match &self.calibrated {
            Some(c) => c,
            None => &self.law,
        };
        pair.answer_steps(model, &[], steps).recommended.grow_at
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
        let growth = self.calibrated.as_ref().map_or("loss matching".to_string(), |c| {
            format!(
                "transfer μ {:.3}, R {:.0} tokens over {} anchors",
                c.transfer.gain,
                c.transfer.recovery,
                c.law.rows().len()
            )
        });
        format!(
            "solver (law L(N, D) = {:.3} + {:.3e}·N^-{:.3} + {:.3e}·D^-{:.3}; {} -> {} parameters; {growth})",
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
        // Calibrated: the step the anchored law with the transfer recommends, not loss
        // matching's.
        let t = Transfer {
            gain: 0.5,
            recovery: 0.0,
        };
        let anchors = [[4e4, 1e8, 0.01], [4e4, 1e9, -0.01]];
        let mut c = LawPolicy::new(LAW, [1e4, 4e4]).calibrated(t, &anchors);
        let model = GrowthLaw {
            law: Anchored::from_rows(LAW, &anchors),
            transfer: t,
        };
        let pair = GrowthPair {
            small: SizeCost {
                name: "small".into(),
                params: 1e4,
                flops_per_step: 6e6,
            },
            target: SizeCost {
                name: "target".into(),
                params: 4e4,
                flops_per_step: 2.4e7,
            },
            tokens_per_step: 100.0,
        };
        let want = pair.answer_steps(&model, &[], steps).recommended.grow_at;
        assert!(want.is_some_and(|w| w != planned), "{want:?} vs {planned}");
        assert_eq!(c.plan(steps, 100.0, 6e6, 2.4e7), want);
        assert_eq!(run(&mut c, steps), want);
        assert!(c.describe().contains("transfer μ 0.500"), "{}", c.describe());
        // A law in which size does not matter: never grow.
        let mut flat = LawPolicy::new(ScalingLaw { a: 0.0, ..LAW }, [1e4, 4e4]);
        assert_eq!(run(&mut flat, 2000), None);
    }

    #[test]
    fn a_calibrated_law_needs_its_transfer_and_anchors_together() {
        let law = "law = { e = 1.5, a = 40.0, alpha = 0.4, b = 300.0, beta = 0.35 }\nparams = [1e4, 4e4]\n";
        let transfer = "transfer = { gain = 0.2, recovery = 5e4 }\n";
        let anchors = "anchors = [[4e4, 1e6, 0.01]]\n";
        let table = |text: String| crate::build(&toml::from_str::<toml::Table>(&text).unwrap());
        let described = table(format!("{law}{transfer}{anchors}")).unwrap().describe();
        assert!(
            described.contains("transfer μ 0.200, R 50000 tokens over 1 anchors"),
            "{described}"
        );
        for (text, key, says) in [
            (format!("{law}{transfer}"), "policy.anchors", "go together"),
            (
                format!("{transfer}{anchors}reference = \"x\"\n"),
                "policy.transfer",
                "go with `law`",
            ),
            (
                format!("{law}{transfer}anchors = [[4e4, -1.0, 0.01]]\n"),
                "policy.anchors",
                "positive params and tokens",
            ),
            (
                format!("{law}{transfer}anchors = []\n"),
                "policy.anchors",
                "at least one",
            ),
            (
                format!("{law}transfer = {{ gain = nan, recovery = 0.0 }}\n{anchors}"),
                "policy.transfer",
                "finite",
            ),
            (
                format!("{anchors}reference = \"x\"\n"),
                "policy.anchors",
                "go with `law`",
            ),
        ] {
            let e = table(text).err().unwrap().to_string();
            assert!(e.contains(key) && e.contains(says), "{e}");
        }
    }
}
