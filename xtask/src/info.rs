//! `cargo xtask info --config FILE`: each stage's parameter count, training FLOPs per step
//! (the `Fs`, `Ft` of eq. 3) and a training-memory estimate.

use std::path::PathBuf;

use anyhow::Result;
use growlm::model::STATE_BYTES_PER_PARAM;
use growlm::train::RunConfig;

/// Arguments of `cargo xtask info`.
#[derive(clap::Args)]
pub struct InfoArgs {
    /// Run config (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Override a config key, as for `train`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

fn gib(bytes: f64) -> String {
    format!("{:.2} GiB", bytes / (1u64 << 30) as f64)
}

pub fn run(args: InfoArgs) -> Result<()> {
    let cfg = RunConfig::load(&args.config, &args.sets)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_configs_have_the_published_sizes() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        for (file, sizes) in [
            ("configs/gpt-neo-125m-355m.toml", (125_198_592, 12, 24)),
            ("configs/gpt-neo-125m-774m.toml", (125_198_592, 12, 36)),
        ] {
            let cfg = RunConfig::load(&root.join(file), &[]).unwrap();
            let (small, target) = (&cfg.stages[0].model, &cfg.stages[1].model);
            // GPT-Neo 125M with the tied head: 125,198,592 (transformers' count).
            assert_eq!(small.num_params(), sizes.0, "{file}");
            assert_eq!((small.n_layers, target.n_layers), (sizes.1, sizes.2), "{file}");
            assert_eq!(small.vocab_size, 50257);
            assert_eq!(small.head_dim(), target.head_dim());
        }
        // The targets by hand: 24 × 1024 and 36 × 1280, vocab 50257, 2048 positions,
        // 12·d² + 10·d weights and biases per layer (no q/k/v biases), 2·d for ln_f.
        let by_hand = |l: usize, d: usize| 50257 * d + 2048 * d + l * (12 * d * d + 10 * d) + 2 * d;
        let t355 = RunConfig::load(&root.join("configs/gpt-neo-125m-355m.toml"), &[]).unwrap();
        assert_eq!(t355.stages[1].model.num_params(), by_hand(24, 1024));
        assert_eq!(by_hand(12, 768), 125_198_592);
        let t774 = RunConfig::load(&root.join("configs/gpt-neo-125m-774m.toml"), &[]).unwrap();
        assert_eq!(t774.stages[1].model.num_params(), by_hand(36, 1280));
    }
}
