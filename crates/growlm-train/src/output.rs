//! What a run writes: `config.toml`, `metrics.jsonl`, `events.jsonl`, `summary.json`.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsRow {
    /// Steps completed.
    pub step: u64,
    /// Training tokens seen.
    pub tokens: u64,
    /// Cumulative training FLOPs.
    pub flops: f64,
    /// Wall-clock seconds of training so far.
    pub wall_s: f64,
    /// Training loss of this step (JSON `null` when not finite: a skipped step).
    #[serde(deserialize_with = "nan_if_null")]
    pub train_loss: f64,
    /// Validation loss, when evaluated at this step.
    pub val_loss: Option<f64>,
    /// Learning rate of this step.
    pub lr: f64,
    /// Stage index.
    pub stage: usize,
    /// Fraction of the current stage's hidden width active (1 outside a ramp).
    pub width_active: f64,
    /// Global gradient norm before clipping (JSON `null` when not finite).
    #[serde(deserialize_with = "nan_if_null")]
    pub grad_norm: f64,
    /// Steps skipped so far for a non-finite loss or gradient (`train.on_nonfinite = "skip"`).
    #[serde(default)]
    pub skipped: u64,
}

/// JSON has no NaN or infinity (serde_json writes `null`): read `null` back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// One line of `events.jsonl`: a growth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrowEvent {
    /// Always `grow`.
    pub event: String,
    /// Steps completed when it grew (`Gb`).
    pub step: u64,
    /// Stage before.
    pub from_stage: usize,
    /// Stage after.
    pub to_stage: usize,
    /// The operator, e.g. `pdg(ramp=100)+redundant`.
    pub operator: String,
    /// Parameters before.
    pub params_before: usize,
    /// Parameters after.
    pub params_after: usize,
    /// Validation loss just before growing.
    pub loss_before: f64,
    /// Validation loss just after, with the mask as it stands at `Gb`.
    pub loss_after: f64,
}

/// The run's `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Validation loss at the end.
    pub final_val_loss: f64,
    /// Lowest validation loss measured.
    pub best_val_loss: f64,
    /// Steps completed.
    pub steps: u64,
    /// Training tokens.
    pub tokens: u64,
    /// Training FLOPs.
    pub flops: f64,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Stage at the end.
    pub final_stage: usize,
    /// Steps at which the model grew.
    pub growth_steps: Vec<u64>,
    /// Policy used.
    pub policy: String,
    /// Backend used.
    pub device: String,
    /// Whether the policy ended the run before `train.max_steps`.
    #[serde(default)]
    pub stopped_by_policy: bool,
    /// Steps whose update was skipped for a non-finite loss or gradient.
    #[serde(default)]
    pub skipped_steps: u64,
}

/// One line, as `cargo xtask train` ends: `done: 6 steps, … tokens/s); final val loss …`.
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "done: {} steps, {} tokens, {:.3e} FLOPs, {:.1} s ({:.0} tokens/s); final val loss {:.4} (best {:.4}); grew at {:?}; stage {}",
            self.steps,
            self.tokens,
            self.flops,
            self.wall_s,
            self.tokens as f64 / self.wall_s.max(1e-9),
            self.final_val_loss,
            self.best_val_loss,
            self.growth_steps,
            self.final_stage
        )
    }
}

/// Writes `bytes` to `path` atomically ([`growlm_fs::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    growlm_fs::write_atomic(path, bytes).map_err(TrainError::io(path))
}

/// An append-only JSON-lines file.
pub struct JsonLines {
    path: PathBuf,
    file: File,
}

impl JsonLines {
    /// Opens `path` for appending, first dropping lines whose `step` is beyond `keep_upto`
    /// (what a killed run logged after its last checkpoint), or truncating it when
    /// `keep_upto` is `None`.
    pub fn open(path: PathBuf, keep_upto: Option<u64>) -> Result<Self, TrainError> {
        let kept = match keep_upto {
            Some(upto) if path.exists() => {
                let f = File::open(&path).map_err(TrainError::io(&path))?;
                let mut kept = String::new();
                for line in BufReader::new(f).lines() {
                    let line = line.map_err(TrainError::io(&path))?;
                    let step = serde_json::from_str::<serde_json::Value>(&line)
                        .ok()
                        .and_then(|v| v.get("step").and_then(|s| s.as_u64()));
                    if step.is_some_and(|s| s <= upto) {
                        kept.push_str(&line);
                        kept.push('\n');
                    }
                }
                kept
            }
            _ => String::new(),
        };
        write_atomic(&path, kept.as_bytes())?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(TrainError::io(&path))?;
        Ok(Self { path, file })
    }

    /// Appends one record.
    pub fn write<T: Serialize>(&mut self, row: &T) -> Result<(), TrainError> {
        let mut line = serde_json::to_string(row).expect("run records serialise");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(TrainError::io(&self.path))?;
        self.file.flush().map_err(TrainError::io(&self.path))
    }
}

/// Reads a JSON-lines file.
pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, TrainError> {
    let text = fs::read_to_string(path).map_err(TrainError::io(path))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| TrainError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}
