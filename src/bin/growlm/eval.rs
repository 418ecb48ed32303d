//! `cargo xtask eval --model RUN|DIR --data PATH`: mean next-token loss and perplexity of a
//! model on a text, scored by `growlm::model::score`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use burn_flex::Flex;
use growlm::data::{check_text, Tokenizer, TokenizerKind};
use growlm::hf::import_model;
use growlm::model::score;
use growlm::train::load_trained;

type B = Flex;

/// The tokenizer that turns the text into ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenizerName {
    /// One id per byte (growlm's default; vocabulary 256).
    Byte,
    /// GPT-2's BPE (vocabulary 50257).
    Gpt2,
}

impl From<TokenizerName> for TokenizerKind {
    fn from(t: TokenizerName) -> Self {
        match t {
            TokenizerName::Byte => TokenizerKind::Byte,
            TokenizerName::Gpt2 => TokenizerKind::Gpt2,
        }
    }
}

/// Arguments of `cargo xtask eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// A run directory (its latest checkpoint), a checkpoint directory, or a Hugging Face
    /// GPT-Neo, Llama or Qwen2 directory (with `config.json` and `model.safetensors`).
    #[arg(long)]
    model: PathBuf,
    /// Text file to score.
    #[arg(long)]
    data: PathBuf,
    /// Tokenizer of the text [default: the run's; for a Hugging Face directory, the one
    /// its vocabulary size names: 256 bytes, 50257 GPT-2].
    #[arg(long, value_enum)]
    tokenizer: Option<TokenizerName>,
    /// Sequences scored at once.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Also write `loss`, `ppl` and `tokens` as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let dev = Default::default();
    let named = args.tokenizer.map(|t| Tokenizer::named(t.into())).transpose()?;
    let (model, config, mask, own) = if growlm::interop::is_hf_dir(&args.model) {
        let m = import_model::<B>(&args.model, None, &dev)?;
        let own = growlm::interop::hf_tokenizer(&args.model, m.config.vocab_size)?;
        (m.model, m.config, None, own)
    } else {
        let t = load_trained::<B>(&args.model, &dev).with_context(|| {
            format!(
                "--model {}: not a Hugging Face directory (no config.json) and not a growlm run",
                args.model.display()
            )
        })?;
        let mask = match &t.state.ramp {
            Some(r) => r.width_mask::<B>(&t.config, t.state.step, &dev)?,
            None => None,
        };
        let own = t.tokenizer()?;
        (t.model, t.config, mask, Some(own))
    };
    let tok = match (named, own) {
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => bail!(
            "the model's vocabulary has {} ids, which names no tokenizer growlm has, and its directory has no \
             tokenizer.json; pass --tokenizer",
            config.vocab_size
        ),
    };
    if tok.kind().vocab_size() > config.vocab_size {
        bail!(
            "the model's vocabulary has {} ids but the {} tokenizer gives up to {}; pass the model's --tokenizer",
            config.vocab_size,
            tok.kind().name(),
            tok.kind().vocab_size()
        );
    }
    let bytes = std::fs::read(&args.data).with_context(|| format!("reading --data {}", args.data.display()))?;
    check_text(&args.data, &bytes)?;
    let ids = tok.encode(&bytes)?;
    let r = score(&model, &config, mask.as_ref(), &ids, args.batch)?;
    println!(
        "{}: loss {:.4} nats/token, perplexity {:.3}, {} scored tokens ({} chunks of {})",
        args.data.display(),
        r.loss,
        r.ppl,
        r.tokens,
        r.tokens / (config.context_len - 1),
        config.context_len
    );
    if let Some(j) = &args.json {
        crate::write_file(j, &serde_json::to_vec_pretty(&r)?)?;
    }
    Ok(())
}
