//! What an experiment measures (`results.json`): each arm against the target from scratch
//! (paper Table 2), the smaller references alone on the same measure, the mean and spread
//! over seeds, the solver's predictions beside them.

use std::path::PathBuf;

use growlm_train::DeviceKind;
use serde::Serialize;

use super::frontier::FrontierResults;
use crate::compare::Row;
use crate::solve::SolveReport;
use crate::stats::Interval;

/// How to run an experiment.
#[derive(Debug, Clone)]
pub struct ExperimentOptions {
    /// The experiment file.
    pub file: PathBuf,
    /// The experiment directory (results, report, figures).
    pub out: PathBuf,
    /// Runs trained at once.
    pub jobs: usize,
    /// Backend.
    pub device: DeviceKind,
    /// Train nothing: report on the runs that are done (the others are listed as missing).
    pub report_only: bool,
    /// Train only the references (a frontier's sizes): the runs a prediction for the grown
    /// arms may use, before any arm exists (the arms are listed as missing).
    pub sizes_only: bool,
    /// The command that reruns it, written into the report.
    pub command: String,
    /// Also write a small copy of the finished experiment here, fit to commit
    /// ([`super::keep`]): `--report-only` on it rebuilds the report, and a rerun into it
    /// trains nothing it holds.
    pub keep: Option<PathBuf>,
    /// Only these of the experiment's seeds ([`super::Experiment::only_seeds`]); all when
    /// `None`.
    pub seeds: Option<Vec<u64>>,
}

/// One arm run's results.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// The arm.
    pub arm: String,
    /// The seed.
    pub seed: u64,
    /// The run directory's name.
    pub dir: String,
    /// Steps at which it grew.
    pub growth_steps: Vec<u64>,
    /// |loss after − loss before| at the first growth.
    pub delta_loss_at_growth: Option<f64>,
    /// Whether it branched from its small reference's snapshot.
    pub branched: bool,
    /// Its equal-loss comparison with the target from scratch.
    #[serde(flatten)]
    pub row: Row,
    /// Wall seconds.
    pub wall_s: f64,
}

/// An arm's results over its seeds, each with its 95% interval.
#[derive(Debug, Clone, Serialize)]
pub struct ArmResult {
    /// The arm.
    pub arm: String,
    /// Its seeds.
    pub seeds: Vec<u64>,
    /// Steps at which its first seed grew.
    pub growth_steps: Vec<u64>,
    /// |Δloss| at the first growth of its first seed.
    pub delta_loss_at_growth: Option<f64>,
    /// Final validation loss.
    pub final_val_loss: Interval,
    /// Perplexity of the mean loss.
    pub perplexity: f64,
    /// Mean FLOPs.
    pub flops: f64,
    /// Equal-loss speed-up in FLOPs against the target (×target).
    pub speedup_flops: Interval,
    /// The same in wall seconds.
    pub speedup_wall: Interval,
    /// Whether the target reached every seed's loss (else the speed-ups are lower bounds).
    pub all_reached: bool,
}

/// A reference trained from scratch; a smaller one measured against the target as an arm
/// is (what growth has to beat).
#[derive(Debug, Clone, Serialize)]
pub struct ReferenceRow {
    /// The run directory's name.
    pub run: String,
    /// Steps.
    pub steps: u64,
    /// Final validation loss.
    pub final_val_loss: f64,
    /// FLOPs.
    pub flops: f64,
    /// Wall seconds.
    pub wall_s: f64,
    /// Equal-loss speed-up against the target (none for the target itself).
    pub speedup_flops: Option<f64>,
    /// Whether the target reaches its loss.
    pub reached: Option<bool>,
}

/// The solver's predictions, or why there are none.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum SolverOutcome {
    /// The report.
    Report(Box<SolveReport>),
    /// The solver could not fit (or a reference is not trained yet).
    Failed {
        /// Why.
        error: String,
    },
}

/// What `results.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// The experiment file.
    pub experiment: String,
    /// Its description.
    pub description: String,
    /// The command that reruns it.
    pub command: String,
    /// CPU, cores and OS.
    pub machine: String,
    /// growlm's version and git revision.
    pub version: String,
    /// Runs trained at once.
    pub jobs: usize,
    /// Wall seconds of the runs this invocation trained.
    pub seconds: f64,
    /// The references.
    pub references: Vec<ReferenceRow>,
    /// The arms over their seeds.
    pub arms: Vec<ArmResult>,
    /// Every arm run.
    pub runs: Vec<RunResult>,
    /// The solver, when the experiment asks for it.
    pub solver: Option<SolverOutcome>,
    /// Runs not trained (report only, or failed).
    pub missing: Vec<String>,
    /// A frontier experiment's measures (with `[[size]]`s).
    pub frontier: Option<FrontierResults>,
    /// Each arm's and size's downstream metrics over its seeds (with `[eval]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub downstream: Vec<super::DownstreamRow>,
}
