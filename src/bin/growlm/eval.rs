//! `cargo xtask eval --model RUN|DIR [--data PATH] [--task NAME=PATH …]`: mean next-token
//! loss and perplexity of a model on a text (`growlm::model::score`), and downstream tasks
//! as lm-evaluation-harness scores them (`growlm::lab::downstream`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use burn_flex::Flex;
use growlm::data::{check_text, TokenizerKind};
use growlm::lab::downstream::{evaluate, Scorer, TaskFile};
use growlm::model::score;

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
    data: Option<PathBuf>,
    /// A downstream task and its JSONL file, `NAME=PATH` (lambada, wikitext2, ptb, piqa,
    /// choice); repeatable. docs/evaluation.md says which files and fields.
    #[arg(long, value_name = "NAME=PATH")]
    task: Vec<String>,
    /// Tokenizer of the text [default: the run's; for a Hugging Face directory, the one
    /// its vocabulary size names: 256 bytes, 50257 GPT-2].
    #[arg(long, value_enum)]
    tokenizer: Option<TokenizerName>,
    /// Sequences scored at once.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Also write the results as JSON here (`loss`, `ppl`, `tokens` for --data; `tasks`).
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let dev = Default::default();
    let m = growlm::interop::for_eval::<B>(&args.model, args.tokenizer.map(Into::into), &dev)
        .with_context(|| format!("--model {}", args.model.display()))?;
    let (model, config, mask, tok) = (m.model, m.config, m.mask, m.tokenizer);
    let mut json = serde_json::Map::new();
    if let Some(data) = &args.data {
        let bytes = std::fs::read(data).with_context(|| format!("reading --data {}", data.display()))?;
        check_text(data, &bytes)?;
        let r = score(&model, &config, mask.as_ref(), &tok.encode(&bytes)?, args.batch)?;
        let chunks = r.tokens / (config.context_len - 1);
        println!(
            "{}: loss {:.4} nats/token, perplexity {:.3}, {} scored tokens ({chunks} chunks of {})",
            data.display(),
            r.loss,
            r.ppl,
            r.tokens,
            config.context_len
        );
        json = serde_json::to_value(r)?.as_object().cloned().unwrap_or_default();
    }
    let scorer = Scorer {
        model: &model,
        config: &config,
        mask: mask.as_ref(),
        tokenizer: &tok,
        batch: args.batch,
    };
    let mut tasks = Vec::new();
    for t in &args.task {
        let r = evaluate(&scorer, &TaskFile::parse(t)?)?;
        println!("{}", r.summary());
        tasks.push(r);
    }
    if args.data.is_none() && tasks.is_empty() {
        bail!("nothing to evaluate: give --data FILE, --task NAME=PATH, or both");
    }
    if !tasks.is_empty() {
        json.insert("tasks".into(), serde_json::to_value(&tasks)?);
    }
    if let Some(j) = &args.json {
        crate::write_file(j, &serde_json::to_vec_pretty(&json)?)?;
    }
    Ok(())
}
