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

/// Runs the command: feeds the policy every step of the run's first stage as the engine
/// would, and prints the step where it asks to grow.
pub fn run(a: ReplayArgs) -> Result<()> {
    let mut cfg = RunConfig::load(&a.run.join("config.toml"), &a.sets)?;
    if let Some(p) = &a.policy {
        cfg.set_policy(p);
    }
    let registry = growlm::registry();
    let mut policy = registry.build(cfg.policy_name()?, &cfg.policy)?;
    let rows: Vec<MetricsRow> = read_jsonl(&a.run.join("metrics.jsonl"))
        .with_context(|| format!("{}: no readable metrics.jsonl", a.run.display()))?;
    let t = &cfg.train;
    let fps = |i: usize| cfg.stages.get(i).map(|s| s.model.flops_per_step(t.batch_size, t.seq_len));
    let mut history = Vec::new();
    println!("{}", policy.describe());
    for r in rows.iter().filter(|r| r.stage == 0) {
        if let Some(loss) = r.val_loss {
            history.push(ValPoint { step: r.step, loss, stage: 0 });
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
            println!("grows at step {}", r.step);
            return Ok(());
        }
    }
    println!("does not grow within the run's first stage");
    Ok(())
}
