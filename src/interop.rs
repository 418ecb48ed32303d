//! Between growlm and Hugging Face directories (docs/design.md §Interop): a run started from a
//! GPT-Neo checkpoint, and the tokenizer a directory's model was trained with.

use std::path::Path;

use burn::optim::AdamWConfig;
use burn::tensor::{Distribution, Int, Tensor};

use crate::data::{DataError, Tokenizer, TokenizerKind};
use crate::hf::HfError;
use crate::model::{AttentionMasks, Gpt, GptConfig};
use crate::ops::{Growth, GrowthConfig, OpsError};
use crate::train::InitWeights;

type B = burn_autodiff::Autodiff<burn_flex::Flex>;

/// Files of a Hugging Face directory that describe its tokenizer, copied to a grown model.
const TOKENIZER_FILES: [&str; 6] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "generation_config.json",
];

/// The largest `tokenizer.json` growlm reads (64 MiB; GPT-2's is 1.4 MB, the largest
/// vocabularies' about 10 MB).
pub const MAX_TOKENIZER_BYTES: u64 = 64 << 20;

/// Errors of an offline growth.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrowError {
    /// Reading or writing a Hugging Face directory.
    #[error(transparent)]
    Hf(#[from] HfError),
    /// The growth itself.
    #[error(transparent)]
    Ops(#[from] OpsError),
    /// The operator needs a mask that ramps during training, which a model saved for
    /// others cannot carry.
    #[error("operator {0} needs a mask that ramps during training; grow inside a training run started from this model, or pick a mask-free operator such as width hypercloning or fpi with depth redundant")]
    NeedsRamp(String),
}

/// What an offline growth did.
#[derive(Debug, Clone, Copy)]
pub struct OfflineGrowth {
    /// The source model's parameters.
    pub params_before: usize,
    /// Largest |Δlogit| between source and grown model on a fixed random batch.
    pub logit_change: f32,
}

/// Grows the GPT-Neo directory `from` into a model of `target` with `op` (mask-free
/// operators only; paper §3.3–3.5, public checkpoints as the source) and writes it, with
/// the source's tokenizer files, as a Hugging Face directory `out`.
pub fn grow_offline(
    from: &Path,
    target: &GptConfig,
    op: &GrowthConfig,
    seed: u64,
    out: &Path,
) -> Result<OfflineGrowth, GrowError> {
    let (w, d) = op.operators();
    if w.ramps() || w.scales_softly() || d.gates_new_layers() {
        return Err(GrowError::NeedsRamp(format!("{}+{}", op.width, op.depth)));
    }
    // The grown model and the source's copies made while growing, before either exists.
    let (_, source) = crate::hf::read_dir(from)?;
    crate::model::memory::check_fits(
        &format!("growing {} into the target", from.display()),
        (source.num_params() + target.num_params()) as f64 * 12.0,
        "the target (`--set` its d_model or n_layers)",
    )
    .map_err(HfError::from)?;
    let dev = Default::default();
    let src = crate::hf::import_model::<B>(from, None, &dev)?;
    let optim = AdamWConfig::new().init();
    let grown = Growth::new(&src.config, target, op, seed).apply(&src.model, &optim, AdamWConfig::new().init())?;
    let logit_change = max_logit_change((&src.model, &src.config), (&grown.model, target));
    let extra: Vec<(&str, Vec<u8>)> = TOKENIZER_FILES
        .iter()
        .filter_map(|f| std::fs::read(from.join(f)).ok().map(|b| (*f, b)))
        .collect();
    crate::hf::export_model(&grown.model, target, out, src.hf.eos_token_id(), &extra)?;
    Ok(OfflineGrowth {
        params_before: src.config.num_params(),
        logit_change,
    })
}

/// Largest |Δlogit| between two models on a fixed random batch.
fn max_logit_change(a: (&Gpt<B>, &GptConfig), b: (&Gpt<B>, &GptConfig)) -> f32 {
    let t = a.1.context_len.min(b.1.context_len).min(64);
    let dev = Default::default();
    <B as burn::tensor::backend::Backend>::seed(&dev, 0);
    let x = Tensor::<B, 2, Int>::random([4, t], Distribution::Uniform(0.0, a.1.vocab_size as f64), &dev);
    let la = a.0.forward(x.clone(), &AttentionMasks::new(a.1, t, &dev), None);
    let lb = b.0.forward(x, &AttentionMasks::new(b.1, t, &dev), None);
    (la - lb).abs().max().into_scalar()
}

/// Whether `p` is a Hugging Face model directory (a `config.json`, and not a growlm run or
/// checkpoint).
pub fn is_hf_dir(p: &Path) -> bool {
    p.join("config.json").is_file() && !p.join("state.json").is_file() && !p.join("checkpoints").is_dir()
}

/// The weights of the GPT-Neo directory `dir` to start a run's first stage from; its
/// `config.json` must describe `model`.
pub fn init_from_hf(dir: &Path, model: &GptConfig) -> Result<InitWeights, HfError> {
    let m = crate::hf::import_model::<burn_flex::Flex>(dir, Some(model), &Default::default())?;
    Ok(InitWeights {
        source: std::path::absolute(dir)
            .unwrap_or(dir.to_path_buf())
            .display()
            .to_string(),
        values: crate::model::param_values::<burn_flex::Flex, _>(&m.model),
    })
}

/// The tokenizer of a Hugging Face directory: bytes or GPT-2 by its vocabulary size, else
/// the trained BPE in its `tokenizer.json` (`None`: it names none growlm has).
pub fn hf_tokenizer(dir: &Path, vocab: usize) -> Result<Option<Tokenizer>, DataError> {
    for kind in [TokenizerKind::Byte, TokenizerKind::Gpt2] {
        if kind.vocab_size() == vocab {
            return Tokenizer::named(kind).map(Some);
        }
    }
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = crate::fs::read_limited(&path, MAX_TOKENIZER_BYTES, "a tokenizer.json").map_err(|e| DataError::Io {
        path: path.clone(),
        source: e,
    })?;
    let json = String::from_utf8_lossy(&bytes);
    Tokenizer::from_json(TokenizerKind::Bpe { vocab_size: vocab }, &json)
        .map(Some)
        .map_err(|e| DataError::Corrupt {
            path,
            reason: format!("not a tokenizer growlm reads for this model ({e})"),
        })
}

/// A model to evaluate, read from a run, a checkpoint or a Hugging Face directory, with
/// the tokenizer of its text.
pub struct ForEval<B: burn::tensor::backend::Backend> {
    /// The model.
    pub model: Gpt<B>,
    /// Its config.
    pub config: GptConfig,
    /// Its width mask, for a run read mid-ramp.
    pub mask: Option<crate::model::WidthMask<B>>,
    /// The tokenizer: `tokenizer` when given, else the run's or the directory's own.
    pub tokenizer: Tokenizer,
}

/// Why a model could not be read for evaluation.
#[derive(Debug, thiserror::Error)]
pub enum ForEvalError {
    /// A Hugging Face directory could not be read.
    #[error(transparent)]
    Hf(#[from] HfError),
    /// A run or checkpoint could not be read.
    #[error("{0}: not a Hugging Face directory (no config.json) and not a growlm run")]
    Run(String, #[source] crate::train::TrainError),
    /// The tokenizer could not be built or read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The model names no tokenizer, or not the one given.
    #[error("{0}")]
    Tokenizer(String),
}

/// Reads `path` (a run, a checkpoint or a Hugging Face directory) for evaluation, with
/// `tokenizer` or the model's own; refuses a tokenizer whose ids the model does not have.
pub fn for_eval<B: burn::tensor::backend::Backend>(
    path: &Path,
    tokenizer: Option<TokenizerKind>,
    device: &B::Device,
) -> Result<ForEval<B>, ForEvalError> {
    let named = tokenizer.map(Tokenizer::named).transpose()?;
    let (model, config, mask, own) = if is_hf_dir(path) {
        let m = crate::hf::import_model::<B>(path, None, device)?;
        let own = hf_tokenizer(path, m.config.vocab_size)?;
        (m.model, m.config, None, own)
    } else {
        let t = crate::train::load_trained::<B>(path, device)
            .map_err(|e| ForEvalError::Run(path.display().to_string(), e))?;
        let mask = t
            .width_mask(device)
            .map_err(|e| ForEvalError::Run(path.display().to_string(), e))?;
        let own = t
            .tokenizer()
            .map_err(|e| ForEvalError::Run(path.display().to_string(), e))?;
        (t.model, t.config, mask, Some(own))
    };
    let tokenizer = named.or(own).ok_or_else(|| {
        ForEvalError::Tokenizer(format!(
            "the model's vocabulary has {} ids, which names no tokenizer growlm has, and its directory has no \
             tokenizer.json; pass --tokenizer",
            config.vocab_size
        ))
    })?;
    if tokenizer.kind().vocab_size() > config.vocab_size {
        return Err(ForEvalError::Tokenizer(format!(
            "the model's vocabulary has {} ids but the {} tokenizer gives up to {}; pass the model's --tokenizer",
            config.vocab_size,
            tokenizer.kind().name(),
            tokenizer.kind().vocab_size()
        )));
    }
    Ok(ForEval {
        model,
        config,
        mask,
        tokenizer,
    })
}
