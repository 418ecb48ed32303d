//! `cargo xtask replay RUN`: where a policy would grow on an existing run's validation
//! curve — the run's own policy and budget from its `config.toml`, or another policy
//! (`growlm::lab::replay`).

use std::path::PathBuf;

use anyhow::Result;
use growlm::train::{Edit, RunDir};

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
    let run = RunDir::new(&a.run);
    let edits: Vec<Edit> = a
        .policy
        .map(Edit::PolicyName)
        .into_iter()
        .chain(a.sets.into_iter().map(Edit::Set))
        .collect();
    let cfg = growlm::lab::replay_config(&run, &edits)?;
    match growlm::lab::replay(&run, &cfg, &growlm::registry())? {
        Some(step) => println!("grows at step {step}"),
        None => println!("does not grow within the run's first stage"),
    }
    Ok(())
}
