//! `cargo xtask export RUN --out DIR`: a run's latest model (or a given checkpoint's) as a
//! Hugging Face GPT-Neo, Llama or Qwen2 directory that `AutoModelForCausalLM.from_pretrained` loads.

use std::path::PathBuf;

use anyhow::Result;
use burn_flex::Flex;
use growlm::hf::export_model;
use growlm::train::load_trained;

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

pub fn run(args: ExportArgs) -> Result<()> {
    let t = load_trained::<Flex>(&args.run, &Default::default())?;
    t.check_not_mid_ramp()?;
    let tok = t.tokenizer()?;
    export_model(
        &t.model,
        &t.config,
        &args.out,
        tok.eos(),
        &tok.hf_files(t.config.context_len),
    )?;
    println!(
        "wrote {} ({}, {} parameters, {} tokenizer; step {} of {}, stage {})",
        args.out.display(),
        t.config.describe().hf.architecture,
        t.config.num_params(),
        tok.kind().name(),
        t.state.step,
        t.path.display(),
        t.state.stage
    );
    Ok(())
}
