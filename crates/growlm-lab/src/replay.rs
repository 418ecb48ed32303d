//! Replay: where a policy (paper §3.2) would grow on an existing run's validation curve,
//! fed step by step as the engine feeds it, without training anything.

use growlm_policy::{Decision, Registry, ValPoint};
use growlm_train::{Edit, RunConfig, RunDir};

use crate::LabError;

/// Feeds the policy of `cfg` every step of the first stage of `run` as the engine would;
/// returns the step where it asks to grow (`None`: it does not grow within that stage).
pub fn replay(run: &RunDir, cfg: &RunConfig, registry: &Registry) -> Result<Option<u64>, LabError> {
    let mut policy = registry.build(cfg.policy_name()?, &cfg.policy)?;
    let rows = run.metrics()?;
    let mut history = Vec::new();
    for r in rows.iter().filter(|r| r.stage == 0) {
        if let Some(loss) = r.val_loss {
            history.push(ValPoint {
                step: r.step,
                loss,
                stage: 0,
            });
        }
        let obs = growlm_train::observation(cfg, r, &history, 0);
        if policy.decide(&obs) == Decision::Grow {
            return Ok(Some(r.step));
        }
    }
    Ok(None)
}

/// The run's own config with `edits` applied (a policy replaced, its parameters set).
pub fn replay_config(run: &RunDir, edits: &[Edit]) -> Result<RunConfig, LabError> {
    Ok(RunConfig::load_edited(&run.file(RunDir::CONFIG), edits)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use growlm_train::MetricsRow;

    fn registry() -> Registry {
        let mut r = Registry::new();
        growlm_policy_never::register(&mut r);
        growlm_policy_fixed::register(&mut r);
        growlm_policy_convergence::register(&mut r);
        r
    }

    #[test]
    fn replay_feeds_the_curve_as_the_engine_does() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let cfg = growlm_train::testing::tiny(
            Path::new("corpus.txt"),
            &[
                Edit::MaxSteps(3000),
                Edit::Set("train.eval_every=50".into()),
                Edit::Set("train.checkpoint_every=500".into()),
                Edit::PolicyName("convergence".into()),
            ],
        )
        .unwrap()
        .to_toml();
        std::fs::write(run.file(RunDir::CONFIG), cfg).unwrap();
        // L = 1.5 + 2/√N: the budget rule's analytic point is 0.80362·3000 = 2411, so with
        // evaluations every 50 steps and patience 2 it grows at 2450–2500; the default
        // reserve (0.2 of the budget) grows it at 2400.
        let rows: String = (1..=3000u64)
            .map(|n| {
                let val = (n % 50 == 0).then(|| 1.5 + 2.0 / (n as f64).sqrt());
                serde_json::to_string(&MetricsRow {
                    step: n,
                    tokens: n * 16,
                    flops: n as f64,
                    wall_s: 0.0,
                    train_loss: 2.0,
                    val_loss: val,
                    lr: 0.01,
                    stage: 0,
                    width_active: 1.0,
                    grad_norm: 1.0,
                    skipped: 0,
                })
                .unwrap()
                    + "\n"
            })
            .collect();
        std::fs::write(run.file(RunDir::METRICS), rows).unwrap();
        let reg = registry();
        let at = |edits: &[Edit]| replay(&run, &replay_config(&run, edits).unwrap(), &reg).unwrap();
        let set = |s: &str| Edit::Set(s.into());
        assert_eq!(at(&[]), Some(2400));
        let grew = at(&[set("policy.reserve=0")]).unwrap();
        assert!((2450..=2500).contains(&grew), "{grew}");
        // A larger rho fires earlier; `never` never grows.
        let early = at(&[set("policy.reserve=0"), set("policy.rho=0.5")]).unwrap();
        assert!(early < grew, "{early} vs {grew}");
        assert_eq!(at(&[Edit::PolicyName("never".into())]), None);
        // Another policy takes its parameters from the edits after it.
        assert_eq!(
            at(&[Edit::PolicyName("fixed".into()), set("policy.steps=[1000]")]),
            Some(1000)
        );
        // The same decision as the policy's own harness.
        let mut p = reg
            .build(
                "convergence",
                &toml::from_str("name = \"convergence\"\nreserve = 0").unwrap(),
            )
            .unwrap();
        let fired = growlm_policy::first_growth(p.as_mut(), 50, 3000, |n| 1.5 + 2.0 / (n as f64).sqrt()).unwrap();
        assert_eq!(fired, grew);
        let e = replay_config(&RunDir::new(dir.path().join("nope")), &[]).unwrap_err();
        assert!(crate::chain(&e).contains("nope"), "{}", crate::chain(&e));
    }
}
