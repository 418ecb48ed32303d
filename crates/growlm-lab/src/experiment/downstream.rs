//! An experiment's `[eval]` table (docs/evaluation.md; paper §4.3, Table 2's downstream
//! columns): the tasks run on every finished run's final checkpoint, once, the results kept
//! in the run as `downstream.json` (a rerun, or `--report-only` on a kept copy, reads them
//! instead of scoring again), and each arm's and size's metrics over its seeds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn_flex::Flex;
use serde::{Deserialize, Serialize};

use super::Job;
use crate::downstream::{evaluate, Scorer, TaskFile, TaskKind, TaskResult};
use crate::error::write_atomic;
use crate::stats::Interval;
use crate::LabError;

/// The file a run keeps its downstream results in.
pub const DOWNSTREAM_FILE: &str = "downstream.json";

/// `[eval]`: the tasks to run on every final checkpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalTable {
    /// Task name (`lambada`, `wikitext2`, `ptb`, `piqa`, `choice`) → its JSONL file,
    /// relative to the experiment file.
    pub tasks: BTreeMap<String, PathBuf>,
    /// Requests scored at once [default: 16].
    pub batch: Option<usize>,
}

/// What a run keeps: which task files it was scored on, and the results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Stored {
    /// (name, file) of each task, in order.
    tasks: Vec<(String, String)>,
    /// Each task's metrics.
    results: Vec<TaskResult>,
}

/// One arm's or size's downstream metrics over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DownstreamRow {
    /// The arm, or the size and budget (`L32x2-1956`).
    pub label: String,
    /// `task.metric` → its value over the seeds.
    pub metrics: BTreeMap<String, Interval>,
}

impl EvalTable {
    /// The task files, their paths resolved against the experiment file's directory.
    fn files(&self, exp_dir: &Path) -> Result<Vec<TaskFile>, LabError> {
        self.tasks
            .iter()
            .map(|(name, path)| {
                Ok(TaskFile {
                    name: name.clone(),
                    kind: TaskKind::named(name).map_err(|e| LabError::Invalid(format!("[eval] tasks: {e}")))?,
                    path: exp_dir.join(path),
                })
            })
            .collect()
    }

    /// Scores every finished run of `jobs` in `dir` that has no results for these task
    /// files yet, and keeps them in the run.
    pub(crate) fn evaluate_runs(&self, exp_dir: &Path, dir: &Path, jobs: &[Job]) -> Result<(), LabError> {
        let files = self.files(exp_dir)?;
        let want: Vec<(String, String)> = files
            .iter()
            .map(|f| (f.name.clone(), f.path.display().to_string()))
            .collect();
        let dev = Default::default();
        for job in jobs {
            let run = dir.join(&job.name);
            if !run.join("summary.json").is_file() || read(&run).is_some_and(|s| s.tasks == want) {
                continue;
            }
            let what = |e: LabError| LabError::Context {
                what: format!("[eval] on {}", run.display()),
                source: Box::new(e),
            };
            let t = growlm_train::load_trained::<Flex>(&run, &dev).map_err(|e| what(e.into()))?;
            let mask = t.width_mask(&dev).map_err(|e| what(e.into()))?;
            let tokenizer = t.tokenizer().map_err(|e| what(e.into()))?;
            let scorer = Scorer {
                model: &t.model,
                config: &t.config,
                mask: mask.as_ref(),
                tokenizer: &tokenizer,
                batch: self.batch.unwrap_or(16),
            };
            let results = files
                .iter()
                .map(|f| evaluate(&scorer, f))
                .collect::<Result<_, _>>()
                .map_err(what)?;
            let stored = Stored {
                tasks: want.clone(),
                results,
            };
            let json = serde_json::to_string_pretty(&stored).expect("results serialise");
            write_atomic(&run.join(DOWNSTREAM_FILE), json.as_bytes())?;
        }
        Ok(())
    }
}

/// A run's kept results, if it has them.
fn read(run: &Path) -> Option<Stored> {
    serde_json::from_slice(&std::fs::read(run.join(DOWNSTREAM_FILE)).ok()?).ok()
}

/// Each arm's and size's metrics over the seeds whose runs have downstream results, in the
/// order of `jobs`.
pub(crate) fn rows(dir: &Path, jobs: &[Job]) -> Vec<DownstreamRow> {
    let mut order: Vec<String> = Vec::new();
    let mut values: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for job in jobs {
        let Some(stored) = read(&dir.join(&job.name)) else {
            continue;
        };
        let label = job.id.label();
        if !order.contains(&label) {
            order.push(label.clone());
        }
        let row = values.entry(label).or_default();
        for r in &stored.results {
            let v = serde_json::to_value(r).expect("results serialise");
            for (metric, x) in v.as_object().into_iter().flatten() {
                if let (Some(x), false) = (x.as_f64(), metric == "examples") {
                    row.entry(format!("{}.{metric}", r.task)).or_default().push(x);
                }
            }
        }
    }
    order
        .into_iter()
        .map(|label| DownstreamRow {
            metrics: values[&label]
                .iter()
                .map(|(k, v)| (k.clone(), Interval::of(v)))
                .collect(),
            label,
        })
        .collect()
}
