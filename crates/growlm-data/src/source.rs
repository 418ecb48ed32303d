//! Corpus files as documents (docs/training.md §Corpora): text files (one document each),
//! JSON Lines (plain, gzip or zstd; one document per line, its text under `data.text_key`)
//! and Parquet (one document per row of a string column), found as one file, a directory
//! or a glob. Every reader is bounded: no line, document or batch is read past
//! [`MAX_DOC_BYTES`], whatever a file claims.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::DataError;

/// The longest document (or JSONL line) read: longer ones are refused, naming the line.
pub const MAX_DOC_BYTES: usize = 64 << 20;

/// Rows read from a Parquet column at a time.
pub(crate) const PARQUET_ROWS: usize = 1024;

/// How a corpus file is read, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Any other file: one document, UTF-8 text.
    Text,
    /// `.jsonl`/`.ndjson` (also `.json.gz`-style names): one JSON object per line.
    Jsonl(Compression),
    /// `.parquet`: one document per row of a string column.
    Parquet,
}

/// The compression of a JSONL file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain.
    None,
    /// `.gz` (several members allowed, as `cat a.gz b.gz` writes).
    Gzip,
    /// `.zst` or `.zstd`.
    Zstd,
}

impl Format {
    /// The format of `path` by its name (`x.jsonl.zst`, `train-0001.parquet`, `a.txt`).
    pub fn of(path: &Path) -> Self {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let (stem, compression) = if let Some(s) = name.strip_suffix(".gz") {
            (s, Compression::Gzip)
        } else if let Some(s) = name.strip_suffix(".zst").or_else(|| name.strip_suffix(".zstd")) {
            (s, Compression::Zstd)
        } else {
            (name.as_str(), Compression::None)
        };
        if [".jsonl", ".ndjson", ".json"].iter().any(|e| stem.ends_with(e)) {
            Self::Jsonl(compression)
        } else if compression == Compression::None && (stem.ends_with(".parquet") || stem.ends_with(".pq")) {
            Self::Parquet
        } else {
            Self::Text
        }
    }

    /// Whether documents of this format go to the token store whatever `data.split` says.
    pub fn is_structured(self) -> bool {
        self != Self::Text
    }
}

/// How documents are taken out of the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocOptions {
    /// The JSON key or Parquet column holding the text (`data.text_key`, default `text`).
    pub text_key: String,
    /// Skip (and count) malformed lines and records instead of stopping at the first
    /// (`data.skip_bad_lines`).
    pub skip_bad: bool,
}

impl Default for DocOptions {
    fn default() -> Self {
        Self {
            text_key: "text".into(),
            skip_bad: false,
        }
    }
}

/// The files `spec` names, sorted: the file itself; a glob's matches (`shards/*.jsonl.zst`);
/// or a directory's corpus files, searched recursively (as Hugging Face datasets lay out
/// their shards): its JSONL and Parquet files when it has any (a README or
/// `dataset_info.json` beside them is not data), else its text files as today.
pub fn list_sources(spec: &Path) -> Result<Vec<PathBuf>, DataError> {
    let text = spec.to_string_lossy();
    if text.contains(['*', '?', '[']) && !spec.exists() {
        let bad = |reason: String| DataError::Config {
            key: "data.source".into(),
            reason,
        };
        let paths = glob::glob(&text).map_err(|e| bad(format!("`{text}` is not a valid glob: {e}")))?;
        let mut files = Vec::new();
        for p in paths {
            let p = p.map_err(|e| bad(format!("`{text}`: {e}")))?;
            if p.is_file() {
                files.push(p);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(bad(format!(
                "`{text}` matches no file; check the pattern (a glob such as \"shards/*.jsonl.zst\")"
            )));
        }
        return Ok(files);
    }
    let meta = std::fs::metadata(spec).map_err(|error| DataError::NoSuchSource {
        path: spec.to_path_buf(),
        error,
    })?;
    if !meta.is_dir() {
        return Ok(vec![spec.to_path_buf()]);
    }
    let mut found = Vec::new();
    walk(spec, &mut found)?;
    found.retain(|p| Format::of(p).is_structured());
    if found.is_empty() {
        return crate::text_files(spec);
    }
    found.sort();
    Ok(found)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// One document as read, before its text is taken out (in parallel, by [`Piece::text`]).
#[derive(Debug)]
pub struct Piece {
    /// The line (JSONL, 1-based) or row (Parquet, 0-based) it came from; 0 for a text file.
    pub at: u64,
    /// The raw bytes: a JSON line, a Parquet value or a whole text file.
    pub raw: Vec<u8>,
    kind: PieceKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PieceKind {
    Text,
    Json,
    Row,
    Null,
}

/// What a piece holds once read.
#[derive(Debug, PartialEq, Eq)]
pub enum DocText {
    /// The document's text.
    Text(String),
    /// A malformed line or record skipped under `data.skip_bad_lines`.
    Skipped,
}

impl Piece {
    /// The document's text, or the error naming `file`, the line or row, and the fix.
    pub fn text(self, file: &Path, opts: &DocOptions) -> Result<DocText, DataError> {
        let fail = |what: String| -> Result<DocText, DataError> {
            if opts.skip_bad {
                return Ok(DocText::Skipped);
            }
            Err(DataError::Corrupt {
                path: file.to_path_buf(),
                reason: format!("{what}; fix it, or set data.skip_bad_lines = true to skip and count such lines"),
            })
        };
        match self.kind {
            PieceKind::Text => Ok(DocText::Text(String::from_utf8_lossy(&self.raw).into_owned())),
            PieceKind::Null => fail(format!("row {}: column `{}` is null", self.at, opts.text_key)),
            PieceKind::Row => match String::from_utf8(self.raw) {
                Ok(s) => Ok(DocText::Text(s)),
                Err(_) => fail(format!("row {}: column `{}` is not UTF-8", self.at, opts.text_key)),
            },
            PieceKind::Json => {
                let line = self.at;
                let value: serde_json::Value = match serde_json::from_slice(&self.raw) {
                    Ok(v) => v,
                    Err(e) => return fail(format!("line {line}: not JSON ({e})")),
                };
                let serde_json::Value::Object(mut map) = value else {
                    return fail(format!("line {line}: not a JSON object"));
                };
                match map.remove(&opts.text_key) {
                    Some(serde_json::Value::String(s)) => Ok(DocText::Text(s)),
                    Some(other) => fail(format!(
                        "line {line}: `{}` is {}, not a string",
                        opts.text_key,
                        json_kind(&other)
                    )),
                    None => {
                        let mut keys: Vec<&String> = map.keys().collect();
                        keys.sort();
                        fail(format!(
                            "line {line}: no key `{}` (keys: {}); set data.text_key to the key that holds the text",
                            opts.text_key,
                            keys.iter()
                                .take(8)
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    }
                }
            }
        }
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Counts the bytes read from a file (compressed bytes for `.gz`/`.zst`), for progress.
struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads the documents of `file` in order, handing them to `sink` in batches of about
/// `batch_bytes`; `read` counts the file bytes consumed. Returns the number of pieces.
pub fn read_pieces(
    file: &Path,
    opts: &DocOptions,
    batch_bytes: usize,
    read: &Arc<AtomicU64>,
    sink: &mut dyn FnMut(Vec<Piece>) -> Result<(), DataError>,
) -> Result<u64, DataError> {
    let io = |source| DataError::Io {
        path: file.to_path_buf(),
        source,
    };
    let f = File::open(file).map_err(|error| DataError::NoSuchSource {
        path: file.to_path_buf(),
        error,
    })?;
    let counted = Counted {
        inner: f,
        read: read.clone(),
    };
    match Format::of(file) {
        Format::Text => {
            let mut raw = Vec::new();
            counted
                .take(MAX_DOC_BYTES as u64 + 1)
                .read_to_end(&mut raw)
                .map_err(io)?;
            if raw.len() > MAX_DOC_BYTES {
                return Err(DataError::Corrupt {
                    path: file.to_path_buf(),
                    reason: format!(
                        "a text file is one document, and this one is over {} MiB; split it into files, or write it as JSONL",
                        MAX_DOC_BYTES >> 20
                    ),
                });
            }
            crate::check_text(file, &raw)?;
            sink(vec![Piece {
                at: 0,
                raw,
                kind: PieceKind::Text,
            }])?;
            Ok(1)
        }
        Format::Jsonl(c) => {
            let reader: Box<dyn Read> = match c {
                Compression::None => Box::new(counted),
                Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(counted))),
                Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(counted).map_err(io)?),
            };
            read_lines(file, c, BufReader::with_capacity(1 << 20, reader), batch_bytes, sink)
        }
        Format::Parquet => crate::parquet_source::read_rows(file, opts, batch_bytes, read, sink),
    }
}

fn read_lines(
    file: &Path,
    compression: Compression,
    mut reader: impl BufRead,
    batch_bytes: usize,
    sink: &mut dyn FnMut(Vec<Piece>) -> Result<(), DataError>,
) -> Result<u64, DataError> {
    let (mut batch, mut bytes, mut line, mut count) = (Vec::new(), 0usize, 0u64, 0u64);
    loop {
        line += 1;
        let mut raw = Vec::new();
        let n = (&mut reader)
            .take(MAX_DOC_BYTES as u64 + 1)
            .read_until(b'\n', &mut raw)
            .map_err(|e| {
                let what = match compression {
                    Compression::None => "reading it failed".to_string(),
                    Compression::Gzip => "it is truncated or not gzip".to_string(),
                    Compression::Zstd => "it is truncated or not zstd".to_string(),
                };
                DataError::Corrupt {
                    path: file.to_path_buf(),
                    reason: format!("line {line}: {what} ({e}); compress it again, or download it again"),
                }
            })?;
        if n == 0 {
            break;
        }
        if raw.len() > MAX_DOC_BYTES && raw.last() != Some(&b'\n') {
            return Err(DataError::Corrupt {
                path: file.to_path_buf(),
                reason: format!(
                    "line {line} is longer than {} MiB, the most growlm reads as one document; is it JSON Lines?",
                    MAX_DOC_BYTES >> 20
                ),
            });
        }
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        bytes += raw.len();
        count += 1;
        batch.push(Piece {
            at: line,
            raw,
            kind: PieceKind::Json,
        });
        if bytes >= batch_bytes {
            sink(std::mem::take(&mut batch))?;
            bytes = 0;
        }
    }
    if !batch.is_empty() {
        sink(batch)?;
    }
    Ok(count)
}

/// A row of a Parquet column as a piece (used by the Parquet reader).
pub(crate) fn row_piece(row: u64, raw: Option<Vec<u8>>) -> Piece {
    let kind = if raw.is_some() { PieceKind::Row } else { PieceKind::Null };
    Piece {
        at: row,
        raw: raw.unwrap_or_default(),
        kind,
    }
}
