//! Experiments: the paper's evaluation protocol (§4.3, §5, Appendix A; docs/design.md
//! §Evaluation protocol) as one call.
//!
//! An experiment file names a base config, overrides for every run, seeds and arms. For
//! each seed it trains the references from scratch — the first stage alone (`small-sN`),
//! the last stage alone (`target-sN`) and, for a base of more than two stages, each middle
//! stage alone (`stageJ-sN`) — and every arm (`ARM-sN`). An arm that grows at fixed steps
//! branches from the small reference's snapshot taken one step before its first growth
//! (batches depend only on seed and step, so the branch equals a straight staged run bit
//! for bit; when the LR schedules disagree, as a cosine schedule over another `max_steps`
//! does, the arm trains straight instead). An arm with a policy trains straight, since its
//! policy watches the small model's curve.
//!
//! Runs that are done are reused and killed ones resume, so a killed experiment continues
//! where it stopped; a run directory trained with another config is refused rather than
//! overwritten. Up to `jobs` runs train at once. At the end the experiment directory holds
//! `results.json`, `report.md` and SVG figures, and each run its `loss.svg`.
//!
//! Files: `mod.rs` (the experiment file), `job.rs` (what a run is: role and seed, named
//! once), `plan.rs` (the runs it asks for), `figures.rs` (the figures, drawn from the
//! results), `run.rs` (the
//! experiment as one call), `schedule.rs` (training the runs, `jobs` at a time),
//! `measure.rs` (measuring them into `results.rs`'s types), `keep.rs` (a small copy of
//! the finished runs to commit, from which `--report-only` rebuilds the report), `frontier.rs` (a frontier
//! experiment's measures: envelope, gap, ×frontier), `law.rs` (the solver's law `L(N, D)`
//! over the sizes, checked against the grown arms), `report/` (the markdown report, its
//! frontier sections in `report/frontier.rs`).

mod downstream;
mod figures;
mod frontier;
mod job;
pub mod keep;
mod law;
mod measure;
mod plan;
mod preregistered;
mod report;
mod results;
mod run;
mod schedule;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use downstream::{DownstreamRow, EvalTable, DOWNSTREAM_FILE};
pub use frontier::{FrontierArm, FrontierCost, FrontierResults, SeedEnvelope, SizeRow};
pub use job::{JobId, Role};
pub use law::{LawCell, LawCheck, Measured};
pub use plan::Job;
pub use preregistered::{Preregistered, PreregisteredCell};

pub use results::{ArmResult, ExperimentOptions, ReferenceRow, Results, RunResult, SolverOutcome};
pub use run::run_experiment;
pub use schedule::{run_all, silent, state_of, JobStart, ObserverFactory, State};

use crate::LabError;

/// An experiment file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// What the experiment shows (the report's first paragraph).
    #[serde(default)]
    pub description: String,
    /// The base run config, relative to the experiment file.
    pub base: PathBuf,
    /// Seeds of the references and of every arm without its own [default: the base's].
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// Only these of the seeds are planned ([`Experiment::only_seeds`]; not a file key).
    #[serde(skip)]
    pub only: Option<Vec<u64>>,
    /// The experiment file's directory, where a relative `data.source` of `sets` that the
    /// working directory lacks is looked for (not a file key).
    #[serde(skip)]
    pub dir: PathBuf,
    /// `KEY=VALUE` overrides for every run, references included.
    #[serde(default)]
    pub sets: Vec<String>,
    /// Keep the run directories in `<experiment directory>/../runs-POOL` instead of the
    /// experiment directory, so experiments naming the same pool share runs (the
    /// references, and arms of the same name and config) instead of training them again.
    pub pool: Option<String>,
    /// Steps of both references [default: the longest arm's]. Experiments sharing a pool
    /// set the same value, so that they share the references.
    pub reference_steps: Option<u64>,
    /// More growth steps for the small references to keep snapshots for (one step before
    /// each), besides the arms' own: experiments sharing a pool list the union, so that the
    /// reference one of them trains serves the others' arms too.
    #[serde(default)]
    pub branch_points: Vec<u64>,
    /// Fit the solver (paper eq. 1–3) on the first seed's references and set its
    /// predictions beside the arms that grow at fixed steps (Appendix A, Figures 7–8).
    #[serde(default)]
    pub solve: bool,
    /// Predictions of the grown arms written before they ran (`solve --budget-steps …
    /// --grow-at … --json FILE`, committed), relative to the experiment file: one file or
    /// a list, one per budget. The report sets each arm beside the prediction of its budget
    /// (docs/solver.md, "Pre-registering a new scale").
    #[serde(default, deserialize_with = "one_or_many")]
    pub prediction: Vec<PathBuf>,
    /// Downstream tasks run on every finished run's final checkpoint (paper Table 2's
    /// columns; docs/evaluation.md).
    pub eval: Option<EvalTable>,
    /// The arms.
    #[serde(rename = "arm")]
    pub arms: Vec<Arm>,
    /// From-scratch model sizes, each at several budgets: the compute-optimal frontier
    /// ([`crate::frontier`]). With sizes, the experiment trains no `small`/`target`
    /// references: the size that is the base's last stage (`stage = N`) is the target the
    /// Table 2 measure compares with.
    #[serde(default, rename = "size")]
    pub sizes: Vec<Size>,
}

/// A model size trained from scratch at several budgets. Under a `wsd` schedule the
/// budgets share one run: the longest trains straight, keeping a snapshot where each
/// shorter budget's decay begins, and each shorter budget branches from it and decays
/// (a wsd run is a longer run's stable phase plus its own decay, bit for bit).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Size {
    /// Its name: the run directories are `NAME-STEPS-sSEED`.
    pub name: String,
    /// The base config's stage whose model this is (e.g. 0 for the small model).
    pub stage: Option<usize>,
    /// Or a model of its own (a `[stages.model]` table).
    pub model: Option<toml::Table>,
    /// Budgets in steps.
    #[serde(default)]
    pub budgets: Vec<u64>,
    /// Budgets in training FLOPs (converted to this size's steps, rounded).
    #[serde(default)]
    pub flops: Vec<f64>,
}

/// Growth steps of an arm: one step or a list (one per growth).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Steps {
    /// A single growth.
    One(u64),
    /// One step per growth, ascending.
    Many(Vec<u64>),
}

impl Steps {
    /// The steps as a list.
    pub fn to_vec(&self) -> Vec<u64> {
        match self {
            Steps::One(g) => vec![*g],
            Steps::Many(v) => v.clone(),
        }
    }
}

/// One arm of an experiment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arm {
    /// Its name: the run directories are `NAME-sSEED`.
    pub name: String,
    /// Grow at these steps (policy `fixed`).
    pub grow_at: Option<Steps>,
    /// Train this many steps after the last fixed growth (`train.max_steps`).
    pub steps_after: Option<u64>,
    /// Let this policy decide when to grow (its parameters as `policy.KEY=…` sets; as with
    /// `train --policy`, the base's parameters stay when the base names the same policy).
    pub policy: Option<String>,
    /// `KEY=VALUE` overrides of this arm, after the experiment's; `{runs}` stands for the
    /// directory of the run directories (e.g. `policy.reference="{runs}/target-s0"`).
    #[serde(default)]
    pub sets: Vec<String>,
    /// This arm's seeds [default: the experiment's].
    pub seeds: Option<Vec<u64>>,
    /// Budgets (`train.max_steps`): one run of this arm per budget, named
    /// `NAME-STEPS-sSEED` (needs `policy`, which scales its growth point with the budget,
    /// or `grow_frac`).
    #[serde(default)]
    pub budgets: Vec<u64>,
    /// Growth points as fractions of the budget, each in (0, 1): one run per budget and
    /// fraction, growing once (policy `fixed`) after `round(fraction · budget)` steps and
    /// named `NAME-STEPS-atPERCENT-sSEED` (a regime study's grid; needs `budgets`).
    #[serde(default)]
    pub grow_frac: Vec<f64>,
}

/// One run of an arm per seed: its label, budget and growth fraction.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// `NAME`, `NAME-STEPS` or `NAME-STEPS-atPERCENT`.
    pub label: String,
    /// The budget (`train.max_steps`), when the arm has budgets.
    pub budget: Option<u64>,
    /// The growth point as a fraction of the budget, when the arm has `grow_frac`.
    pub grow_frac: Option<f64>,
}

impl Cell {
    /// The growth step of a `grow_frac` cell: `round(fraction · budget)`, at least 1.
    pub fn grow_step(&self) -> Option<u64> {
        let (b, f) = (self.budget?, self.grow_frac?);
        Some(((f * b as f64).round() as u64).max(1))
    }
}

impl Arm {
    /// The arm's runs (per seed): its name alone, `NAME-STEPS` for each budget, or
    /// `NAME-STEPS-atPERCENT` for each budget and growth fraction.
    pub fn cells(&self) -> Vec<Cell> {
        if self.budgets.is_empty() {
            return vec![Cell {
                label: self.name.clone(),
                budget: None,
                grow_frac: None,
            }];
        }
        let fracs: Vec<Option<f64>> = if self.grow_frac.is_empty() {
            vec![None]
        } else {
            self.grow_frac.iter().copied().map(Some).collect()
        };
        self.budgets
            .iter()
            .flat_map(|&b| {
                fracs.iter().map(move |&f| Cell {
                    label: match f {
                        Some(f) => format!("{}-{b}-at{}", self.name, (f * 100.0).round()),
                        None => format!("{}-{b}", self.name),
                    },
                    budget: Some(b),
                    grow_frac: f,
                })
            })
            .collect()
    }
}

/// Name prefix of the middle stages' from-scratch references (`stage1-s0`, …).
pub const MIDDLE: &str = "stage";

/// The from-scratch reference of middle stage `j` (of a base with more than two stages).
pub fn middle(j: usize) -> String {
    format!("{MIDDLE}{j}")
}

impl Experiment {
    /// Keeps only `seeds` of this experiment, its own and each arm's: a study split over
    /// sessions or machines runs one part of its seeds at a time, into the same directory.
    /// Planning refuses a seed the experiment does not run, by name.
    pub fn only_seeds(&mut self, seeds: &[u64]) {
        self.only = Some(seeds.to_vec());
    }

    /// Reads and checks an experiment file.
    pub fn load(path: &Path) -> Result<Self, LabError> {
        let text = std::fs::read_to_string(path).map_err(LabError::io(path))?;
        let bad = |reason: String| LabError::Invalid(format!("{}: {reason}", path.display()));
        let mut e: Self = toml::from_str(&text).map_err(|e| bad(format!("not a valid experiment: {e}")))?;
        e.dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut names = std::collections::BTreeSet::new();
        let name_ok = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        for size in &e.sizes {
            if !name_ok(&size.name) || ["small", "target"].contains(&size.name.as_str()) {
                return Err(bad(format!(
                    "size name `{}` must be letters, digits, `-`, `_` or `.` and not `small` or `target`",
                    size.name
                )));
            }
            if !names.insert(&size.name) {
                return Err(bad(format!("two sizes or arms are named `{}`", size.name)));
            }
            if size.stage.is_some() == size.model.is_some() {
                return Err(bad(format!(
                    "size `{}` needs exactly one of `stage` (a stage of the base) and `model`",
                    size.name
                )));
            }
            if size.budgets.is_empty() == size.flops.is_empty() {
                return Err(bad(format!(
                    "size `{}` needs exactly one of `budgets` (steps) and `flops`, not empty",
                    size.name
                )));
            }
            if size.budgets.contains(&0) || size.flops.iter().any(|f| !(*f > 0.0 && f.is_finite())) {
                return Err(bad(format!("size `{}`: every budget must be positive", size.name)));
            }
        }
        for arm in &e.arms {
            let valid = name_ok(&arm.name)
                && !["small", "target"].contains(&arm.name.as_str())
                && arm
                    .name
                    .strip_prefix(MIDDLE)
                    .is_none_or(|n| n.parse::<usize>().is_err());
            if !valid {
                return Err(bad(format!(
                    "arm name `{}` must be letters, digits, `-`, `_` or `.` and not `small`, `target` or `stageN` (the references)",
                    arm.name
                )));
            }
            if !names.insert(&arm.name) {
                return Err(bad(format!("two arms are named `{}`", arm.name)));
            }
            if !arm.budgets.is_empty() && arm.policy.is_none() && arm.grow_frac.is_empty() {
                return Err(bad(format!(
                    "arm `{}`: `budgets` needs `policy` (a policy scales its growth point with the budget) \
                     or `grow_frac` (growth points as fractions of each budget)",
                    arm.name
                )));
            }
            if !arm.grow_frac.is_empty() {
                if arm.budgets.is_empty() || arm.grow_at.is_some() || arm.policy.is_some() {
                    return Err(bad(format!(
                        "arm `{}`: `grow_frac` needs `budgets` and neither `grow_at` nor `policy`",
                        arm.name
                    )));
                }
                if let Some(f) = arm.grow_frac.iter().find(|f| !(**f > 0.0 && **f < 1.0)) {
                    return Err(bad(format!(
                        "arm `{}`: `grow_frac` {f} is not a fraction of the budget in (0, 1)",
                        arm.name
                    )));
                }
                let mut percents: Vec<i64> = arm.grow_frac.iter().map(|f| (f * 100.0).round() as i64).collect();
                percents.sort_unstable();
                if percents.windows(2).any(|w| w[0] == w[1]) {
                    return Err(bad(format!(
                        "arm `{}`: two `grow_frac` values round to the same percent (the runs' names)",
                        arm.name
                    )));
                }
            }
            if arm.budgets.contains(&0) {
                return Err(bad(format!("arm `{}`: every budget must be positive", arm.name)));
            }
            if arm.grow_frac.is_empty() && arm.grow_at.is_some() == arm.policy.is_some() {
                return Err(bad(format!(
                    "arm `{}` needs exactly one of `grow_at` (fixed steps), `grow_frac` and `policy`",
                    arm.name
                )));
            }
            if arm.steps_after.is_some() && arm.grow_at.is_none() {
                return Err(bad(format!("arm `{}`: `steps_after` needs `grow_at`", arm.name)));
            }
        }
        if e.arms.is_empty() {
            return Err(bad("an experiment needs at least one [[arm]]".into()));
        }
        Ok(e)
    }
}

/// A file key that takes one path or a list of them.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(PathBuf),
        Many(Vec<PathBuf>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(p) => vec![p],
        OneOrMany::Many(v) => v,
    })
}
