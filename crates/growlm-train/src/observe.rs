//! Run observers (docs/design.md §Training engine): the engine prints and writes nothing of its
//! own accord; what happens during a run reaches the outside through [`Observer`]s, in
//! the shape of argmin's observers — a small trait whose methods all default to no-ops.
//!
//! Built in: [`RunFiles`] (writes `metrics.jsonl` and `events.jsonl`; the engine always
//! attaches it first), [`Progress`] (progress bar and log lines on stderr) and
//! [`HaltAfter`] (stops a run as if killed, for kill-and-resume tests).
//!
//! ```no_run
//! use growlm_train::{train, Observer, RunConfig, RunOptions, TrainError};
//! use growlm_policy::{Observation, ValPoint};
//!
//! /// Remembers the best validation loss.
//! #[derive(Default)]
//! struct Best(f64);
//!
//! impl Observer for Best {
//!     fn on_evaluation(&mut self, point: &ValPoint) -> Result<(), TrainError> {
//!         if self.0 == 0.0 || point.loss < self.0 {
//!             self.0 = point.loss;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let registry = growlm_policy::Registry::new();
//! type B = burn_autodiff::Autodiff<burn_flex::Flex>;
//! let cfg = RunConfig::from_file("configs/smoke.toml".as_ref())?;
//! let opts = RunOptions::new("runs/observed");
//! let mut best = Best::default();
//! train::<B>(&cfg, &opts, &registry, &Default::default(), &mut [&mut best])?;
//! println!("best validation loss: {}", best.0);
//! # Ok(())
//! # }
//! ```

use std::io::IsTerminal;
use std::path::Path;

use growlm_policy::{Observation, ValPoint};
use indicatif::{ProgressBar, ProgressStyle};

use crate::output::{GrowEvent, JsonLines, MetricsRow, Summary};
use crate::{RunConfig, RunDir, TrainError};

/// What an observer learns when a run starts.
#[derive(Debug, Clone, Copy)]
pub struct RunStart<'a> {
    /// The resolved config.
    pub config: &'a RunConfig,
    /// The run directory.
    pub out_dir: &'a Path,
    /// The checkpoint step a resumed run continues from (`None` for a new run).
    pub resumed_at: Option<u64>,
    /// The data source, described.
    pub data: &'a str,
    /// The policy, described.
    pub policy: &'a str,
    /// The backend's name.
    pub device: &'a str,
}

/// Watches a run. Every method defaults to doing nothing; an error stops the run with
/// that error (nothing after the failing call happens, not even a checkpoint).
pub trait Observer {
    /// Once, before the first step.
    fn on_start(&mut self, start: &RunStart<'_>) -> Result<(), TrainError> {
        let _ = start;
        Ok(())
    }
    /// After each step, with its metrics (and its validation loss, if evaluated).
    fn on_step(&mut self, row: &MetricsRow) -> Result<(), TrainError> {
        let _ = row;
        Ok(())
    }
    /// After each evaluation on the validation set.
    fn on_evaluation(&mut self, point: &ValPoint) -> Result<(), TrainError> {
        let _ = point;
        Ok(())
    }
    /// After each growth.
    fn on_growth(&mut self, event: &GrowEvent) -> Result<(), TrainError> {
        let _ = event;
        Ok(())
    }
    /// After each checkpoint is written (its directory).
    fn on_checkpoint(&mut self, step: u64, path: &Path) -> Result<(), TrainError> {
        let _ = (step, path);
        Ok(())
    }
    /// Once, after the last checkpoint and `summary.json`.
    fn on_end(&mut self, summary: &Summary) -> Result<(), TrainError> {
        let _ = summary;
        Ok(())
    }
}

/// Writes `metrics.jsonl` (one line per step) and `events.jsonl` (one line per growth)
/// into the run directory. On resume it first drops what a killed run logged after its
/// last checkpoint, so the files continue exactly.
#[derive(Default)]
pub struct RunFiles {
    files: Option<(JsonLines, JsonLines)>,
}

impl Observer for RunFiles {
    fn on_start(&mut self, start: &RunStart<'_>) -> Result<(), TrainError> {
        let open = |name: &str| JsonLines::open(start.out_dir.join(name), start.resumed_at);
        self.files = Some((open(RunDir::METRICS)?, open(RunDir::EVENTS)?));
        Ok(())
    }
    fn on_step(&mut self, row: &MetricsRow) -> Result<(), TrainError> {
        match &mut self.files {
            Some((metrics, _)) => metrics.write(row),
            None => Ok(()),
        }
    }
    fn on_growth(&mut self, event: &GrowEvent) -> Result<(), TrainError> {
        match &mut self.files {
            Some((_, events)) => events.write(event),
            None => Ok(()),
        }
    }
}

/// A progress bar on a terminal, or one plain line per evaluation in a log file or CI;
/// growth, policy stops and the end are reported on stderr.
pub struct Progress {
    bar: ProgressBar,
    max_steps: u64,
    last_val: Option<f64>,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    /// A progress reporter on stderr.
    pub fn new() -> Self {
        Self {
            bar: ProgressBar::hidden(),
            max_steps: 0,
            last_val: None,
        }
    }

    fn say(&self, msg: String) {
        self.bar.suspend(|| eprintln!("{msg}"));
    }
}

impl Observer for Progress {
    fn on_start(&mut self, start: &RunStart<'_>) -> Result<(), TrainError> {
        self.max_steps = start.config.train.max_steps;
        eprintln!(
            "data: {}; policy: {}; device: {}",
            start.data, start.policy, start.device
        );
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(self.max_steps);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} steps | {msg} | eta {eta}").expect("valid template"),
            );
            bar.set_position(start.resumed_at.unwrap_or(0));
            self.bar = bar;
        }
        Ok(())
    }

    fn on_step(&mut self, r: &MetricsRow) -> Result<(), TrainError> {
        let tps = r.tokens as f64 / r.wall_s.max(1e-9);
        if let Some(v) = r.val_loss {
            self.last_val = Some(v);
        }
        let val = self.last_val.map_or("-".to_string(), |v| format!("{v:.4}"));
        self.bar.set_position(r.step);
        self.bar.set_message(format!(
            "stage {} | loss {:.4} | val {val} | {tps:.0} tok/s",
            r.stage, r.train_loss
        ));
        if let (true, Some(v)) = (self.bar.is_hidden(), r.val_loss) {
            eprintln!(
                "step {}/{} | stage {} | loss {:.4} | val {v:.4} | {tps:.0} tok/s | {:.0}s",
                r.step, self.max_steps, r.stage, r.train_loss, r.wall_s
            );
        }
        Ok(())
    }

    fn on_growth(&mut self, ev: &GrowEvent) -> Result<(), TrainError> {
        self.say(format!(
            "step {}: grew stage {} → {} ({}), params {} → {}, val loss {:.5} → {:.5}",
            ev.step,
            ev.from_stage,
            ev.to_stage,
            ev.operator,
            ev.params_before,
            ev.params_after,
            ev.loss_before,
            ev.loss_after
        ));
        Ok(())
    }

    fn on_end(&mut self, s: &Summary) -> Result<(), TrainError> {
        self.bar.finish_and_clear();
        if s.stopped_by_policy {
            eprintln!("step {}: policy stopped the run", s.steps);
        }
        Ok(())
    }
}

/// Stops the run right after step `step` is observed, before the policy, growth or
/// checkpoint of that step — as a `kill -9` there would. For kill-and-resume tests.
#[derive(Debug, Clone, Copy)]
pub struct HaltAfter(pub u64);

impl Observer for HaltAfter {
    fn on_step(&mut self, row: &MetricsRow) -> Result<(), TrainError> {
        if row.step == self.0 {
            return Err(TrainError::Halted { step: row.step });
        }
        Ok(())
    }
}

/// The engine's own file writer followed by the caller's observers.
pub(crate) struct Observers<'a, 'o> {
    pub(crate) files: RunFiles,
    pub(crate) user: &'a mut [&'o mut dyn Observer],
}

impl Observers<'_, '_> {
    /// Calls `f` on every observer in order; the first error stops the run.
    pub(crate) fn each(
        &mut self,
        mut f: impl FnMut(&mut dyn Observer) -> Result<(), TrainError>,
    ) -> Result<(), TrainError> {
        f(&mut self.files)?;
        for o in self.user.iter_mut() {
            f(&mut **o)?;
        }
        Ok(())
    }
}

/// What a policy sees after the step of `row` (paper §3.2): the one builder the engine
/// and replay share. `history` is the validation curve so far; `stage_start` the step the
/// current stage began at (its last growth, or 0).
pub fn observation<'h>(
    cfg: &RunConfig,
    row: &MetricsRow,
    history: &'h [ValPoint],
    stage_start: u64,
) -> Observation<'h> {
    let t = &cfg.train;
    let fps = |i: usize| {
        cfg.stages
            .get(i)
            .map(|s| s.model.flops_per_step(t.batch_size, t.seq_len))
    };
    Observation {
        step: row.step,
        tokens: row.tokens,
        flops: row.flops,
        train_loss: row.train_loss,
        val_history: history,
        evaluated: row.val_loss.is_some(),
        stage: row.stage,
        n_stages: cfg.stages.len(),
        flops_per_step: fps(row.stage).unwrap_or(0.0),
        next_flops_per_step: fps(row.stage + 1),
        stage_start,
        max_steps: t.max_steps,
    }
}
