//! `cargo xtask info --config FILE`: each stage's parameter count, training FLOPs per step
//! (the `Fs`, `Ft` of eq. 3) and a training-memory estimate.

use std::path::PathBuf;

use anyhow::Result;
use growlm::model::STATE_BYTES_PER_PARAM;

/// Arguments of `cargo xtask info`.
#[derive(clap::Args)]
pub struct InfoArgs {
    /// Run config (TOML), or a shipped config's name.
    #[arg(long, default_value = growlm::configs::DEFAULT)]
    config: PathBuf,
    /// Override a config key, as for `train`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

fn gib(bytes: f64) -> String {
    format!("{:.2} GiB", bytes / (1u64 << 30) as f64)
}

pub fn run(args: InfoArgs) -> Result<()> {
    let cfg = growlm::configs::load(
        &args.config,
        &args
            .sets
            .iter()
            .cloned()
            .map(growlm::train::Edit::Set)
            .collect::<Vec<_>>(),
    )?;
    let t = &cfg.train;
    println!(
        "{}: batch {} × {} tokens, tokenizer {}, {} steps",
        args.config.display(),
        t.batch_size,
        t.seq_len,
        cfg.data.tokenizer.name(),
        t.max_steps
    );
    println!(
        "{:<10} {:>14} {:>16} {:>12} {:>12} {:>12} {:>12}",
        "stage", "parameters", "matmul params", "FLOPs/step", "state", "activations", "total"
    );
    for (i, s) in cfg.stages.iter().enumerate() {
        let m = &s.model;
        let name = s.name.clone().unwrap_or_else(|| i.to_string());
        let state = m.train_state_bytes();
        let act = m.activation_bytes(t.batch_size, t.seq_len);
        println!(
            "{:<10} {:>14} {:>16} {:>12.3e} {:>12} {:>12} {:>12}",
            name,
            m.num_params(),
            m.num_matmul_params(),
            m.flops_per_step(t.batch_size, t.seq_len),
            gib(state),
            gib(act),
            gib(state + act)
        );
    }
    println!(
        "state: f32 weights, gradients and AdamW moments ({STATE_BYTES_PER_PARAM} B/parameter); activations: \
         Korthikanti et al. 2022's per-layer count in f32, no recomputation"
    );
    match growlm::model::memory::available()? {
        Some(a) => {
            println!("on this machine: {} available ({})", gib(a.bytes), a.source);
            for n in cfg.memory_needs() {
                let fits = if n.bytes <= a.bytes { "fits" } else { "does NOT fit" };
                println!("  {:<44} {:>12}  {fits}", n.what, gib(n.bytes));
            }
        }
        None => println!("on this machine: the memory available is unknown (or GROWLM_MEMORY=off); not checked"),
    }
    Ok(())
}
