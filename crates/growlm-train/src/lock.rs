//! One writer per run directory: `run.lock` holds the pid of the process training into it.
//! A second `train` on the same directory is refused while that process lives; a lock left
//! by a killed process (its pid no longer running) is taken over.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::TrainError;

/// The lock of a run directory, released (the file removed) on drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

/// Whether process `pid` is running (Linux: `/proc/PID` exists; elsewhere assumed so, to be
/// safe).
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

impl RunLock {
    /// Takes the lock of `dir` (created if needed).
    pub fn acquire(dir: &Path) -> Result<Self, TrainError> {
        std::fs::create_dir_all(dir).map_err(TrainError::io(dir))?;
        let path = dir.join("run.lock");
        for _ in 0..3 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    f.write_all(std::process::id().to_string().as_bytes())
                        .map_err(TrainError::io(&path))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| t.trim().parse::<u32>().ok());
                    match holder {
                        Some(pid) if alive(pid) => return Err(TrainError::RunLocked { path, pid }),
                        // Stale (its process is gone) or unreadable: take it over.
                        _ => {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => return Err(TrainError::io(&path)(e)),
            }
        }
        Err(TrainError::io(&path)(std::io::Error::other(
            "could not create the lock file after removing a stale one three times",
        )))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
