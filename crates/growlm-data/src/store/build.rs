//! Building a token store: sources read in order, documents tokenized in parallel on every
//! core (rayon), shards written atomically, one source at a time, with a progress bar.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::{mtime_ns, Manifest, ShardRecord, SourceRecord, StoreSpec, LAYOUT};
use crate::source::{read_pieces, DocText};
use crate::{DataError, Tokenizer};

/// Text read before a batch of documents is tokenized in parallel.
const BATCH_BYTES: usize = 16 << 20;

fn io(path: &Path) -> impl Fn(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Tokenizes every source not yet in the store under `dir`, then writes the manifest.
pub(super) fn build(dir: &Path, sources: &[PathBuf], spec: &StoreSpec, tok: &Tokenizer) -> Result<Manifest, DataError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    // One builder at a time: parallel runs of an experiment wait for the first, then find
    // its work done.
    let lock_path = dir.join("lock");
    let lock = std::fs::File::create(&lock_path).map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;
    let manifest_path = dir.join("manifest.json");
    if manifest_path.exists() {
        return super::read_manifest(&manifest_path);
    }
    // What a killed builder left half-written (never read: shards are renamed into place).
    for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") {
            std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
        }
    }
    let eos = tok.eos().ok_or_else(|| DataError::Tokenizer {
        reason: "it has no end-of-text token to put between documents".into(),
    })? as u32;
    let vocab = tok.vocab_size();
    let width: u8 = if vocab > 1 << 16 { 4 } else { 2 };
    let total: u64 = sources
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .map(|m| m.len())
                .map_err(|error| DataError::NoSuchSource { path: p.clone(), error })
        })
        .sum::<Result<u64, _>>()?;
    let bar = progress(spec.progress, total);
    let mut records = Vec::with_capacity(sources.len());
    let mut done_bytes = 0u64;
    for (i, path) in sources.iter().enumerate() {
        let meta = std::fs::metadata(path).map_err(io(path))?;
        let record_path = dir.join(format!("{i:05}.json"));
        let kept = std::fs::read(&record_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<SourceRecord>(&b).ok())
            .filter(|r| r.path == path.to_string_lossy() && r.size == meta.len() && r.mtime_ns == mtime_ns(&meta))
            .filter(|r| shard_whole(dir, &r.train, width) && shard_whole(dir, &r.valid, width));
        let record = match kept {
            Some(r) => r,
            None => {
                let r = tokenize_source(dir, i, path, spec, tok, eos, width, &bar, done_bytes)?;
                let json = serde_json::to_vec_pretty(&r).expect("records serialize");
                crate::write_atomic(&record_path, &json)?;
                r
            }
        };
        done_bytes += meta.len();
        bar.set_position(done_bytes);
        records.push(record);
    }
    bar.finish_and_clear();
    let manifest = Manifest {
        layout: LAYOUT,
        tokenizer: tok.identity(),
        width,
        eos,
        text_key: spec.docs.text_key.clone(),
        skip_bad_lines: spec.docs.skip_bad,
        valid_fraction: spec.valid_fraction,
        train_tokens: records.iter().map(|r| r.train.tokens).sum(),
        valid_tokens: records.iter().map(|r| r.valid.tokens).sum(),
        sources: records,
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("manifests serialize");
    crate::write_atomic(&manifest_path, &json)?;
    Ok(manifest)
}

/// Whether a kept shard is all there (its size; the checksum is checked when opened).
fn shard_whole(dir: &Path, r: &ShardRecord, width: u8) -> bool {
    std::fs::metadata(dir.join(&r.file)).is_ok_and(|m| m.len() == r.tokens * u64::from(width))
}

fn progress(show: bool, total: u64) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "tokenizing {bytes}/{total_bytes} {binary_bytes_per_sec}, eta {eta} {wide_bar}",
        )
        .expect("a valid template"),
    );
    bar
}

/// A shard being written: its file, checksum and count.
struct ShardOut {
    name: String,
    out: growlm_fs::AtomicWriter,
    hash: Sha256,
    tokens: u64,
    width: u8,
    buf: Vec<u8>,
}

impl ShardOut {
    fn create(dir: &Path, name: String, width: u8) -> Result<Self, DataError> {
        let path = dir.join(&name);
        Ok(Self {
            out: growlm_fs::AtomicWriter::create(&path).map_err(io(&path))?,
            name,
            hash: Sha256::new(),
            tokens: 0,
            width,
            buf: Vec::new(),
        })
    }

    fn push(&mut self, dir: &Path, ids: &[u32]) -> Result<(), DataError> {
        self.buf.clear();
        if self.width == 2 {
            self.buf.extend(ids.iter().flat_map(|&t| (t as u16).to_le_bytes()));
        } else {
            self.buf.extend(ids.iter().flat_map(|&t| t.to_le_bytes()));
        }
        self.hash.update(&self.buf);
        self.out.write_all(&self.buf).map_err(io(&dir.join(&self.name)))?;
        self.tokens += ids.len() as u64;
        Ok(())
    }

    fn commit(self, dir: &Path) -> Result<ShardRecord, DataError> {
        let path = dir.join(&self.name);
        self.out.commit().map_err(io(&path))?;
        let meta = std::fs::metadata(&path).map_err(io(&path))?;
        Ok(ShardRecord {
            file: self.name,
            tokens: self.tokens,
            sha256: hex::encode(self.hash.finalize()),
            mtime_ns: mtime_ns(&meta),
        })
    }
}

/// Whether a document of this text is held out: the first 8 bytes of its SHA-256, as a
/// fraction of 2^64, below `fraction`.
pub(crate) fn is_valid_doc(text: &[u8], fraction: f64) -> bool {
    let h = Sha256::digest(text);
    let x = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
    (x as f64) < fraction * 18_446_744_073_709_551_616.0
}

#[allow(clippy::too_many_arguments)]
fn tokenize_source(
    dir: &Path,
    i: usize,
    path: &Path,
    spec: &StoreSpec,
    tok: &Tokenizer,
    eos: u32,
    width: u8,
    bar: &indicatif::ProgressBar,
    done_bytes: u64,
) -> Result<SourceRecord, DataError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let ext = if width == 2 { "u16" } else { "u32" };
    let mut train = ShardOut::create(dir, format!("{i:05}.train.{ext}"), width)?;
    let mut valid = ShardOut::create(dir, format!("{i:05}.valid.{ext}"), width)?;
    let (mut n_train, mut n_valid, mut empty, mut skipped) = (0u64, 0u64, 0u64, 0u64);
    let read = Arc::new(AtomicU64::new(0));
    let (sum, pieces) = rayon::join(
        || crate::sha256_file(path).map_err(io(path)),
        || {
            read_pieces(path, &spec.docs, BATCH_BYTES, &read, &mut |batch| {
                let done: Vec<Result<Option<(bool, Vec<u32>)>, DataError>> = batch
                    .into_par_iter()
                    .map(|piece| match piece.text(path, &spec.docs)? {
                        DocText::Skipped => Ok(None),
                        DocText::Text(t) => {
                            if t.is_empty() {
                                return Ok(Some((false, Vec::new())));
                            }
                            let mut ids = tok.encode_document(&t)?;
                            ids.push(eos);
                            Ok(Some((is_valid_doc(t.as_bytes(), spec.valid_fraction), ids)))
                        }
                    })
                    .collect();
                for d in done {
                    match d? {
                        None => skipped += 1,
                        Some((_, ids)) if ids.is_empty() => empty += 1,
                        Some((true, ids)) => {
                            n_valid += 1;
                            valid.push(dir, &ids)?;
                        }
                        Some((false, ids)) => {
                            n_train += 1;
                            train.push(dir, &ids)?;
                        }
                    }
                }
                bar.set_position(done_bytes + read.load(Ordering::Relaxed));
                Ok(())
            })
        },
    );
    pieces?;
    Ok(SourceRecord {
        path: path.to_string_lossy().into_owned(),
        size: meta.len(),
        mtime_ns: mtime_ns(&meta),
        sha256: sum?,
        train_documents: n_train,
        valid_documents: n_valid,
        empty_documents: empty,
        skipped,
        train: train.commit(dir)?,
        valid: valid.commit(dir)?,
    })
}
