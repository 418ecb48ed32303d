//! The token store (docs/design.md §Data): a corpus tokenized once, in parallel, into
//! shards of little-endian token ids (u16, or u32 for vocabularies over 65,536) under the
//! corpus cache, which training reads a window at a time, so the memory a run holds for
//! data does not grow with the corpus.
//!
//! - One pair of shards per source file (`00003.train.u16`, `00003.valid.u16`), written
//!   atomically, then its record (`00003.json`): a tokenization killed midway keeps the
//!   sources it finished and redoes only the one it was in.
//! - Every document is followed by the tokenizer's end-of-text; empty documents are left out.
//! - A document is validation when the SHA-256 of its text falls in the first
//!   `valid_fraction` of the hash space: the split depends on the document alone, so it is
//!   the same whatever file, format or shard it comes in, and stays put when shards are added.
//! - `manifest.json`, written last, records the sources (size, modification time, SHA-256),
//!   the tokenizer, the settings and the counts. Opening checks every source and shard
//!   against it (size and time; the checksum when the time differs) and refuses a changed one.

mod build;
mod shards;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use shards::Shards;

use crate::source::DocOptions;
use crate::{sha256_hex, DataError, Tokenizer};

/// The version of the store layout; a store of another version is rebuilt beside it.
const LAYOUT: u32 = 1;

/// What a token store is made from.
#[derive(Debug, Clone)]
pub struct StoreSpec {
    /// The corpus files, in order ([`crate::list_sources`]).
    pub sources: Vec<PathBuf>,
    /// How documents are taken out of them.
    pub docs: DocOptions,
    /// The fraction of documents held out for validation (`data.valid_fraction`).
    pub valid_fraction: f64,
    /// Draw a progress bar on standard error (when it is a terminal).
    pub progress: bool,
}

/// One shard file's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardRecord {
    /// File name inside the store.
    pub file: String,
    /// Tokens it holds.
    pub tokens: u64,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Its modification time when written (ns since the epoch).
    pub mtime_ns: u64,
}

/// One source file's record: what was read and what it became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRecord {
    /// The file, as an absolute path.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time when read (ns since the epoch).
    pub mtime_ns: u64,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Documents kept for training.
    pub train_documents: u64,
    /// Documents kept for validation.
    pub valid_documents: u64,
    /// Empty documents, left out.
    pub empty_documents: u64,
    /// Malformed lines or records skipped (`data.skip_bad_lines`).
    pub skipped: u64,
    /// The training shard.
    pub train: ShardRecord,
    /// The validation shard.
    pub valid: ShardRecord,
}

/// The store's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Layout version.
    pub layout: u32,
    /// The tokenizer's identity ([`Tokenizer::identity`]).
    pub tokenizer: String,
    /// Bytes per token id: 2 or 4.
    pub width: u8,
    /// The end-of-text id after each document.
    pub eos: u32,
    /// The text key or column.
    pub text_key: String,
    /// Whether malformed lines were skipped.
    pub skip_bad_lines: bool,
    /// The validation fraction.
    pub valid_fraction: f64,
    /// The sources, in order.
    pub sources: Vec<SourceRecord>,
    /// Training tokens in all.
    pub train_tokens: u64,
    /// Validation tokens in all.
    pub valid_tokens: u64,
}

/// A built and checked token store.
#[derive(Debug)]
pub struct TokenStore {
    /// Its directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// The training tokens.
    pub train: Shards,
    /// The validation tokens.
    pub valid: Shards,
}

impl TokenStore {
    /// The store of `spec` tokenized by `tokenizer` under `cache_dir`: opened and checked
    /// when it was built before, else built (resuming a build that was cut short).
    pub fn open_or_build(spec: &StoreSpec, tokenizer: &Tokenizer, cache_dir: &Path) -> Result<Self, DataError> {
        if !(spec.valid_fraction > 0.0 && spec.valid_fraction < 1.0) {
            return Err(DataError::Config {
                key: "data.valid_fraction".into(),
                reason: format!(
                    "{} must be above 0 and below 1 (0.1 holds out a tenth of the documents)",
                    spec.valid_fraction
                ),
            });
        }
        let sources = spec
            .sources
            .iter()
            .map(|p| {
                std::path::absolute(p).map_err(|source| DataError::Io {
                    path: p.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let dir = store_dir(cache_dir, &sources, spec, tokenizer);
        let manifest_path = dir.join("manifest.json");
        let manifest = if manifest_path.exists() {
            read_manifest(&manifest_path)?
        } else {
            build::build(&dir, &sources, spec, tokenizer)?
        };
        Self::open(dir, manifest)
    }

    /// Opens a store whose manifest was read, checking its sources and shards.
    fn open(dir: PathBuf, manifest: Manifest) -> Result<Self, DataError> {
        for s in &manifest.sources {
            check_source(&dir, s)?;
        }
        let width = usize::from(manifest.width);
        let pick = |f: fn(&SourceRecord) -> &ShardRecord| manifest.sources.iter().map(f).cloned().collect::<Vec<_>>();
        let train = Shards::open(&dir, &pick(|s| &s.train), width)?;
        let valid = Shards::open(&dir, &pick(|s| &s.valid), width)?;
        Ok(Self {
            dir,
            manifest,
            train,
            valid,
        })
    }
}

/// The store's directory: keyed by the sources' paths, the tokenizer and the settings.
fn store_dir(cache_dir: &Path, sources: &[PathBuf], spec: &StoreSpec, tokenizer: &Tokenizer) -> PathBuf {
    let key = serde_json::json!({
        "layout": LAYOUT,
        "sources": sources.iter().map(|p| p.to_string_lossy()).collect::<Vec<_>>(),
        "tokenizer": tokenizer.identity(),
        "text_key": spec.docs.text_key,
        "skip_bad_lines": spec.docs.skip_bad,
        "valid_fraction": spec.valid_fraction,
    });
    cache_dir
        .join("stores")
        .join(&sha256_hex(key.to_string().as_bytes())[..24])
}

fn read_manifest(path: &Path) -> Result<Manifest, DataError> {
    let bytes =
        growlm_fs::read_limited(path, 256 << 20, "a token store's manifest").map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| damaged(path, &format!("not a manifest ({e})")))?;
    if m.layout != LAYOUT || !(m.width == 2 || m.width == 4) {
        return Err(damaged(
            path,
            &format!("layout {} width {} is not this growlm's", m.layout, m.width),
        ));
    }
    Ok(m)
}

/// A store file that does not match its manifest; the fix is to tokenize again.
pub(crate) fn damaged(path: &Path, what: &str) -> DataError {
    let dir = path.parent().unwrap_or(path);
    DataError::Corrupt {
        path: path.to_path_buf(),
        reason: format!(
            "{what}; the token store was changed after it was written. Delete {} and run again to tokenize anew",
            dir.display()
        ),
    }
}

/// Modification time in ns since the epoch (0 where the platform has none).
pub(crate) fn mtime_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Refuses a source changed since it was tokenized: a different size, or a different
/// checksum when its modification time moved.
fn check_source(dir: &Path, s: &SourceRecord) -> Result<(), DataError> {
    let path = Path::new(&s.path);
    let meta = std::fs::metadata(path).map_err(|error| DataError::NoSuchSource {
        path: path.to_path_buf(),
        error,
    })?;
    if meta.len() == s.size && mtime_ns(&meta) == s.mtime_ns {
        return Ok(());
    }
    let now = if meta.len() == s.size {
        crate::sha256_file(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?
    } else {
        String::new()
    };
    if now == s.sha256 {
        return Ok(());
    }
    Err(DataError::Corrupt {
        path: path.to_path_buf(),
        reason: format!(
            "changed after it was tokenized ({} bytes then, {} now); the token store {} holds the old text. \
             Delete that directory to tokenize the new text, or restore the file",
            s.size,
            meta.len(),
            dir.display()
        ),
    })
}
