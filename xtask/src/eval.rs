//! `cargo xtask eval --model RUN|DIR --data PATH`: mean next-token loss and perplexity of a
//! model on a text — the token stream cut into consecutive, non-overlapping chunks of
//! `context_len` tokens (a partial last chunk dropped), each chunk scoring its tokens 2…n
//! given the ones before, averaged over all scored tokens.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::{Int, Tensor, TensorData};
use burn_flex::Flex;
use growlm::data::{check_text, Tokenizer, TokenizerKind};
use growlm::hf::import_model;
use growlm::model::{AttentionMasks, Gpt, GptConfig, WidthMask};
use growlm::train::load_trained;
use serde::Serialize;

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
    /// GPT-Neo directory (with `config.json` and `model.safetensors`).
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

/// What `eval` measured.
#[derive(Debug, Serialize, PartialEq)]
pub struct EvalResult {
    /// Mean next-token cross-entropy (nats) over the scored tokens.
    pub loss: f64,
    /// `exp(loss)`.
    pub ppl: f64,
    /// Number of scored tokens.
    pub tokens: usize,
}

/// Scores `ids` with `model` (see the module docs); `mask` is the width mask of a model
/// read mid-ramp.
pub fn score(
    model: &Gpt<B>,
    config: &GptConfig,
    mask: Option<&WidthMask<B>>,
    ids: &[u16],
    batch: usize,
) -> Result<EvalResult> {
    let n = config.context_len;
    let chunks: Vec<&[u16]> = ids.chunks_exact(n).collect();
    if chunks.is_empty() || n < 2 {
        bail!(
            "the text has {} tokens, fewer than one chunk of context_len = {n}; give a longer text",
            ids.len()
        );
    }
    let dev = Default::default();
    let masks = AttentionMasks::new(config, n - 1, &dev);
    let mut total = 0.0f64;
    for group in chunks.chunks(batch.max(1)) {
        let flat: Vec<i64> = group.iter().flat_map(|c| c.iter().map(|t| *t as i64)).collect();
        let x = Tensor::<B, 2, Int>::from_data(TensorData::new(flat, vec![group.len(), n]), &dev);
        let logits = model.forward(x.clone().narrow(1, 0, n - 1), &masks, mask);
        let mean = growlm::model::cross_entropy(logits, x.narrow(1, 1, n - 1)).into_scalar() as f64;
        total += mean * (group.len() * (n - 1)) as f64;
    }
    let tokens = chunks.len() * (n - 1);
    let loss = total / tokens as f64;
    Ok(EvalResult {
        loss,
        ppl: loss.exp(),
        tokens,
    })
}

/// The tokenizer of a Hugging Face directory: bytes or GPT-2 by its vocabulary size, else
/// the trained BPE in its `tokenizer.json`.
fn hf_tokenizer(dir: &Path, vocab: usize) -> Result<Option<Tokenizer>> {
    for kind in [TokenizerKind::Byte, TokenizerKind::Gpt2] {
        if kind.vocab_size() == vocab {
            return Ok(Some(Tokenizer::named(kind)?));
        }
    }
    match std::fs::read_to_string(dir.join("tokenizer.json")) {
        Ok(json) => Ok(Some(Tokenizer::from_json(
            TokenizerKind::Bpe { vocab_size: vocab },
            &json,
        )?)),
        Err(_) => Ok(None),
    }
}

fn is_hf_dir(p: &Path) -> bool {
    p.join("config.json").is_file() && !p.join("state.json").is_file() && !p.join("checkpoints").is_dir()
}

pub fn run(args: EvalArgs) -> Result<()> {
    let dev = Default::default();
    let named = args.tokenizer.map(|t| Tokenizer::named(t.into())).transpose()?;
    let (model, config, mask, own) = if is_hf_dir(&args.model) {
        let m = import_model::<B>(&args.model, None, &dev)?;
        let own = hf_tokenizer(&args.model, m.config.vocab_size)?;
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
        let own = crate::export::tokenizer_of(&t)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_consecutive_chunks_and_drops_the_partial_one() {
        // Hand-worked: a model whose logits are all equal predicts every token with
        // probability 1/V, so the loss is ln V whatever the text; the count is
        // (chunks) · (n − 1).
        let cfg = GptConfig::new(256, 8, 8, 1, 2);
        let mut model = cfg.init::<B>(0, &Default::default()).unwrap();
        model.wte = burn::module::Param::from_tensor(Tensor::zeros([256, 8], &Default::default()));
        let ids: Vec<u16> = (0..30).map(|i| (i * 7 % 256) as u16).collect();
        let r = score(&model, &cfg, None, &ids, 2).unwrap();
        assert_eq!(r.tokens, 3 * 7);
        assert!((r.loss - (256f64).ln()).abs() < 1e-5, "{}", r.loss);
        assert!((r.ppl - 256.0).abs() < 1e-2);
        // Fewer tokens than one chunk is an error naming the sizes.
        let e = score(&model, &cfg, None, &ids[..7], 2).unwrap_err().to_string();
        assert!(e.contains("7 tokens") && e.contains("context_len = 8"), "{e}");
    }

    #[test]
    fn batching_does_not_change_the_result() {
        let cfg = GptConfig::new(256, 16, 16, 2, 2);
        let model = cfg.init::<B>(3, &Default::default()).unwrap();
        let ids: Vec<u16> = b"the quick brown fox jumps over the lazy dog, again and again and again."
            .iter()
            .map(|b| *b as u16)
            .collect();
        let one = score(&model, &cfg, None, &ids, 1).unwrap();
        let all = score(&model, &cfg, None, &ids, 64).unwrap();
        assert_eq!(one.tokens, 4 * 15);
        assert!((one.loss - all.loss).abs() < 1e-6);
        // Against a direct computation on the chunks.
        let masks = AttentionMasks::new(&cfg, 15, &Default::default());
        let mut sum = 0.0;
        for c in ids.chunks_exact(16) {
            let x: Vec<i64> = c.iter().map(|t| *t as i64).collect();
            let x = Tensor::<B, 2, Int>::from_data(TensorData::new(x, vec![1, 16]), &Default::default());
            sum += model
                .loss(x.clone().narrow(1, 0, 15), x.narrow(1, 1, 15), &masks, None)
                .into_scalar() as f64;
        }
        assert!((one.loss - sum / 4.0).abs() < 1e-6);
    }
}
