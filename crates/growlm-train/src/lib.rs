//! The growlm training engine (DESIGN.md §Training engine and runs).
//!
//! [`train`] runs one staged pre-training run: the first stage's model trains until the
//! policy (paper §3.2) says grow, the growth operator (§3.3–3.5) maps model and optimizer
//! state into the next stage, and training continues. A run writes `config.toml`,
//! `metrics.jsonl`, `events.jsonl`, `summary.json` and atomic checkpoints into its run
//! directory; `resume` continues a killed run exactly where its last checkpoint left it.

mod backend;
mod config;
mod engine;
pub mod output;

use std::path::PathBuf;

pub use backend::{run_on, DeviceKind};
pub use config::{DataConfig, RunConfig, Schedule, StageConfig, TrainConfig};
pub use engine::{latest_checkpoint, train, RunOptions};
pub use output::{GrowEvent, MetricsRow, Summary};

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A config value is invalid.
    #[error("invalid config `{key}`: {reason}")]
    Config {
        /// The key, with its path.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The config file is not valid TOML or has unknown keys.
    #[error("cannot parse config: {reason}")]
    Parse {
        /// The parser's message (names the key and line).
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A checkpoint could not be written or read.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The run directory already holds a run.
    #[error("{path} already holds a run; pass --resume to continue it, or choose another --out")]
    RunExists {
        /// The run directory.
        path: PathBuf,
    },
    /// `--resume` found no checkpoint.
    #[error("{path} has no checkpoint to resume from; run without --resume to start it")]
    NothingToResume {
        /// The run directory.
        path: PathBuf,
    },
    /// The loss became NaN or infinite.
    #[error("training diverged at step {step} (loss {loss}); lower train.lr or raise train.warmup_steps")]
    Diverged {
        /// The step.
        step: u64,
        /// The loss.
        loss: f64,
    },
    /// The run stopped at `RunOptions::halt_after` (tests simulate a kill with it).
    #[error("halted after step {step}")]
    Halted {
        /// The step.
        step: u64,
    },
    /// `--device cuda` in a build without the `cuda` feature.
    #[error("this build has no CUDA backend; build with the `cuda` feature: `cargo xtask-cuda train --device cuda …` (alias of `cargo run --release -p xtask --features cuda --`)")]
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
