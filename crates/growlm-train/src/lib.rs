//! The growlm training engine (docs/design.md §Training engine, §Runs).
//!
//! [`train`] runs one staged pre-training run: the first stage's model trains until the
//! policy (paper §3.2) says grow, the growth operator (§3.3–3.5) maps model and optimizer
//! state into the next stage, and training continues. A run writes `config.toml`,
//! `metrics.jsonl`, `events.jsonl`, `summary.json` and atomic checkpoints into its run
//! directory; a resumed run continues a killed one exactly where its last checkpoint left
//! it, and refuses a config that would change what was trained.
//!
//! Files: `engine.rs` (the loop), `session.rs` (opening a run), `context.rs` (the run's fixed data and step helpers),
//! `checkpoint/` (run state, atomic save; `read.rs`: load, branch), `trained.rs` (a checkpoint's model for
//! evaluation and export),
//! `optim.rs` (AdamW, gradient clipping), `observe.rs` (run observers: files, progress),
//! `config.rs` (the run config), `schedule.rs` (the LR schedule), `validate.rs` (its checks), `edit.rs` (typed config edits), `overrides.rs` (`--set` and the resume check),
//! `output.rs` (what a run writes), `run_dir.rs` (a run directory's files, read back), `lock.rs` (one writer per run directory), `backend.rs`
//! (backend choice, the one dispatch), `bench.rs` (training throughput), `error.rs`.

mod backend;
mod bench;
mod checkpoint;
mod config;
mod context;
mod data;
mod dist;
mod edit;
mod engine;
mod error;
mod flat;
mod lock;
mod observe;
mod optim;
pub mod output;
mod overrides;
mod parallel;
mod run_dir;
mod schedule;
mod session;
pub mod testing;
pub mod torch;
mod trained;
mod validate;

pub use backend::{memory_for, run_on, DeviceKind, WithBackend};
pub use bench::{matmul_peak, measure, BenchResult, BenchSpec};
pub use checkpoint::{latest_checkpoint, saved_config, snapshot_path, stage_seed, RunState};
pub use config::{DataConfig, OnNonFinite, Precision, RunConfig, StageConfig, TrainConfig};
pub use data::prepare_data;
pub use dist::{Distributed, COLLECTIVE_EXIT};
pub use edit::Edit;
pub use engine::{train, InitWeights, RunOptions};
pub use error::TrainError;
pub use lock::RunLock;
pub use observe::{observation, HaltAfter, Observer, Progress, RunFiles, RunStart};
pub use optim::{adamw, clip_global_norm, Optim};
pub use output::{GrowEvent, MetricsRow, Summary};
pub use overrides::{apply_set, check_branch, check_resume, dotted};
pub use parallel::DataParallel;
pub use run_dir::{read_val_curve, EvalPoint, RunCurve, RunDir, ValCurve};
pub use schedule::Schedule;
pub use trained::{load_trained, Trained};
pub use validate::MemoryNeed;
