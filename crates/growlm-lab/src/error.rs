//! The lab's errors. As in the engine, each names what is wrong (file, run, key) and what
//! to do, and a wrapper's message does not repeat its source: print the whole chain
//! (`{:#}` with anyhow, or walk [`std::error::Error::source`]).

use std::path::PathBuf;

use growlm_policy::PolicyError;
use growlm_solver::SolverError;
use growlm_train::TrainError;

/// Errors of the lab.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// The engine's error (a run directory, a config, a training run).
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The solver could not fit or solve.
    #[error(transparent)]
    Solver(#[from] SolverError),
    /// A policy could not be built.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An input that cannot be used: what is wrong and what to do.
    #[error("{0}")]
    Invalid(String),
    /// A figure could not be drawn.
    #[error("cannot draw {path}: {reason}")]
    Plot {
        /// The SVG file.
        path: PathBuf,
        /// plotters' error.
        reason: String,
    },
    /// An error while doing `what`.
    #[error("{what}")]
    Context {
        /// What was being done (a run, a file, an arm).
        what: String,
        /// The error.
        #[source]
        source: Box<LabError>,
    },
}

impl LabError {
    /// An I/O error on `path`, for `map_err`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LabError {
        let path = path.into();
        move |source| LabError::Io { path, source }
    }
}

/// Adds what was being done to an error, as anyhow's `context` does.
pub trait Context<T> {
    /// Wraps the error with `what()`.
    fn context_with(self, what: impl FnOnce() -> String) -> Result<T, LabError>;
}

impl<T, E: Into<LabError>> Context<T> for Result<T, E> {
    fn context_with(self, what: impl FnOnce() -> String) -> Result<T, LabError> {
        self.map_err(|e| LabError::Context {
            what: what(),
            source: Box::new(e.into()),
        })
    }
}

/// Writes `bytes` to `path` atomically ([`growlm_fs::write_atomic`]).
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<(), LabError> {
    growlm_fs::write_atomic(path, bytes).map_err(LabError::io(path))
}
