//! `cargo xtask export RUN --out DIR`: a run's latest model (or a given checkpoint's) as a
//! Hugging Face GPT-Neo directory that `AutoModelForCausalLM.from_pretrained` loads.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use burn_flex::Flex;
use growlm::data::{Tokenizer, TokenizerKind};
use growlm::hf::export_model;
use growlm::train::{load_trained, Trained};

/// Arguments of `cargo xtask export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// Run directory (its latest checkpoint) or a checkpoint directory
    /// (`RUN/snapshots/step-N`).
    run: PathBuf,
    /// Directory to write `config.json`, `model.safetensors` and the tokenizer's files into.
    #[arg(long)]
    out: PathBuf,
}

/// Refuses a model whose new width is still masked or scaled by a growth ramp: without
/// the mask it computes another function, and GPT-Neo has no mask.
pub(crate) fn check_not_mid_ramp<B: burn::tensor::backend::Backend>(t: &Trained<B>) -> Result<()> {
    let step = t.state.step;
    if let Some(r) = &t.state.ramp {
        if r.mask_at(step).is_some() || r.msg_scales_at(step).is_some() {
            bail!(
                "{}: at step {step} the model is mid-ramp (its new width is masked until step {}); \
                 export a checkpoint from step {} on (e.g. `cargo xtask train --resume --out RUN --max-steps {}`)",
                t.path.display(),
                r.end_step(),
                r.end_step(),
                r.end_step().max(t.run.train.max_steps)
            );
        }
    }
    Ok(())
}

/// The tokenizer a trained model was trained with: a trained BPE is read from the run
/// directory's `tokenizer.json`.
pub(crate) fn tokenizer_of<B: burn::tensor::backend::Backend>(t: &Trained<B>) -> Result<Tokenizer> {
    let kind = t.run.data.tokenizer;
    if let TokenizerKind::Bpe { .. } = kind {
        let path = t.path.join("../../tokenizer.json");
        let json = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: the run's trained tokenizer is missing", path.display()))?;
        return Ok(Tokenizer::from_json(kind, &json)?);
    }
    Ok(Tokenizer::named(kind)?)
}

pub fn run(args: ExportArgs) -> Result<()> {
    let t = load_trained::<Flex>(&args.run, &Default::default())?;
    check_not_mid_ramp(&t)?;
    let tok = tokenizer_of(&t)?;
    export_model(
        &t.model,
        &t.config,
        &args.out,
        tok.eos(),
        &tok.hf_files(t.config.context_len),
    )?;
    println!(
        "wrote {} (GPT-Neo, {} parameters, {} tokenizer; step {} of {}, stage {})",
        args.out.display(),
        t.config.num_params(),
        tok.kind().name(),
        t.state.step,
        t.path.display(),
        t.state.stage
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use growlm::train::{train, RunConfig, RunOptions};

    #[test]
    fn a_model_mid_ramp_is_refused_and_exported_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..3000)
            .map(|i| ["the ", "union ", "is ", "strong. "][i % 4])
            .collect();
        std::fs::write(dir.path().join("c.txt"), text).unwrap();
        let toml = format!(
            r#"
[data]
source = "{}"
valid_batches = 1
[train]
batch_size = 2
seq_len = 8
max_steps = 10
lr = 1e-2
warmup_steps = 1
eval_every = 5
checkpoint_every = 5
[[stages]]
name = "small"
model = {{ context_len = 8, d_model = 8, n_layers = 1, n_heads = 2 }}
[[stages]]
name = "target"
model = {{ context_len = 8, d_model = 16, n_layers = 2, n_heads = 4 }}
growth = {{ ramp_steps = 8 }}
[policy]
name = "fixed"
steps = [6]
"#,
            dir.path().join("c.txt").display()
        );
        let mut cfg = RunConfig::from_toml(&toml).unwrap();
        let run_dir = dir.path().join("run");
        let go = |cfg: &RunConfig, resume: bool| {
            let o = RunOptions {
                resume,
                cache_dir: dir.path().join("cache"),
                ..RunOptions::new(&run_dir)
            };
            train::<burn_autodiff::Autodiff<Flex>>(cfg, &o, &growlm::registry(), &Default::default(), &mut []).unwrap();
        };
        go(&cfg, false);
        let out = dir.path().join("hf");
        let e = run(ExportArgs {
            run: run_dir.clone(),
            out: out.clone(),
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("at step 10 the model is mid-ramp") && e.contains("until step 14"),
            "{e}"
        );
        assert!(!out.exists());
        cfg.train.max_steps = 14;
        go(&cfg, true);
        run(ExportArgs {
            run: run_dir,
            out: out.clone(),
        })
        .unwrap();
        let (_, read) = growlm::hf::read_dir(&out).unwrap();
        assert_eq!(read, cfg.stages[1].model);
    }
}
