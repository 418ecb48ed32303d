//! Results that outlive a machine (docs/design.md §Evaluation protocol): a small copy of an
//! experiment's finished runs, fit to commit, from which `--report-only` rebuilds every
//! table and figure and a rerun skips every run it holds.
//!
//! Each run keeps its `config.toml`, `summary.json`, `events.jsonl`, `branched-from` and
//! the rows of `metrics.jsonl` that the measures read: every row with a validation loss,
//! the rows at its growths and at its branch point, and the last row. Checkpoints,
//! snapshots and the other training rows stay behind. The copy is checked before it is
//! kept: the experiment measured on it must give the same results as on the full runs.

use std::path::{Path, PathBuf};

use growlm_train::{MetricsRow, RunDir};

use super::plan::Job;
use crate::error::write_atomic;
use crate::LabError;

/// The rows of `rows` that the measures read, in order: those with a validation loss,
/// those at `keep_steps` (growths, a branch point) and the last.
pub fn thin(rows: &[MetricsRow], keep_steps: &[u64]) -> Vec<MetricsRow> {
    let last = rows.last().map(|r| r.step);
    rows.iter()
        .filter(|r| r.val_loss.is_some() || keep_steps.contains(&r.step) || Some(r.step) == last)
        .cloned()
        .collect()
}

/// The step a branched run's `branched-from` names (`…/step-N`).
fn branch_step(text: &str) -> Option<u64> {
    text.trim().rsplit("step-").next().and_then(|n| n.parse().ok())
}

/// Copies run `name` from `from` into `to`, its metrics thinned ([`thin`]). A run that is
/// not done is an error naming it.
fn keep_run(from: &Path, to: &Path) -> Result<(), LabError> {
    let (src, dst) = (RunDir::new(from), RunDir::new(to));
    if !src.is_done() {
        return Err(LabError::Invalid(format!(
            "{} is not done (no summary.json): finish the experiment before keeping it",
            from.display()
        )));
    }
    std::fs::create_dir_all(to).map_err(LabError::io(to))?;
    let mut steps: Vec<u64> = src.events()?.iter().map(|e| e.step).collect();
    for name in [RunDir::CONFIG, RunDir::EVENTS, RunDir::BRANCHED_FROM] {
        let path = src.file(name);
        if path.is_file() {
            let bytes = std::fs::read(&path).map_err(LabError::io(&path))?;
            if name == RunDir::BRANCHED_FROM {
                steps.extend(branch_step(&String::from_utf8_lossy(&bytes)));
            }
            write_atomic(&dst.file(name), &bytes)?;
        }
    }
    let kept = from.join(super::DOWNSTREAM_FILE);
    if kept.is_file() {
        let bytes = std::fs::read(&kept).map_err(LabError::io(&kept))?;
        write_atomic(&to.join(super::DOWNSTREAM_FILE), &bytes)?;
    }
    let mut text = String::new();
    for row in thin(&src.metrics()?, &steps) {
        text.push_str(&serde_json::to_string(&row).expect("metrics rows serialise"));
        text.push('\n');
    }
    write_atomic(&dst.file(RunDir::METRICS), text.as_bytes())?;
    // The summary last: its presence marks the kept run done.
    let path = src.file(RunDir::SUMMARY);
    let bytes = std::fs::read(&path).map_err(LabError::io(&path))?;
    write_atomic(&dst.file(RunDir::SUMMARY), &bytes)
}

/// Copies every job's run from `dir` into `to` (thinned), and returns the directories
/// written.
pub(crate) fn keep_runs(dir: &Path, jobs: &[Job], to: &Path) -> Result<Vec<PathBuf>, LabError> {
    jobs.iter()
        .map(|j| {
            let dst = to.join(&j.name);
            keep_run(&dir.join(&j.name), &dst)?;
            Ok(dst)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(step: u64, val: Option<f64>) -> MetricsRow {
        serde_json::from_value(serde_json::json!({
            "step": step, "tokens": step * 10, "flops": step as f64 * 1e6, "wall_s": step as f64 * 0.1,
            "train_loss": 3.0, "val_loss": val, "lr": 1e-3, "stage": 0, "width_active": 1.0,
            "grad_norm": 1.0, "skipped": 0
        }))
        .unwrap()
    }

    #[test]
    fn thinning_keeps_evaluations_growths_and_the_last_row() {
        let rows: Vec<MetricsRow> = (1..=12).map(|s| row(s, (s % 5 == 0).then_some(2.0))).collect();
        let kept: Vec<u64> = thin(&rows, &[7]).iter().map(|r| r.step).collect();
        assert_eq!(kept, vec![5, 7, 10, 12]);
        assert!(thin(&[], &[3]).is_empty());
    }

    #[test]
    fn the_branch_step_is_read_from_the_snapshot_path() {
        assert_eq!(branch_step("runs/x/small-s0/snapshots/step-599\n"), Some(599));
        assert_eq!(branch_step("nothing"), None);
    }
}
