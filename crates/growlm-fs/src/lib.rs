//! The one way growlm writes a file that others read: atomically (docs/design.md §Runs); and
//! the one way it reads a file others wrote: bounded ([`read_limited`]).
//!
//! Run files, checkpoints' state, caches, exported model directories and experiment
//! reports all go through [`write_atomic`], so a reader (or a resumed run) never sees half
//! a file, even when the process is killed or the machine loses power mid-write, and two
//! threads of one process writing the same path never collide on a temporary name.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically.
///
/// The bytes go to a temporary sibling with a unique name (so parallel writers of one
/// process or of several never share it), which is fsynced, renamed over `path`, and then
/// the directory is fsynced so that the rename itself survives a crash. On error the
/// temporary file is removed and `path` is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let stem = path
        .file_name()
        .map_or("file".into(), |n| n.to_string_lossy().to_string());
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{stem}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// A file written atomically in pieces: the bytes go to a unique temporary sibling, and
/// [`AtomicWriter::commit`] fsyncs it and renames it over the path (then fsyncs the
/// directory). Dropped without a commit, the temporary file is removed and the path is left
/// as it was: what a killed writer leaves behind is never read as the file.
pub struct AtomicWriter {
    path: std::path::PathBuf,
    dir: std::path::PathBuf,
    out: std::io::BufWriter<tempfile::NamedTempFile>,
}

impl AtomicWriter {
    /// Starts writing `path`.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let stem = path
            .file_name()
            .map_or("file".into(), |n| n.to_string_lossy().to_string());
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{stem}."))
            .suffix(".tmp")
            .tempfile_in(&dir)?;
        Ok(Self {
            path: path.to_path_buf(),
            dir,
            out: std::io::BufWriter::with_capacity(1 << 20, tmp),
        })
    }

    /// Makes the bytes written the file at the path.
    pub fn commit(self) -> std::io::Result<()> {
        let tmp = self.out.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        sync_dir(&self.dir)
    }
}

impl Write for AtomicWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.out.write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Reads `path` whole, refusing a file larger than `limit` bytes before reading it (and
/// one that grows past the limit while read): files written by others, whose sizes bound
/// what growlm allocates. The error names the size, the limit and what the file is for.
pub fn read_limited(path: &Path, limit: u64, what: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let too_large = |size: u64| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} is {size} bytes, more than growlm reads for {what} ({limit} bytes); is it the right file?",
                path.display()
            ),
        )
    };
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > limit {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Fsyncs a directory, so that a rename inside it is durable (a no-op where directories
/// cannot be opened as files).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_over_its_limit_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read_limited(&p, 10, "a config").unwrap(), b"0123456789");
        let e = read_limited(&p, 9, "a config").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        let msg = e.to_string();
        assert!(
            msg.contains("is 10 bytes, more than growlm reads for a config (9 bytes)"),
            "{msg}"
        );
    }

    #[test]
    fn writes_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["a.json"]);
    }

    #[test]
    fn parallel_writers_of_one_path_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cache.bin");
        std::thread::scope(|s| {
            for i in 0..8u8 {
                let p = &p;
                s.spawn(move || write_atomic(p, &[i; 4096]).unwrap());
            }
        });
        let got = std::fs::read(&p).unwrap();
        assert_eq!(got.len(), 4096);
        assert!(got.iter().all(|&b| b == got[0]), "a torn write");
    }

    #[test]
    fn a_piecewise_write_appears_whole_on_commit_and_not_at_all_without() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("shard.bin");
        let mut w = AtomicWriter::create(&p).unwrap();
        w.write_all(b"ab").unwrap();
        w.write_all(b"cd").unwrap();
        assert!(!p.exists(), "visible before the commit");
        w.commit().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"abcd");
        // A writer dropped midway (a killed tokenization) leaves the old file and no temporary.
        let mut w = AtomicWriter::create(&p).unwrap();
        w.write_all(b"half").unwrap();
        drop(w);
        assert_eq!(std::fs::read(&p).unwrap(), b"abcd");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_directory_is_an_error_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let e = write_atomic(&dir.path().join("no/such/x"), b"x").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}
