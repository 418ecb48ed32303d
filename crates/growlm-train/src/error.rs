//! The engine's errors. Each names what is wrong (key, file, step) and what to do, and
//! keeps its source error: a wrapper's message does not repeat its source, so print the
//! whole chain (`{:#}` with anyhow, or walk [`std::error::Error::source`]).

use std::path::PathBuf;

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A config value is invalid, or a key is unknown or of the wrong type.
    #[error("invalid config `{key}`: {reason}")]
    Config {
        /// The key, with its path (`train.lr`, `stages.1.growth.ramp_steps`).
        key: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A config file is not valid TOML.
    #[error("cannot parse config")]
    Parse {
        /// The parser's error (names the line).
        #[source]
        source: toml::de::Error,
    },
    /// An error in the config file `path`.
    #[error("{path}")]
    InFile {
        /// The config file.
        path: PathBuf,
        /// The error.
        #[source]
        source: Box<TrainError>,
    },
    /// A `--set KEY=VALUE` override is malformed or makes the config invalid.
    #[error("override `{set}`")]
    Override {
        /// The override as given.
        set: String,
        /// The error.
        #[source]
        source: Box<TrainError>,
    },
    /// The data-parallel peers could not register or all-reduce their gradients
    /// (burn-collective).
    #[error("data parallelism over several devices failed: {0}")]
    Collective(String),
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint's tensors could not be written or read.
    #[error("checkpoint {path}")]
    Checkpoint {
        /// The checkpoint path.
        path: PathBuf,
        /// burn's recorder error.
        #[source]
        source: burn::record::RecorderError,
    },
    /// A checkpoint's state or a run file is not what this version writes.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `--resume` with a config that changes what was already trained.
    #[error("cannot resume: `{key}` was {saved} when the run was trained, but is {requested} now; a resumed run continues on the same data, seed, model and schedule. Drop the override, or start a new run in another directory")]
    ResumeChanged {
        /// The key that differs.
        key: String,
        /// Its value in the checkpoint's config (`absent` if missing).
        saved: String,
        /// Its value now (`absent` if missing).
        requested: String,
    },
    /// The run directory already holds a run.
    #[error("{path} already holds a run; resume it to continue it, or choose another run directory")]
    RunExists {
        /// The run directory.
        path: PathBuf,
    },
    /// A branch's config differs from its source checkpoint's in something that changes
    /// the steps the checkpoint already trained.
    #[error(
        "cannot branch from {path}: `{key}` is {saved} in the checkpoint's config but {requested} now; \
         a branch may change only later stages, the policy, train.max_steps and \
         train.checkpoint_every (the LR must agree on every step already trained)"
    )]
    BranchChanged {
        /// The source checkpoint.
        path: PathBuf,
        /// The key that differs (`lr at step N` for the learning rate).
        key: String,
        /// Its value in the checkpoint's config.
        saved: String,
        /// Its value now.
        requested: String,
    },
    /// Another process is training into the run directory.
    #[error(
        "{path} is held by process {pid}, which is still running; wait for it, stop it, or \
         choose another run directory (delete the lock file only if that process is not a growlm run)"
    )]
    RunLocked {
        /// The lock file.
        path: PathBuf,
        /// The process holding it.
        pid: u32,
    },
    /// `--resume` found no checkpoint.
    #[error("{path} has no checkpoint to resume from; start it as a new run")]
    NothingToResume {
        /// The run directory.
        path: PathBuf,
    },
    /// The loss or the gradient norm became NaN or infinite.
    #[error(
        "training diverged at step {step} (loss {loss}, gradient norm {grad_norm}{skipped}); the last good \
         checkpoint is {checkpoint}. Lower train.lr or raise train.warmup_steps, or set \
         train.on_nonfinite = \"skip\" to skip such batches",
        skipped = if *skipped > 0 { format!(", after {skipped} skipped steps in a row") } else { String::new() },
        checkpoint = checkpoint.as_ref().map_or("none (the run starts over)".to_string(), |p| p.display().to_string())
    )]
    Diverged {
        /// The step.
        step: u64,
        /// The loss.
        loss: f64,
        /// The gradient norm.
        grad_norm: f64,
        /// Skipped steps in a row before it stopped (`on_nonfinite = "skip"`).
        skipped: u64,
        /// The last checkpoint written, which `--resume` continues from.
        checkpoint: Option<PathBuf>,
    },
    /// An observer stopped the run after `step` (the test-only [`crate::HaltAfter`]
    /// simulates a kill this way).
    #[error("halted after step {step}")]
    Halted {
        /// The step.
        step: u64,
    },
    /// A model read mid-ramp cannot leave growlm: without its width mask it computes
    /// another function.
    #[error("{path}: at step {step} the model is mid-ramp (its new width is masked until step {end}); export a checkpoint from step {end} on (resume the run with train.max_steps = {max_steps})")]
    MidRamp {
        /// The checkpoint.
        path: PathBuf,
        /// Its step.
        step: u64,
        /// The ramp's last step.
        end: u64,
        /// A `train.max_steps` that trains past the ramp.
        max_steps: u64,
    },
    /// `--device cuda` in a build without the `cuda` feature.
    #[error("this build has no CUDA backend; build growlm with the `cuda` feature")]
    CudaNotBuilt,
    /// Data error.
    #[error(transparent)]
    Data(#[from] growlm_data::DataError),
    /// Model error.
    #[error(transparent)]
    Model(#[from] growlm_model::ModelError),
    /// Growth error.
    #[error(transparent)]
    Ops(#[from] growlm_ops::OpsError),
    /// Policy error.
    #[error(transparent)]
    Policy(#[from] growlm_policy::PolicyError),
}

impl TrainError {
    /// An invalid value of `key`.
    pub fn config(key: &str, reason: impl Into<String>) -> Self {
        Self::Config {
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    /// A failed read or write of `path`.
    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io { path, source }
    }
}
