//! Tokenizers (docs/design.md §Data): bytes (the default: id = byte value), GPT-2's BPE, the
//! tokenizer GPT-Neo uses, with its ranks taken from the `tiktoken-rs` crate (nothing is
//! downloaded), and a byte-level BPE trained on the training split with the `tokenizers`
//! crate. Trained tokenizers and token streams are cached next to the corpus, keyed by the
//! tokenizer and the text's checksum, so runs do not re-train or re-tokenize.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::hf_files::{byte_files, gpt2_files, json_bytes, BYTE_EOS, GPT2_EOT};
use crate::{sha256_hex, write_atomic, ByteTokenizer, DataError};

/// Which tokenizer turns text into ids (`[data] tokenizer`: `"byte"`, `"gpt2"`,
/// `{ bpe = { vocab_size = 4096 } }` or `{ file = "path/to/tokenizer.json" }`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TokenizerKind {
    /// One id per byte; vocabulary 256.
    #[default]
    Byte,
    /// GPT-2's byte-level BPE (`r50k_base`); vocabulary 50257, `<|endoftext|>` = 50256.
    Gpt2,
    /// A byte-level BPE trained on the training split: 256 byte tokens, `<|endoftext|>`
    /// and merges up to `vocab_size` tokens (fewer if the text has fewer distinct pairs).
    Bpe {
        /// Vocabulary size, 258 to 65536.
        vocab_size: usize,
    },
    /// A Hugging Face `tokenizer.json` (a model's own, such as SmolLM2's), by path. Its
    /// end-of-text is the first of `<|endoftext|>`, `<|end_of_text|>`, `</s>`, `<eos>` it has.
    File(PathBuf),
}

impl TokenizerKind {
    /// Vocabulary size; the model's `vocab_size` follows it. A `tokenizer.json` is read
    /// for it (0 when it cannot be: [`TokenizerKind::validate`] names why).
    pub fn vocab_size(&self) -> usize {
        match self {
            Self::Byte => ByteTokenizer::VOCAB_SIZE,
            Self::Gpt2 => GPT2_EOT as usize + 1,
            Self::Bpe { vocab_size } => *vocab_size,
            Self::File(path) => Tokenizer::from_file(path).map_or(0, |t| t.vocab_size()),
        }
    }

    /// The name in messages and cache files.
    pub fn name(&self) -> String {
        match self {
            Self::Byte => "byte".into(),
            Self::Gpt2 => "gpt2".into(),
            Self::Bpe { vocab_size } => format!("bpe{vocab_size}"),
            Self::File(_) => "file".into(),
        }
    }

    /// Checks the settings; the error says what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Self::Bpe { vocab_size } if !(258..=65536).contains(vocab_size) => Err(format!(
                "bpe vocab_size = {vocab_size}: must be 258 to 65536 (256 bytes, <|endoftext|>, at least one merge; ids are 16-bit)"
            )),
            Self::File(path) => Tokenizer::from_file(path).map(|_| ()).map_err(|e| match e {
                DataError::Tokenizer { reason } => reason,
                e => e.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

/// A ready tokenizer: the kind, and for a trained BPE its trained model.
#[derive(Clone)]
pub struct Tokenizer {
    kind: TokenizerKind,
    trained: Option<(tokenizers::Tokenizer, String)>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer").field("kind", &self.kind).finish()
    }
}

/// The end-of-text token of trained tokenizers (GPT-2's spelling).
const EOT: &str = "<|endoftext|>";

/// End-of-text spellings looked for in a `tokenizer.json`, in order.
const EOT_SPELLINGS: [&str; 4] = [EOT, "<|end_of_text|>", "</s>", "<eos>"];

/// The most a `tokenizer.json` may weigh (Llama 3's is 9 MB).
const MAX_TOKENIZER_JSON: u64 = 256 << 20;

fn bpe_err(what: impl std::fmt::Display) -> DataError {
    DataError::Tokenizer {
        reason: what.to_string(),
    }
}

impl Tokenizer {
    /// The byte tokenizer.
    pub fn byte() -> Self {
        Self {
            kind: TokenizerKind::Byte,
            trained: None,
        }
    }

    /// A tokenizer that needs no training (bytes, GPT-2); a BPE is refused: it needs its
    /// trained `tokenizer.json` ([`Tokenizer::from_json`]) or a text ([`Tokenizer::build`]).
    pub fn named(kind: TokenizerKind) -> Result<Self, DataError> {
        match kind {
            TokenizerKind::Bpe { .. } => Err(bpe_err(format!(
                "{} is trained on a text; read its tokenizer.json instead",
                kind.name()
            ))),
            TokenizerKind::File(path) => Self::from_file(&path),
            _ => Ok(Self { kind, trained: None }),
        }
    }

    /// The tokenizer `kind` names; a BPE is trained on `train_text` (or read from the
    /// cache under `cache_dir` if it was trained on the same text before).
    pub fn build(kind: TokenizerKind, train_text: &[u8], cache_dir: &Path) -> Result<Self, DataError> {
        kind.validate().map_err(bpe_err)?;
        let vocab_size = match &kind {
            TokenizerKind::Bpe { vocab_size } => *vocab_size,
            TokenizerKind::File(path) => return Self::from_file(path),
            _ => return Self::named(kind),
        };
        let dir = token_cache_dir(cache_dir);
        let path = dir.join(format!("{}-{}.json", kind.name(), &sha256_hex(train_text)[..32]));
        if let Ok(json) = std::fs::read_to_string(&path) {
            if let Ok(t) = Self::from_json(kind.clone(), &json) {
                return Ok(t);
            }
        }
        let json = train_bpe(vocab_size, train_text)?;
        std::fs::create_dir_all(&dir).map_err(|source| DataError::Io {
            path: dir.clone(),
            source,
        })?;
        write_atomic(&path, json.as_bytes())?;
        Self::from_json(kind, &json)
    }

    /// A Hugging Face `tokenizer.json` by path ([`TokenizerKind::File`]).
    pub fn from_file(path: &Path) -> Result<Self, DataError> {
        let bytes = growlm_fs::read_limited(path, MAX_TOKENIZER_JSON, "a tokenizer.json").map_err(|e| {
            bpe_err(format!(
                "{}: {e}; set data.tokenizer = {{ file = \"…/tokenizer.json\" }} to a readable file",
                path.display()
            ))
        })?;
        let json = String::from_utf8(bytes).map_err(|_| bpe_err(format!("{} is not UTF-8 JSON", path.display())))?;
        let t = Self::from_json(TokenizerKind::File(path.to_path_buf()), &json)
            .map_err(|e| bpe_err(format!("{}: {e}", path.display())))?;
        if t.eos().is_none() {
            return Err(bpe_err(format!(
                "{} has none of the end-of-text tokens {EOT_SPELLINGS:?}, which separate documents",
                path.display()
            )));
        }
        Ok(t)
    }

    /// The vocabulary size (a trained or file tokenizer's own count, added tokens included).
    pub fn vocab_size(&self) -> usize {
        match &self.trained {
            Some((t, _)) if matches!(self.kind, TokenizerKind::File(_)) => t.get_vocab_size(true),
            _ => self.kind.vocab_size(),
        }
    }

    /// What identifies the tokenizer in caches: its name, and for a trained or file
    /// tokenizer the checksum of its `tokenizer.json`.
    pub fn identity(&self) -> String {
        match self.json() {
            Some(j) => format!("{}-{}", self.kind.name(), &sha256_hex(j.as_bytes())[..16]),
            None => self.kind.name(),
        }
    }

    /// The ids of one whole document, as `tokenizers` encodes a text without special
    /// tokens (and `tiktoken` for GPT-2): what the token store holds.
    pub fn encode_document(&self, text: &str) -> Result<Vec<u32>, DataError> {
        Ok(match (&self.kind, &self.trained) {
            (TokenizerKind::Gpt2, _) => tiktoken_rs::r50k_base_singleton().encode_ordinary(text),
            (_, Some((t, _))) => t.encode_fast(text, false).map_err(bpe_err)?.get_ids().to_vec(),
            _ => text.bytes().map(u32::from).collect(),
        })
    }

    /// A trained BPE read back from its `tokenizer.json`.
    pub fn from_json(kind: TokenizerKind, json: &str) -> Result<Self, DataError> {
        // Strict JSON first: the `tokenizers` crate (0.22) panics on some malformed sections
        // (an `unwrap` in its decoder's deserializer, found by tests/fuzz_foreign.rs), so
        // what is not JSON never reaches it, and a panic of its parser is an error here.
        serde_json::from_str::<serde_json::Value>(json).map_err(|e| bpe_err(format!("not JSON: {e}")))?;
        let parsed = std::panic::catch_unwind(|| tokenizers::Tokenizer::from_str(json));
        let t = parsed
            .map_err(|_| bpe_err("the tokenizers crate could not read it (it panicked)"))?
            .map_err(bpe_err)?;
        let n = t.get_vocab_size(true);
        if !matches!(kind, TokenizerKind::File(_)) && n > kind.vocab_size() {
            return Err(bpe_err(format!(
                "the trained tokenizer has {n} tokens, more than {} vocab_size = {}",
                kind.name(),
                kind.vocab_size()
            )));
        }
        Ok(Self {
            kind,
            trained: Some((t, json.to_string())),
        })
    }

    /// Which tokenizer this is.
    pub fn kind(&self) -> &TokenizerKind {
        &self.kind
    }

    /// A trained tokenizer's `tokenizer.json`, to keep in the run directory.
    pub fn json(&self) -> Option<&str> {
        self.trained.as_ref().map(|(_, j)| j.as_str())
    }

    /// The end-of-text id, if the tokenizer has one: GPT-2's `<|endoftext|>`, a trained
    /// BPE's end-of-text, and for bytes the newline ([`BYTE_EOS`]).
    pub fn eos(&self) -> Option<usize> {
        match (&self.kind, &self.trained) {
            (TokenizerKind::Gpt2, _) => Some(GPT2_EOT as usize),
            (_, Some((t, _))) => EOT_SPELLINGS.iter().find_map(|s| t.token_to_id(s)).map(|i| i as usize),
            _ => Some(BYTE_EOS as usize),
        }
    }

    /// Token ids of `text` (the BPEs read it as UTF-8, invalid bytes replaced).
    pub fn encode(&self, text: &[u8]) -> Result<Vec<u16>, DataError> {
        if self.vocab_size() > 1 << 16 {
            return Err(bpe_err(format!(
                "it has {} ids, more than 16 bits hold in memory; a tokenizer this large needs the token store: set data.split = \"documents\"",
                self.vocab_size()
            )));
        }
        Ok(match (&self.kind, &self.trained) {
            (TokenizerKind::Gpt2, _) => {
                let text = String::from_utf8_lossy(text);
                let ids = tiktoken_rs::r50k_base_singleton().encode_ordinary(&text);
                ids.into_iter().map(|r| r as u16).collect()
            }
            (_, Some((t, _))) => {
                // One encoding call per line keeps memory flat on large texts; the
                // byte-level pre-tokenizer splits at whitespace anyway.
                let text = String::from_utf8_lossy(text);
                let mut ids = Vec::with_capacity(text.len() / 3);
                for line in text.split_inclusive('\n') {
                    let e = t.encode_fast(line, false).map_err(bpe_err)?;
                    ids.extend(e.get_ids().iter().map(|i| *i as u16));
                }
                ids
            }
            _ => ByteTokenizer.encode(text),
        })
    }

    /// `text` tokenized, read from the cache under `cache_dir` when it was tokenized before
    /// (keyed by the tokenizer and the text's SHA-256), else tokenized and cached. The byte
    /// tokenizer is not cached: it costs nothing.
    pub fn encode_cached(&self, text: &[u8], cache_dir: &Path) -> Result<Vec<u16>, DataError> {
        if self.kind == TokenizerKind::Byte {
            return self.encode(text);
        }
        let model = self
            .json()
            .map_or(String::new(), |j| format!("-{}", &sha256_hex(j.as_bytes())[..12]));
        let dir = token_cache_dir(cache_dir);
        let path = dir.join(format!("{}{model}-{}.u16", self.kind.name(), &sha256_hex(text)[..32]));
        if let Ok(bytes) = std::fs::read(&path) {
            if bytes.len() % 2 == 0 {
                return Ok(bytes
                    .chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect());
            }
        }
        let ids = self.encode(text)?;
        std::fs::create_dir_all(&dir).map_err(|source| DataError::Io {
            path: dir.clone(),
            source,
        })?;
        let bytes: Vec<u8> = ids.iter().flat_map(|t| t.to_le_bytes()).collect();
        write_atomic(&path, &bytes)?;
        Ok(ids)
    }

    /// The tokenizer's files for a Hugging Face model directory that reproduce its ids:
    /// for bytes a `tokenizers` byte-level BPE without merges, for GPT-2 its `vocab.json`
    /// and `merges.txt` rebuilt from the ranks.
    pub fn hf_files(&self, context_len: usize) -> Vec<(&'static str, Vec<u8>)> {
        match (&self.kind, self.json()) {
            (TokenizerKind::Gpt2, _) => gpt2_files(context_len),
            (_, Some(json)) => {
                let eot = self
                    .trained
                    .as_ref()
                    .and_then(|(t, _)| EOT_SPELLINGS.into_iter().find(|s| t.token_to_id(s).is_some()))
                    .unwrap_or(EOT);
                let config = serde_json::json!({
                    "tokenizer_class": "PreTrainedTokenizerFast",
                    "model_max_length": context_len,
                    "eos_token": eot, "bos_token": eot,
                    "clean_up_tokenization_spaces": false
                });
                vec![
                    ("tokenizer.json", json.as_bytes().to_vec()),
                    ("tokenizer_config.json", json_bytes(&config)),
                ]
            }
            _ => byte_files(context_len),
        }
    }
}

/// Trains a byte-level BPE of `vocab_size` tokens on `text` (one sequence per line) and
/// returns its `tokenizer.json`.
fn train_bpe(vocab_size: usize, text: &[u8]) -> Result<String, DataError> {
    use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::{AddedToken, TokenizerBuilder};
    let mut trainer = BpeTrainerBuilder::new()
        .show_progress(false)
        .vocab_size(vocab_size)
        .min_frequency(2)
        .special_tokens(vec![AddedToken::from(EOT.to_string(), true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let byte_level = ByteLevel::new(false, false, true);
    let mut t = TokenizerBuilder::<BPE, tokenizers::NormalizerWrapper, ByteLevel, ByteLevel, ByteLevel>::new()
        .with_model(BPE::default())
        .with_pre_tokenizer(Some(byte_level))
        .with_decoder(Some(byte_level))
        .build()
        .map_err(bpe_err)?;
    let text = String::from_utf8_lossy(text);
    t.train(&mut trainer, text.split_inclusive('\n')).map_err(bpe_err)?;
    t.to_string(false).map_err(bpe_err)
}

/// Where trained tokenizers and token streams are cached under `cache_dir`.
pub fn token_cache_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("tokens")
}

#[cfg(test)]
mod tests;
