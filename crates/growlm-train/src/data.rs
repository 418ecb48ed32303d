//! A run's data (docs/design.md §Data): the config's source opened as a text corpus or as
//! documents in the token store, the tokenizer, and the batches (paper §4.3).

use std::path::Path;

use growlm_data::{Batcher, DocOptions, Input, StoreSpec, TokenStore, Tokenizer, TokenizerKind};

use crate::{RunConfig, TrainError};

/// Tokenizes the data of `cfg` (into the token store, or the token cache of a text corpus,
/// under `cache_dir`) without training, and says what it holds: what `growlm train
/// --prepare-data` prints, so a corpus can be tokenized once before many runs.
pub fn prepare_data(cfg: &RunConfig, cache_dir: &Path) -> Result<String, TrainError> {
    let input = Input::open(&cfg.data.source, cfg.data.split, cache_dir)?;
    let (b, source) = batcher(cfg, input, None, false, cache_dir)?;
    Ok(format!(
        "{source}: {} training and {} validation tokens, tokenizer {}",
        b.train_tokens(),
        b.valid_tokens(),
        cfg.data.tokenizer.name()
    ))
}

/// The run's tokenizer. A trained one, or one read from a `tokenizer.json`, is kept in the
/// run directory as `tokenizer.json`; a continued run reads it from there, so it tokenizes
/// exactly as before.
fn tokenizer(
    cfg: &RunConfig,
    train_text: &[u8],
    dir: Option<&Path>,
    continued: bool,
    cache_dir: &std::path::Path,
) -> Result<Tokenizer, TrainError> {
    let kept = dir.map(|d| d.join("tokenizer.json"));
    let tokenizer = match kept.as_ref().map(std::fs::read_to_string).transpose() {
        Ok(Some(json))
            if continued && matches!(cfg.data.tokenizer, TokenizerKind::Bpe { .. } | TokenizerKind::File(_)) =>
        {
            Tokenizer::from_json(cfg.data.tokenizer.clone(), &json)?
        }
        _ => Tokenizer::build(cfg.data.tokenizer.clone(), train_text, cache_dir)?,
    };
    if let (Some(json), Some(kept)) = (tokenizer.json(), &kept) {
        crate::output::write_atomic(kept, json.as_bytes())?;
    }
    Ok(tokenizer)
}

/// The run's batches and the name of their source: a text corpus tokenized in memory
/// (token streams cached under `cache_dir`), or documents tokenized into a token store.
pub(crate) fn batcher(
    cfg: &RunConfig,
    input: Input,
    dir: Option<&Path>,
    continued: bool,
    cache_dir: &Path,
) -> Result<(Batcher, String), TrainError> {
    let t = &cfg.train;
    fn short(source: &str) -> impl Fn(growlm_data::DataError) -> growlm_data::DataError + '_ {
        move |e| match e {
            e @ growlm_data::DataError::TooShort { .. } => growlm_data::DataError::TooSmall {
                source_name: source.to_string(),
                reason: e.to_string(),
            },
            e => e,
        }
    }
    match input {
        Input::Text(corpus) => {
            let tok = tokenizer(cfg, &corpus.train, dir, continued, cache_dir)?;
            let (train, valid) = (
                tok.encode_cached(&corpus.train, cache_dir)?,
                tok.encode_cached(&corpus.valid, cache_dir)?,
            );
            let b = Batcher::new(train, valid, t.batch_size, t.seq_len, cfg.seed).map_err(short(&corpus.source))?;
            Ok((b, corpus.source))
        }
        Input::Documents(sources) => {
            if let TokenizerKind::Bpe { .. } = cfg.data.tokenizer {
                return Err(TrainError::config(
                    "data.tokenizer",
                    "a BPE is trained on a text corpus held in memory, and this source is split by document; \
                     use \"gpt2\" or a tokenizer.json ({ file = \"…/tokenizer.json\" })",
                ));
            }
            let tok = Tokenizer::build(cfg.data.tokenizer.clone(), &[], cache_dir)?;
            let spec = StoreSpec {
                sources: sources.clone(),
                docs: DocOptions {
                    text_key: cfg.data.text_key.clone(),
                    skip_bad: cfg.data.skip_bad_lines,
                },
                valid_fraction: cfg.data.valid_fraction,
                progress: true,
            };
            let store = TokenStore::open_or_build(&spec, &tok, cache_dir)?;
            let files = if sources.len() == 1 {
                "1 file".into()
            } else {
                format!("{} files", sources.len())
            };
            let name = format!(
                "{} ({files}; token store {})",
                cfg.data.source.describe(),
                store.dir.display()
            );
            let b = Batcher::from_store(store, t.batch_size, t.seq_len, cfg.seed).map_err(short(&name))?;
            Ok((b, name))
        }
    }
}
