//! `cargo xtask grow --from DIR --to-config FILE --width OP --depth OP --out DIR`: grows a
//! pretrained Hugging Face GPT-Neo into a stage's model config offline, with operators that
//! need no mask (paper §3.3–3.5; the paper notes public checkpoints can be the source), and
//! writes the grown model as a Hugging Face directory.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use burn::optim::AdamWConfig;
use burn::tensor::{Distribution, Int, Tensor};
use burn_autodiff::Autodiff;
use burn_flex::Flex;
use growlm::hf::{export_model, import_model};
use growlm::model::{AttentionMasks, Gpt, GptConfig};
use growlm::ops::{grow, GrowthConfig};
use growlm::train::RunConfig;

type B = Autodiff<Flex>;

/// Files of a Hugging Face directory that describe its tokenizer, copied to the grown model.
const TOKENIZER_FILES: [&str; 6] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "generation_config.json",
];

/// Arguments of `cargo xtask grow`.
#[derive(clap::Args)]
pub struct GrowArgs {
    /// Hugging Face GPT-Neo directory of the source model.
    #[arg(long)]
    from: PathBuf,
    /// Run config (TOML) whose stage gives the target model.
    #[arg(long)]
    to_config: PathBuf,
    /// Stage of `--to-config` to grow into [default: the last].
    #[arg(long)]
    stage: Option<usize>,
    /// Width operator (`cargo xtask operators` lists them); one that needs no mask.
    #[arg(long, default_value = "hypercloning")]
    width: String,
    /// Depth operator.
    #[arg(long, default_value = "redundant")]
    depth: String,
    /// Seed of the fresh parameters some operators draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Directory to write the grown model into.
    #[arg(long)]
    out: PathBuf,
}

/// Largest |Δlogit| between two models on a fixed random batch.
fn logit_change(a: (&Gpt<B>, &GptConfig), b: (&Gpt<B>, &GptConfig)) -> f32 {
    let t = a.1.context_len.min(b.1.context_len).min(64);
    let dev = Default::default();
    <B as burn::tensor::backend::Backend>::seed(&dev, 0);
    let x = Tensor::<B, 2, Int>::random([4, t], Distribution::Uniform(0.0, a.1.vocab_size as f64), &dev);
    let la = a.0.forward(x.clone(), &AttentionMasks::new(a.1, t, &dev), None);
    let lb = b.0.forward(x, &AttentionMasks::new(b.1, t, &dev), None);
    (la - lb).abs().max().into_scalar()
}

pub fn run(args: GrowArgs) -> Result<()> {
    let run_cfg = RunConfig::load(&args.to_config, &[])?;
    let n = args.stage.unwrap_or(run_cfg.stages.len() - 1);
    let target = &run_cfg
        .stages
        .get(n)
        .with_context(|| {
            format!(
                "--stage {n}: {} has {} stages (0-based)",
                args.to_config.display(),
                run_cfg.stages.len()
            )
        })?
        .model;
    let op = GrowthConfig::named(&args.width, &args.depth, 0)?;
    let (w, d) = op.operators();
    if w.ramps() || w.scales_softly() || d.gates_new_layers() {
        bail!(
            "operator {}+{} needs a mask that ramps during training; grow inside a `cargo xtask train` run \
             (start it from this model with --init-from) or pick a mask-free operator such as \
             --width hypercloning or --width fpi with --depth redundant",
            op.width,
            op.depth
        );
    }
    let dev = Default::default();
    let src = import_model::<B>(&args.from, None, &dev)?;
    let optim = AdamWConfig::new().init();
    let grown = grow(
        &src.config,
        &src.model,
        &optim,
        AdamWConfig::new().init(),
        target,
        &op,
        args.seed,
        0,
        None,
    )?;
    let change = logit_change((&src.model, &src.config), (&grown.model, target));
    let extra: Vec<(&str, Vec<u8>)> = TOKENIZER_FILES
        .iter()
        .filter_map(|f| std::fs::read(args.from.join(f)).ok().map(|b| (*f, b)))
        .collect();
    export_model(&grown.model, target, &args.out, src.hf.eos_token_id, &extra)?;
    println!(
        "grew {} ({} parameters) into stage {n} of {} ({} parameters) with {}: max |Δlogit| {:.3e} on a random batch{}",
        args.from.display(),
        src.config.num_params(),
        args.to_config.display(),
        target.num_params(),
        op.describe(),
        change,
        if change <= 1e-3 {
            ""
        } else {
            " (this operator does not preserve the function)"
        }
    );
    println!("wrote {}", args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_operators_are_refused_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/paper-tiny.toml");
        let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crates/growlm-hf/tests/fixtures/tiny-gpt-neo");
        let args = |width: &str, depth: &str| GrowArgs {
            from: fixture.clone(),
            to_config: cfg.clone(),
            stage: None,
            width: width.into(),
            depth: depth.into(),
            seed: 0,
            out: dir.path().join("out"),
        };
        for (w, d) in [("pdg", "redundant"), ("msg", "msg")] {
            let e = run(args(w, d)).unwrap_err().to_string();
            assert!(e.contains("needs a mask") && e.contains("--init-from"), "{e}");
        }
        let e = run(args("no-such-op", "redundant")).unwrap_err().to_string();
        assert!(e.contains("no-such-op"), "{e}");
        assert!(!dir.path().join("out").exists());
    }
}
