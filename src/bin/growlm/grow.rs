//! `cargo xtask grow --from DIR --to-config FILE --width OP --depth OP --out DIR`: grows a
//! pretrained Hugging Face GPT-Neo, Llama or Qwen2 into a stage's model config offline, with operators that
//! need no mask (paper §3.3–3.5; the paper notes public checkpoints can be the source), and
//! writes the grown model as a Hugging Face directory.

use std::path::PathBuf;

use anyhow::{Context, Result};
use growlm::interop::GrowError;
use growlm::ops::GrowthConfig;

/// Arguments of `cargo xtask grow`.
#[derive(clap::Args)]
pub struct GrowArgs {
    /// Hugging Face GPT-Neo, Llama or Qwen2 directory of the source model.
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
    /// Depth operator [default: `redundant` for GPT-Neo, `expand` for Llama, whose SwiGLU
    /// gets no gradient behind zeroed norms].
    #[arg(long)]
    depth: Option<String>,
    /// Seed of the fresh parameters some operators draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Directory to write the grown model into.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: GrowArgs) -> Result<()> {
    let run_cfg = growlm::configs::load(&args.to_config, &[])?;
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
    let depth = args.depth.as_deref().unwrap_or(growlm::ops::default_depth_for(target));
    let op = GrowthConfig::named(&args.width, depth, 0)?;
    let g = growlm::interop::grow_offline(&args.from, target, &op, args.seed, &args.out).map_err(|e| match e {
        GrowError::NeedsRamp(_) => anyhow::anyhow!("{e} (from the command line: `cargo xtask train --init-from DIR`)"),
        e => e.into(),
    })?;
    let change = g.logit_change;
    println!(
        "grew {} ({} parameters) into stage {n} of {} ({} parameters) with {}: max |Δlogit| {:.3e} on a random batch{}",
        args.from.display(),
        g.params_before,
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
        let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/paper-tiny.toml");
        let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crates/growlm-hf/tests/fixtures/tiny-gpt-neo");
        let args = |width: &str, depth: &str| GrowArgs {
            from: fixture.clone(),
            to_config: cfg.clone(),
            stage: None,
            width: width.into(),
            depth: Some(depth.into()),
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
