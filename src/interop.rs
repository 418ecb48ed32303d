//! Between growlm and Hugging Face directories (DESIGN.md §Interop): a run started from a
//! GPT-Neo checkpoint, and the tokenizer a directory's model was trained with.

use std::path::Path;

use crate::data::{DataError, Tokenizer, TokenizerKind};
use crate::hf::HfError;
use crate::model::GptConfig;
use crate::train::InitWeights;

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
    match std::fs::read_to_string(dir.join("tokenizer.json")) {
        Ok(json) => Tokenizer::from_json(TokenizerKind::Bpe { vocab_size: vocab }, &json).map(Some),
        Err(_) => Ok(None),
    }
}
