//! `cargo xtask replay RUN`: where a policy would grow on an existing run's validation
//! curve — the run's own policy and budget from its `config.toml`, or another policy.

use std::path::PathBuf;

use anyhow::{Context, Result};
use growlm::policy::{Decision, Observation, ValPoint};
use growlm::train::{output::read_jsonl, MetricsRow, RunConfig};

/// Arguments of `cargo xtask replay`.
#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Run directory (its metrics.jsonl and config.toml).
    run: PathBuf,
    /// Policy to replay instead of the run's (its parameters from `--set policy.KEY=…`).
    #[arg(long)]
    policy: Option<String>,
    /// Overrides of the run's config, e.g. `--set policy.rho=0.3`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

/// Runs the command.
pub fn run(a: ReplayArgs) -> Result<()> {
    match replay(&a)? {
        Some(step) => println!("grows at step {step}"),
        None => println!("does not grow within the run's first stage"),
    }
    Ok(())
}

/// Feeds the policy every step of the run's first stage as the engine would; returns the
/// step where it asks to grow.
fn replay(a: &ReplayArgs) -> Result<Option<u64>> {
    let cfg = RunConfig::load_with_policy(&a.run.join("config.toml"), a.policy.as_deref(), &a.sets)?;
    let registry = growlm::registry();
    let mut policy = registry.build(cfg.policy_name()?, &cfg.policy)?;
    let rows: Vec<MetricsRow> = read_jsonl(&a.run.join("metrics.jsonl"))
        .with_context(|| format!("{}: no readable metrics.jsonl", a.run.display()))?;
    let t = &cfg.train;
    let fps = |i: usize| {
        cfg.stages
            .get(i)
            .map(|s| s.model.flops_per_step(t.batch_size, t.seq_len))
    };
    let mut history = Vec::new();
    for r in rows.iter().filter(|r| r.stage == 0) {
        if let Some(loss) = r.val_loss {
            history.push(ValPoint {
                step: r.step,
                loss,
                stage: 0,
            });
        }
        let obs = Observation {
            step: r.step,
            tokens: r.tokens,
            flops: r.flops,
            train_loss: r.train_loss,
            val_history: &history,
            evaluated: r.val_loss.is_some(),
            stage: 0,
            n_stages: cfg.stages.len(),
            flops_per_step: fps(0).unwrap_or(0.0),
            next_flops_per_step: fps(1),
            stage_start: 0,
            max_steps: t.max_steps,
        };
        if policy.decide(&obs) == Decision::Grow {
            return Ok(Some(r.step));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_feeds_the_curve_as_the_engine_does() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = "[data]\nsource = \"sotu\"\n[train]\nbatch_size = 2\nseq_len = 8\nmax_steps = 3000\nlr = 0.01\n\
                   eval_every = 50\ncheckpoint_every = 500\n[[stages]]\n[stages.model]\ncontext_len = 8\nd_model = 8\n\
                   n_layers = 1\nn_heads = 2\n[[stages]]\n[stages.model]\ncontext_len = 8\nd_model = 16\nn_layers = 2\n\
                   n_heads = 4\n[policy]\nname = \"convergence\"\n";
        std::fs::write(dir.path().join("config.toml"), cfg).unwrap();
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
        std::fs::write(dir.path().join("metrics.jsonl"), rows).unwrap();
        let args = |sets: Vec<String>| ReplayArgs {
            run: dir.path().to_path_buf(),
            policy: None,
            sets,
        };
        assert_eq!(replay(&args(vec![])).unwrap(), Some(2400));
        let grew = replay(&args(vec!["policy.reserve=0".into()])).unwrap().unwrap();
        assert!((2450..=2500).contains(&grew), "{grew}");
        // A larger rho fires earlier; `never` never grows.
        let early = replay(&args(vec!["policy.reserve=0".into(), "policy.rho=0.5".into()]))
            .unwrap()
            .unwrap();
        assert!(early < grew, "{early} vs {grew}");
        let never = ReplayArgs {
            policy: Some("never".into()),
            ..args(vec![])
        };
        assert_eq!(replay(&never).unwrap(), None);
        // Another policy takes its parameters from --set.
        let fixed = ReplayArgs {
            policy: Some("fixed".into()),
            ..args(vec!["policy.steps=[1000]".into()])
        };
        assert_eq!(replay(&fixed).unwrap(), Some(1000));
        // The same decision as the policy's own harness.
        let mut p = growlm::registry()
            .build(
                "convergence",
                &toml::from_str("name = \"convergence\"\nreserve = 0").unwrap(),
            )
            .unwrap();
        let fired = growlm::policy::first_growth(p.as_mut(), 50, 3000, |n| 1.5 + 2.0 / (n as f64).sqrt()).unwrap();
        assert_eq!(fired, grew);
        let e = run(ReplayArgs {
            run: dir.path().join("nope"),
            policy: None,
            sets: vec![],
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("nope"), "{e:#}");
    }
}
