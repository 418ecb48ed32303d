//! `cargo xtask experiment FILE.toml`: the paper's evaluation protocol (§4.3, §5,
//! Appendix A; DESIGN.md §Evaluation protocol) as one command.
//!
//! An experiment names a base config, `--set` overrides for every run, seeds and arms.
//! For each seed it trains two references from scratch — the first stage alone
//! (`small-sN`) and the last stage alone (`target-sN`) — and every arm (`ARM-sN`). An
//! arm that grows at fixed steps branches from the small reference's snapshot taken one
//! step before its first growth (batches depend only on seed and step, so the branch equals
//! a straight staged run bit for bit; when the LR schedules disagree, as a cosine schedule
//! over another `max_steps` does, the arm trains straight instead). An arm with a policy
//! trains straight, since its policy watches the small model's curve.
//!
//! Runs that are done are reused and killed ones resume, so a killed experiment continues
//! where it stopped; a run directory trained with another config is refused rather than
//! overwritten. Up to `--jobs` runs train at once. At the end the experiment directory
//! holds `results.json`, `report.md` and SVG figures, and each run its `loss.svg`.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use anyhow::{bail, Context, Result};
use growlm::train::{
    check_branch, check_resume, latest_checkpoint, output::read_jsonl, run_on, saved_config, snapshot_path, DeviceKind,
    GrowEvent, MetricsRow, Observer, RunConfig, RunOptions, RunStart, StageConfig, Summary, TrainError,
};
use serde::{Deserialize, Serialize};

use crate::compare::{self, RunCurve};

/// Arguments of `cargo xtask experiment`.
#[derive(clap::Args)]
pub struct ExperimentArgs {
    /// Experiment file (TOML), e.g. `experiments/smoke.toml`.
    file: PathBuf,
    /// Runs trained at once [default: the number of CPU cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// Experiment directory [default: runs/experiments/<file stem>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Backend.
    #[arg(long, value_enum, default_value_t = crate::Device::Flex)]
    device: crate::Device,
    /// Train nothing: report on the runs that are done (the others are listed as missing).
    #[arg(long)]
    report_only: bool,
}

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
    /// `--set` overrides for every run, references included.
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
    /// The arms.
    #[serde(rename = "arm")]
    pub arms: Vec<Arm>,
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
    /// Let this policy decide when to grow (its parameters as `policy.KEY=…` sets).
    pub policy: Option<String>,
    /// `--set` overrides of this arm, after the experiment's; `{runs}` stands for the
    /// directory of the run directories (e.g. `policy.reference="{runs}/target-s0"`).
    #[serde(default)]
    pub sets: Vec<String>,
    /// This arm's seeds [default: the experiment's].
    pub seeds: Option<Vec<u64>>,
}

/// A run to train.
struct Job {
    /// Directory name inside the experiment directory.
    name: String,
    cfg: RunConfig,
    /// The small reference's snapshot to branch from, and that job's index.
    branch: Option<(PathBuf, usize)>,
    /// Jobs that must be done first: the branch's source, or for a policy arm both
    /// references (a policy such as `solver` reads the target's curve).
    after: Vec<usize>,
    /// Snapshot steps (the small reference's branch points).
    keep_at: Vec<u64>,
}

impl Experiment {
    /// Reads and checks an experiment file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let e: Self = toml::from_str(&text).with_context(|| format!("{}: not a valid experiment", path.display()))?;
        let mut names = std::collections::BTreeSet::new();
        for arm in &e.arms {
            let valid = !arm.name.is_empty()
                && arm.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && !["small", "target"].contains(&arm.name.as_str())
                && arm
                    .name
                    .strip_prefix(MIDDLE)
                    .is_none_or(|n| n.parse::<usize>().is_err());
            if !valid {
                bail!(
                    "{}: arm name `{}` must be letters, digits, `-`, `_` or `.` and not `small`, `target` or `stageN` (the references)",
                    path.display(),
                    arm.name
                );
            }
            if !names.insert(&arm.name) {
                bail!("{}: two arms are named `{}`", path.display(), arm.name);
            }
            if arm.grow_at.is_some() == arm.policy.is_some() {
                bail!(
                    "{}: arm `{}` needs exactly one of `grow_at` (fixed steps) and `policy`",
                    path.display(),
                    arm.name
                );
            }
            if arm.steps_after.is_some() && arm.grow_at.is_none() {
                bail!("{}: arm `{}`: `steps_after` needs `grow_at`", path.display(), arm.name);
            }
        }
        if e.arms.is_empty() {
            bail!("{}: an experiment needs at least one [[arm]]", path.display());
        }
        Ok(e)
    }

    /// Every run of the experiment: per seed the two references, then the arms.
    fn jobs(&self, dir: &Path, base: &Path) -> Result<Vec<Job>> {
        let load = |sets: &[String]| -> Result<RunConfig> {
            let all: Vec<String> = self.sets.iter().chain(sets).cloned().collect();
            Ok(RunConfig::load(base, &all)?)
        };
        let base_cfg = load(&[])?;
        if base_cfg.stages.len() < 2 {
            bail!("{}: the base config has one stage; an experiment grows", base.display());
        }
        let seeds = if self.seeds.is_empty() {
            vec![base_cfg.seed]
        } else {
            self.seeds.clone()
        };
        let mut arms = Vec::new();
        for arm in &self.arms {
            // The arm's policy first, so that its own `policy.KEY=…` sets apply to it.
            let mut sets = Vec::new();
            let steps = match &arm.grow_at {
                Some(Steps::One(g)) => vec![*g],
                Some(Steps::Many(v)) => v.clone(),
                None => vec![],
            };
            if !steps.is_empty() {
                let list: Vec<String> = steps.iter().map(u64::to_string).collect();
                sets.push(format!("policy={{ name = \"fixed\", steps = [{}] }}", list.join(", ")));
            }
            if let Some(p) = &arm.policy {
                sets.push(format!("policy={{ name = {} }}", toml::Value::String(p.clone())));
            }
            let runs = dir.display().to_string();
            sets.extend(arm.sets.iter().map(|s| s.replace("{runs}", &runs)));
            if let (Some(after), Some(last)) = (arm.steps_after, steps.last()) {
                sets.push(format!("train.max_steps={}", last + after));
            }
            let cfg = load(&sets).with_context(|| format!("arm `{}`", arm.name))?;
            if steps.first() == Some(&0) {
                bail!("arm `{}`: a growth step must be at least 1", arm.name);
            }
            for s in arm.seeds.clone().unwrap_or_else(|| seeds.clone()) {
                arms.push((arm.name.clone(), s, cfg.clone(), steps.first().copied()));
            }
        }
        let longest = self
            .reference_steps
            .unwrap_or_else(|| arms.iter().map(|a| a.2.train.max_steps).max().unwrap_or(0));
        let mut jobs = Vec::new();
        let mut ref_seeds: Vec<u64> = arms.iter().map(|a| a.1).collect();
        ref_seeds.sort_unstable();
        ref_seeds.dedup();
        // Per seed: the references, then that seed's arms (so the first seed's results come
        // first).
        for &seed in &ref_seeds {
            let only = |stage: &StageConfig, steps: u64| {
                let mut cfg = base_cfg.clone();
                cfg.seed = seed;
                cfg.stages = vec![StageConfig {
                    growth: None,
                    ..stage.clone()
                }];
                cfg.set_policy("never");
                cfg.train.max_steps = steps.max(base_cfg.train.max_steps);
                cfg
            };
            let small_cfg = only(&base_cfg.stages[0], self.reference_steps.unwrap_or(0));
            let mut keep_at: Vec<u64> = arms
                .iter()
                .filter(|a| a.1 == seed)
                .filter_map(|a| a.3)
                .chain(self.branch_points.iter().copied())
                .map(|g| g.saturating_sub(1))
                .filter(|&s| s > 0 && s <= small_cfg.train.max_steps)
                .collect();
            keep_at.sort_unstable();
            keep_at.dedup();
            let small = jobs.len();
            jobs.push(Job {
                name: format!("small-s{seed}"),
                cfg: small_cfg,
                branch: None,
                after: vec![],
                keep_at,
            });
            jobs.push(Job {
                name: format!("target-s{seed}"),
                cfg: only(base_cfg.stages.last().expect("two stages"), longest),
                branch: None,
                after: vec![],
                keep_at: vec![],
            });
            // A base with more than two stages: the middle stages' from-scratch curves too,
            // which the multi-stage planner needs.
            for (j, stage) in base_cfg
                .stages
                .iter()
                .enumerate()
                .take(base_cfg.stages.len() - 1)
                .skip(1)
            {
                jobs.push(Job {
                    name: format!("{}-s{seed}", middle(j)),
                    cfg: only(stage, longest),
                    branch: None,
                    after: vec![],
                    keep_at: vec![],
                });
            }
            for (name, _, cfg, first) in arms.iter().filter(|a| a.1 == seed) {
                let (mut cfg, first) = (cfg.clone(), *first);
                cfg.seed = seed;
                let branch = first.filter(|&g| g > 1).and_then(|g| {
                    let at = snapshot_path(&dir.join(&jobs[small].name), g - 1);
                    // The snapshot's stage 0 is the small reference's; check now that the arm may
                    // branch from it (the LR of every trained step agrees), else train straight.
                    check_branch(&jobs[small].cfg, &cfg, g - 1, 0, &at)
                        .ok()
                        .map(|_| (at, small))
                });
                let after = match &branch {
                    Some(b) => vec![b.1],
                    None if first.is_none() => vec![small, small + 1],
                    None => vec![],
                };
                jobs.push(Job {
                    name: format!("{name}-s{seed}"),
                    cfg,
                    branch,
                    after,
                    keep_at: vec![],
                });
            }
        }
        Ok(jobs)
    }
}

/// Name prefix of the middle stages' from-scratch references (`stage1-s0`, …).
const MIDDLE: &str = "stage";

/// The from-scratch reference of middle stage `j` (of a base with more than two stages).
fn middle(j: usize) -> String {
    format!("{MIDDLE}{j}")
}

/// What to do with a run directory.
#[derive(Debug, PartialEq)]
enum State {
    Done,
    Resume,
    Fresh,
}

fn state_of(dir: &Path, cfg: &RunConfig) -> Result<State> {
    let saved = dir.join("config.toml");
    if dir.join("summary.json").is_file() && saved.is_file() {
        let old = RunConfig::from_file(&saved)?;
        if old.to_toml() == cfg.to_toml() {
            return Ok(State::Done);
        }
    }
    match latest_checkpoint(dir) {
        Some(ckpt) => {
            check_resume(&saved_config(&ckpt)?, cfg).with_context(|| {
                format!(
                    "{} was trained with another config than the experiment now asks for; \
                     delete it to retrain it, or use another --out",
                    dir.display()
                )
            })?;
            Ok(State::Resume)
        }
        None => Ok(State::Fresh),
    }
}

/// Prints a line per run at its start, growths, the first evaluation in each tenth of its
/// steps and its end.
struct Log {
    name: String,
    every: u64,
    shown: u64,
}

impl Observer for Log {
    fn on_start(&mut self, s: &RunStart<'_>) -> Result<(), TrainError> {
        let how = s.resumed_at.map_or("from scratch".into(), |n| format!("from step {n}"));
        eprintln!("[{}] start {how}, {} steps", self.name, s.config.train.max_steps);
        Ok(())
    }
    fn on_step(&mut self, r: &MetricsRow) -> Result<(), TrainError> {
        if let Some(v) = r.val_loss.filter(|_| r.step / self.every > self.shown) {
            self.shown = r.step / self.every;
            eprintln!("[{}] step {} val loss {v:.4}", self.name, r.step);
        }
        Ok(())
    }
    fn on_growth(&mut self, e: &GrowEvent) -> Result<(), TrainError> {
        eprintln!(
            "[{}] grew at step {}: loss {:.6} → {:.6}",
            self.name, e.step, e.loss_before, e.loss_after
        );
        Ok(())
    }
    fn on_end(&mut self, s: &Summary) -> Result<(), TrainError> {
        eprintln!(
            "[{}] done: final val loss {:.4}, {:.3e} FLOPs, {:.0} s",
            self.name, s.final_val_loss, s.flops, s.wall_s
        );
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Status {
    Pending,
    Running,
    Done,
    Failed,
}

/// Trains every job not done yet, `jobs` at a time, each after the run it branches from.
fn run_all(dir: &Path, jobs: &[Job], parallel: usize, device: DeviceKind) -> Vec<(String, String)> {
    let status = Mutex::new(vec![Status::Pending; jobs.len()]);
    let wake = Condvar::new();
    let failures = Mutex::new(Vec::new());
    let next = || -> Option<usize> {
        let mut st = status.lock().expect("no worker panics holding the lock");
        loop {
            // A job whose source failed fails too.
            for i in 0..jobs.len() {
                if st[i] == Status::Pending && jobs[i].after.iter().any(|&d| st[d] == Status::Failed) {
                    st[i] = Status::Failed;
                }
            }
            let ready = (0..jobs.len())
                .find(|&i| st[i] == Status::Pending && jobs[i].after.iter().all(|&d| st[d] == Status::Done));
            if let Some(i) = ready {
                st[i] = Status::Running;
                return Some(i);
            }
            if !st.contains(&Status::Pending) {
                return None;
            }
            st = wake.wait(st).expect("no worker panics holding the lock");
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..parallel.max(1) {
            scope.spawn(|| {
                while let Some(i) = next() {
                    let result = train_one(dir, &jobs[i], device);
                    if let Err(e) = &result {
                        eprintln!("[{}] failed: {e:#}", jobs[i].name);
                        failures
                            .lock()
                            .expect("lock")
                            .push((jobs[i].name.clone(), format!("{e:#}")));
                    }
                    status.lock().expect("lock")[i] = if result.is_ok() { Status::Done } else { Status::Failed };
                    wake.notify_all();
                }
            });
        }
    });
    failures.into_inner().expect("lock")
}

fn train_one(dir: &Path, job: &Job, device: DeviceKind) -> Result<()> {
    let out = dir.join(&job.name);
    let state = state_of(&out, &job.cfg)?;
    if state != State::Done {
        // A small reference trained before this arm was planned may lack its snapshot.
        let branch = job.branch.as_ref().map(|b| b.0.clone()).filter(|at| {
            let there = at.join("state.json").is_file();
            if !there && state == State::Fresh {
                eprintln!(
                    "[{}] no snapshot {} (the small reference was trained without this branch point; \
                     list it in `branch_points`): training straight",
                    job.name,
                    at.display()
                );
            }
            there
        });
        if let Some(at) = branch.as_ref().filter(|_| state == State::Fresh) {
            std::fs::create_dir_all(&out)?;
            std::fs::write(out.join("branched-from"), at.display().to_string())?;
        }
        let opts = RunOptions {
            resume: state == State::Resume,
            branch_from: branch,
            keep_at: job.keep_at.clone(),
            device_name: device.name().to_string(),
            ..RunOptions::new(&out)
        };
        let mut log = Log {
            name: job.name.clone(),
            every: (job.cfg.train.max_steps / 10).max(1),
            shown: 0,
        };
        run_on(device, &job.cfg, &opts, &growlm::registry(), &mut [&mut log])?;
    }
    crate::plot::loss_svg(&out)?;
    Ok(())
}

/// One arm run's results.
#[derive(Debug, Serialize)]
struct RunResult {
    arm: String,
    seed: u64,
    dir: String,
    growth_steps: Vec<u64>,
    /// |loss after − loss before| at the first growth.
    delta_loss_at_growth: Option<f64>,
    branched: bool,
    #[serde(flatten)]
    row: compare::Row,
    wall_s: f64,
}

/// Mean and sample standard deviation (0 for one value).
fn spread(v: &[f64]) -> [f64; 2] {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    [mean, var.sqrt()]
}

/// An arm's results over its seeds.
#[derive(Debug, Serialize)]
struct ArmResult {
    arm: String,
    seeds: Vec<u64>,
    growth_steps: Vec<u64>,
    delta_loss_at_growth: Option<f64>,
    final_val_loss: [f64; 2],
    perplexity: f64,
    flops: f64,
    speedup_flops: [f64; 2],
    speedup_wall: [f64; 2],
    all_reached: bool,
}

/// Runs the command.
pub fn run(a: ExperimentArgs) -> Result<()> {
    let exp = Experiment::load(&a.file)?;
    let base = a.file.parent().unwrap_or(Path::new(".")).join(&exp.base);
    let stem = a
        .file
        .file_stem()
        .map_or("experiment".into(), |s| s.to_string_lossy().to_string());
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/experiments").join(&stem));
    let dir = match &exp.pool {
        Some(pool) => out.parent().unwrap_or(Path::new(".")).join(format!("runs-{pool}")),
        None => out.clone(),
    };
    for d in [&out, &dir] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let jobs = exp.jobs(&dir, &base)?;
    // Refuse a changed run directory before training anything.
    for j in &jobs {
        state_of(&dir.join(&j.name), &j.cfg)?;
    }
    let parallel = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    eprintln!(
        "experiment {} → {} ({} runs, {parallel} at a time)",
        a.file.display(),
        dir.display(),
        jobs.len()
    );
    let clock = std::time::Instant::now();
    let failures = if a.report_only {
        Vec::new()
    } else {
        run_all(&dir, &jobs, parallel, a.device.into())
    };
    if !failures.is_empty() {
        let list: Vec<String> = failures.iter().map(|(n, e)| format!("  {n}: {e}")).collect();
        bail!(
            "{} of {} runs failed (the others are kept; rerun the same command to retry):\n{}",
            failures.len(),
            jobs.len(),
            list.join("\n")
        );
    }
    let command = format!(
        "cargo xtask experiment {} --out {}{}",
        a.file.display(),
        out.display(),
        a.jobs.map_or(String::new(), |j| format!(" --jobs {j}"))
    );
    let took = clock.elapsed().as_secs_f64();
    report(&exp, &a.file, &out, &dir, &jobs, &command, parallel, took)
}

/// Writes the results of `jobs` (run directories in `dir`) into `out`.
#[allow(clippy::too_many_arguments)]
fn report(
    exp: &Experiment,
    file: &Path,
    out: &Path,
    dir: &Path,
    jobs: &[Job],
    command: &str,
    parallel: usize,
    took: f64,
) -> Result<()> {
    let read = |name: &str| compare::read_run(&dir.join(name));
    let mut runs = Vec::new();
    let mut curves: Vec<(String, RunCurve)> = Vec::new();
    let references: Vec<&Job> = jobs.iter().filter(|j| j.cfg.stages.len() == 1).collect();
    let done = |j: &&Job| dir.join(&j.name).join("summary.json").is_file();
    let missing: Vec<&str> = jobs.iter().filter(|j| !done(j)).map(|j| j.name.as_str()).collect();
    for j in jobs.iter().filter(|j| j.cfg.stages.len() > 1).filter(done) {
        let seed = j.cfg.seed;
        if !dir.join(format!("target-s{seed}")).join("summary.json").is_file() {
            continue;
        }
        let arm = j.name.rsplit_once("-s").map_or(j.name.clone(), |p| p.0.to_string());
        let reference = read(&format!("target-s{seed}"))?;
        let curve = read(&j.name)?;
        let row = compare::compare(&j.name, &curve, &reference, None)?;
        let events: Vec<GrowEvent> = read_jsonl(&dir.join(&j.name).join("events.jsonl")).unwrap_or_default();
        let summary: Summary = serde_json::from_slice(&std::fs::read(dir.join(&j.name).join("summary.json"))?)?;
        runs.push(RunResult {
            arm,
            seed,
            dir: j.name.clone(),
            growth_steps: summary.growth_steps.clone(),
            delta_loss_at_growth: events.first().map(|e| (e.loss_after - e.loss_before).abs()),
            branched: dir.join(&j.name).join("branched-from").is_file(),
            row,
            wall_s: summary.wall_s,
        });
        curves.push((j.name.clone(), curve));
    }
    let mut arms: Vec<ArmResult> = Vec::new();
    for arm in &exp.arms {
        let mine: Vec<&RunResult> = runs.iter().filter(|r| r.arm == arm.name).collect();
        let Some(first) = mine.first() else { continue };
        let col = |f: fn(&RunResult) -> f64| spread(&mine.iter().map(|r| f(r)).collect::<Vec<_>>());
        let loss = col(|r| r.row.final_val_loss);
        arms.push(ArmResult {
            arm: arm.name.clone(),
            seeds: mine.iter().map(|r| r.seed).collect(),
            growth_steps: first.growth_steps.clone(),
            delta_loss_at_growth: first.delta_loss_at_growth,
            final_val_loss: loss,
            perplexity: loss[0].exp(),
            flops: col(|r| r.row.flops)[0],
            speedup_flops: col(|r| r.row.speedup_flops),
            speedup_wall: col(|r| r.row.speedup_wall),
            all_reached: mine.iter().all(|r| r.row.reached),
        });
    }
    let mut reference_rows = Vec::new();
    for j in references.iter().copied().filter(done) {
        let s: Summary = serde_json::from_slice(&std::fs::read(dir.join(&j.name).join("summary.json"))?)?;
        // A smaller model trained alone, measured as an arm is: what growth must beat.
        let target = format!("target-s{}", j.cfg.seed);
        let alone = if j.name != target && dir.join(&target).join("summary.json").is_file() {
            Some(compare::compare(&j.name, &read(&j.name)?, &read(&target)?, None)?)
        } else {
            None
        };
        reference_rows.push(serde_json::json!({
            "run": j.name, "steps": s.steps, "final_val_loss": s.final_val_loss,
            "flops": s.flops, "wall_s": s.wall_s,
            "speedup_flops": alone.as_ref().map(|r| r.speedup_flops),
            "reached": alone.as_ref().map(|r| r.reached),
        }));
    }

    // Figures: validation loss against FLOPs, first seed of each arm with its references.
    let seed0 = jobs[0].cfg.seed;
    let reference = read(&format!("target-s{seed0}"))?;
    let mut shown: Vec<(String, RunCurve)> = vec![(format!("small-s{seed0}"), read(&format!("small-s{seed0}"))?)];
    // The middle models alone, too (a base with more than two stages).
    for j in references
        .iter()
        .filter(|j| j.name.starts_with(MIDDLE) && j.cfg.seed == seed0)
    {
        if done(j) {
            shown.push((j.name.clone(), read(&j.name)?));
        }
    }
    shown.extend(curves.into_iter().filter(|(n, _)| n.ends_with(&format!("-s{seed0}"))));
    compare::plot(
        &out.join("loss-flops.svg"),
        &format!("target-s{seed0}"),
        &reference,
        &shown,
    )?;

    let solver = if exp.solve {
        // A fit that fails (or a reference not trained yet) is reported, not fatal.
        Some(solve(out, dir, seed0, jobs, &runs).unwrap_or_else(|e| serde_json::json!({ "error": format!("{e:#}") })))
    } else {
        None
    };
    let machine = machine();
    let version = version();
    let results = serde_json::json!({
        "experiment": file.display().to_string(),
        "description": exp.description,
        "command": command,
        "machine": machine,
        "version": version,
        "jobs": parallel,
        "seconds": took,
        "references": reference_rows,
        "arms": arms,
        "runs": runs,
        "solver": solver,
        "missing": missing,
    });
    let path = out.join("results.json");
    growlm::train::output::write_atomic(&path, serde_json::to_string_pretty(&results)?.as_bytes())?;
    let rel = pathdiff(dir, out);
    let md = markdown(exp, &results, &arms, &runs, &reference_rows, solver.as_ref(), &rel);
    growlm::train::output::write_atomic(&out.join("report.md"), md.as_bytes())?;
    println!("{md}");
    eprintln!(
        "wrote {}, {} and the figures",
        path.display(),
        out.join("report.md").display()
    );
    Ok(())
}

/// Fits the solver on the first seed's references with the fixed-step arms as grown runs.
/// With more than two stages, the middle references are passed as `--via` (the multi-stage
/// plan); `solve` fits wsd references on their stable phase.
fn solve(out: &Path, dir: &Path, seed: u64, jobs: &[Job], runs: &[RunResult]) -> Result<serde_json::Value> {
    let grown: Vec<PathBuf> = runs
        .iter()
        .filter(|r| r.seed == seed && r.growth_steps.len() == 1)
        .map(|r| dir.join(&r.dir))
        .collect();
    let json = out.join("solve.json");
    let mut args = crate::solve::SolveArgs::for_runs(
        dir.join(format!("small-s{seed}")),
        dir.join(format!("target-s{seed}")),
        grown,
        json.clone(),
        out.join("solve.svg"),
    );
    let stages = jobs.iter().map(|j| j.cfg.stages.len()).max().unwrap_or(2);
    args.via = (1..stages - 1)
        .map(|j| dir.join(format!("{}-s{seed}", middle(j))))
        .collect();
    crate::solve::run(args)?;
    Ok(serde_json::from_slice(&std::fs::read(&json)?)?)
}

/// `dir` as a link prefix from inside `out`: empty when they are the same, else
/// `../runs-POOL/`.
fn pathdiff(dir: &Path, out: &Path) -> String {
    if dir == out {
        String::new()
    } else {
        format!(
            "../{}/",
            dir.file_name()
                .map_or(String::new(), |n| n.to_string_lossy().to_string())
        )
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|p| p.1.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores, {}", std::env::consts::OS)
}

fn version() -> String {
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    format!(
        "growlm {}{}",
        env!("CARGO_PKG_VERSION"),
        rev.map_or(String::new(), |r| format!(" (git {r})"))
    )
}

fn pm(v: [f64; 2], digits: usize) -> String {
    if v[1] > 0.0 {
        format!("{:.digits$} ± {:.digits$}", v[0], v[1])
    } else {
        format!("{:.digits$}", v[0])
    }
}

fn markdown(
    exp: &Experiment,
    results: &serde_json::Value,
    arms: &[ArmResult],
    runs: &[RunResult],
    references: &[serde_json::Value],
    solver: Option<&serde_json::Value>,
    runs_dir: &str,
) -> String {
    let mut s = String::new();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    s += &format!(
        "# Experiment `{}`\n\n{}\n\n",
        text(&results["experiment"]),
        exp.description.trim()
    );
    s += &format!(
        "Rerun: `{}`  \nMachine: {}; {}; {} runs at a time; {:.0} s for the runs trained by this invocation.\n\n",
        text(&results["command"]),
        text(&results["machine"]),
        text(&results["version"]),
        results["jobs"],
        results["seconds"].as_f64().unwrap_or(0.0)
    );
    s += "## References (trained from scratch)\n\n×FLOPs: the smaller models alone, measured against the \
          target as the arms are (what growth has to beat).\n\n\
          | run | steps | final val loss | FLOPs | ×FLOPs | wall s |\n|---|---|---|---|---|---|\n";
    for r in references {
        let bound = if r["reached"] == false { "≥ " } else { "" };
        s += &format!(
            "| {} | {} | {:.4} | {:.3e} | {} | {:.0} |\n",
            text(&r["run"]),
            r["steps"],
            r["final_val_loss"].as_f64().unwrap_or(f64::NAN),
            r["flops"].as_f64().unwrap_or(f64::NAN),
            r["speedup_flops"]
                .as_f64()
                .map_or("-".into(), |x| format!("{bound}{x:.2}")),
            r["wall_s"].as_f64().unwrap_or(f64::NAN)
        );
    }
    s += "\n## Arms against the from-scratch target (equal-loss speed-up, paper Table 2)\n\n";
    s += "Mean ± sample standard deviation over the seeds. The speed-up is the target's FLOPs \
          (wall seconds) to reach the arm's final validation loss, on its running-minimum curve, \
          over the arm's total, the small model's training included; `≥` marks a lower bound \
          (the target never reaches that loss).\n\n";
    s += "| arm | seeds | grew at | \\|Δloss\\| at growth | final val loss | ppl | FLOPs | ×FLOPs | ×wall |\n|---|---|---|---|---|---|---|---|---|\n";
    for a in arms {
        let bound = if a.all_reached { "" } else { "≥ " };
        s += &format!(
            "| {} | {:?} | {:?} | {} | {} | {:.3} | {:.3e} | {bound}{} | {bound}{} |\n",
            a.arm,
            a.seeds,
            a.growth_steps,
            a.delta_loss_at_growth.map_or("-".into(), |d| format!("{d:.2e}")),
            pm(a.final_val_loss, 4),
            a.perplexity,
            a.flops,
            pm(a.speedup_flops, 2),
            pm(a.speedup_wall, 2)
        );
    }
    s += "\n<details><summary>Every run</summary>\n\n| run | grew at | branched | final val loss | FLOPs | ×FLOPs | ×tokens | ×wall | reached |\n|---|---|---|---|---|---|---|---|---|\n";
    for r in runs {
        s += &format!(
            "| [{}]({runs_dir}{}/loss.svg) | {:?} | {} | {:.4} | {:.3e} | {:.3} | {:.3} | {:.3} | {} |\n",
            r.dir,
            r.dir,
            r.growth_steps,
            r.branched,
            r.row.final_val_loss,
            r.row.flops,
            r.row.speedup_flops,
            r.row.speedup_tokens,
            r.row.speedup_wall,
            r.row.reached
        );
    }
    s += "\n</details>\n\n## Figures\n\n![validation loss against FLOPs](loss-flops.svg)\n\n";
    if let Some(v) = solver {
        s += "## Solver against the runs (paper Appendix A, Figures 7–8)\n\n![solver fits and E](solve.svg)\n\n";
        if let Some(e) = v["error"].as_str() {
            s += &format!("The solver: {e}.\n\n");
        }
        let f = |k: &str| v[k].as_f64().map_or("-".into(), |x| format!("{x:.3}"));
        let step = |k: &str| v[k].as_f64().map_or("-".into(), |x| format!("{x:.0}"));
        let ci = v["optimal_growth_step_ci"].as_array().map_or("-".into(), |c| {
            let n = |x: &serde_json::Value| x.as_f64().map_or("-".into(), |x| format!("{x:.0}"));
            format!("{}–{}", n(&c[0]), n(&c[1]))
        });
        s += &format!(
            "Predicted optimal growth step {} (95% CI {ci}); predicted speed-up ×{}; Fs/Ft {}{}.\n\n",
            step("optimal_growth_step"),
            f("predicted_speedup"),
            f("flops_ratio"),
            v["fit_until"].as_f64().map_or(String::new(), |u| format!(
                "; curves fitted up to step {u:.0} (the wsd schedule's stable phase)"
            ))
        );
        if let Some(plan) = v["plan"].as_object() {
            let list = |k: &str, digits: usize| {
                let items: Vec<String> = plan[k]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|x| format!("{:.digits$}", x.as_f64().unwrap_or(f64::NAN)))
                    .collect();
                items.join(", ")
            };
            s += &format!(
                "Multi-stage plan (beyond the paper): grow at steps [{}] (losses [{}]), steps per stage [{}]; \
                 predicted speed-up ×{:.3} at loss {:.4}.\n\n",
                list("growth_steps", 0),
                list("growth_losses", 4),
                list("steps", 0),
                plan["speedup"].as_f64().unwrap_or(f64::NAN),
                v["target_loss"].as_f64().unwrap_or(f64::NAN)
            );
        }
        if let Some(e) = v["plan_error"].as_str() {
            s += &format!("Multi-stage plan: {e}.\n\n");
        }
        // Means over different seed sets are not comparable: the best among the arms run
        // on the most seeds.
        let fixed: Vec<&ArmResult> = arms.iter().filter(|a| a.growth_steps.len() == 1).collect();
        let most = fixed.iter().map(|a| a.seeds.len()).max().unwrap_or(0);
        if let Some(best) = fixed
            .iter()
            .filter(|a| a.seeds.len() == most)
            .max_by(|a, b| a.speedup_flops[0].total_cmp(&b.speedup_flops[0]))
        {
            s += &format!(
                "Best swept growth step {:?} (among the arms run on seeds {:?}): measured speed-up ×{:.3}.\n\n",
                best.growth_steps, best.seeds, best.speedup_flops[0]
            );
        }
        if let Some(emp) = v["empirical_effect_conversion_rate"]
            .as_array()
            .filter(|e| !e.is_empty())
        {
            s += "| growth step | empirical E | predicted E |\n|---|---|---|\n";
            let pred = v["effect_conversion_rate"].as_array().cloned().unwrap_or_default();
            for e in emp {
                let g = e[0].as_f64().unwrap_or(f64::NAN);
                let near = pred.iter().min_by(|a, b| {
                    (a[0].as_f64().unwrap_or(0.0) - g)
                        .abs()
                        .total_cmp(&(b[0].as_f64().unwrap_or(0.0) - g).abs())
                });
                s += &format!(
                    "| {g:.0} | {:.4} | {} |\n",
                    e[1].as_f64().unwrap_or(f64::NAN),
                    near.and_then(|p| p[1].as_f64())
                        .map_or("-".into(), |p| format!("{p:.4}"))
                );
            }
            s += "\n";
        }
    }
    if let Some(m) = results["missing"].as_array().filter(|m| !m.is_empty()) {
        let names: Vec<String> = m.iter().map(|v| format!("`{}`", text(v))).collect();
        s += &format!("Not run yet (`--report-only`, or failed): {}.\n\n", names.join(", "));
    }
    s += "Each run's own curves: `<run>/loss.svg`. Machine-readable: `results.json`.\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_experiment_parses_and_plans() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments");
        let mut n = 0;
        for entry in std::fs::read_dir(&root).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let exp = Experiment::load(&path).unwrap();
                let base = path.parent().unwrap().join(&exp.base);
                let jobs = exp.jobs(Path::new("/nonexistent"), &base).unwrap();
                // Every fixed-step arm branches from a snapshot its small reference keeps.
                for j in jobs.iter().filter(|j| j.branch.is_some()) {
                    let (at, small) = j.branch.as_ref().unwrap();
                    let step: u64 = at.file_name().unwrap().to_string_lossy()[5..].parse().unwrap();
                    assert!(jobs[*small].keep_at.contains(&step), "{}: {}", path.display(), j.name);
                }
                n += 1;
            }
        }
        assert!(n >= 1);
    }

    /// A three-stage base also trains its middle stage from scratch (the planner's curve),
    /// and `multistage.toml` shares the small and target references of `schedule-wsd.toml`,
    /// whose two-stage `ours` it is compared with.
    #[test]
    fn a_three_stage_experiment_trains_the_middle_reference_and_shares_the_pool() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments");
        let jobs_of = |file: &str| {
            let exp = Experiment::load(&root.join(file)).unwrap();
            assert_eq!(exp.pool.as_deref(), Some("paper-tiny-wsd"), "{file}");
            exp.jobs(Path::new("/nonexistent"), &root.join(&exp.base)).unwrap()
        };
        let (multi, two) = (jobs_of("multistage.toml"), jobs_of("schedule-wsd.toml"));
        let find = |jobs: &[Job], name: &str| jobs.iter().find(|j| j.name == name).unwrap().cfg.to_toml();
        for name in ["small-s0", "target-s0"] {
            assert_eq!(find(&multi, name), find(&two, name), "{name}");
        }
        let arm = multi.iter().find(|j| j.cfg.stages.len() == 3).unwrap();
        let middle = multi.iter().find(|j| j.name == "stage1-s0").unwrap();
        assert_eq!(middle.cfg.stages.len(), 1);
        assert_eq!(middle.cfg.stages[0].model, arm.cfg.stages[1].model);
        assert!(middle.cfg.stages[0].growth.is_none());
        assert_eq!(middle.cfg.train.max_steps, 3000);
        assert!(!two.iter().any(|j| j.name.starts_with("stage")));
    }

    #[test]
    fn bad_experiments_are_refused_with_the_arm_named() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| {
            let p = dir.path().join("e.toml");
            std::fs::write(&p, text).unwrap();
            Experiment::load(&p).unwrap_err().to_string()
        };
        let e = write("base = \"x.toml\"\n[[arm]]\nname = \"a\"\n");
        assert!(e.contains("arm `a` needs exactly one of `grow_at`"), "{e}");
        let e = write("base = \"x.toml\"\n[[arm]]\nname = \"small\"\ngrow_at = 3\n");
        assert!(e.contains("`small`"), "{e}");
        let e = write("base = \"x.toml\"\n[[arm]]\nname = \"stage1\"\ngrow_at = 3\n");
        assert!(
            e.contains("arm name `stage1`") && e.contains("`stageN` (the references)"),
            "{e}"
        );
        let e = write("base = \"x.toml\"\n[[arm]]\nname = \"a\"\ngrow_at = 3\n[[arm]]\nname = \"a\"\ngrow_at = 4\n");
        assert!(e.contains("two arms are named `a`"), "{e}");
        let e = write("base = \"x.toml\"\nfoo = 1\n[[arm]]\nname = \"a\"\ngrow_at = 3\n");
        assert!(e.contains("not a valid experiment"), "{e}");
    }

    /// A two-stage experiment on a corpus the test writes: tiny, so it runs in a debug
    /// build in seconds.
    fn tiny(dir: &Path, arm_sets: &str) -> PathBuf {
        let words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota"];
        let text: String = (0..3000).map(|i| format!("{} ", words[(i * 7 + i / 5) % 9])).collect();
        std::fs::write(dir.join("corpus.txt"), text).unwrap();
        let base = r#"
seed = 3
[data]
source = "corpus.txt"
valid_batches = 1
[train]
batch_size = 2
seq_len = 8
max_steps = 12
lr = 0.01
schedule = "constant"
eval_every = 3
checkpoint_every = 4
[[stages]]
[stages.model]
context_len = 8
d_model = 8
n_layers = 1
n_heads = 2
[[stages]]
[stages.model]
context_len = 8
d_model = 12
n_layers = 2
n_heads = 3
[stages.growth]
ramp_steps = 2
[policy]
name = "never"
"#;
        std::fs::write(
            dir.join("base.toml"),
            base.replace("corpus.txt", &dir.join("corpus.txt").display().to_string()),
        )
        .unwrap();
        let exp = format!(
            "base = \"base.toml\"\n[[arm]]\nname = \"ours\"\ngrow_at = 6\nsteps_after = 9\n{arm_sets}\n\
             [[arm]]\nname = \"late\"\ngrow_at = [9]\nseeds = [3, 4]\n"
        );
        std::fs::write(dir.join("e.toml"), exp).unwrap();
        dir.join("e.toml")
    }

    fn args(file: &Path, out: &Path) -> ExperimentArgs {
        ExperimentArgs {
            file: file.to_path_buf(),
            jobs: Some(2),
            out: Some(out.to_path_buf()),
            device: crate::Device::Flex,
            report_only: false,
        }
    }

    #[test]
    fn an_experiment_runs_branches_reports_and_reuses_its_runs() {
        let dir = tempfile::tempdir().unwrap();
        let file = tiny(dir.path(), "");
        let out = dir.path().join("out");
        run(args(&file, &out)).unwrap();
        let results: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
        let runs = results["runs"].as_array().unwrap();
        let names: Vec<&str> = runs.iter().map(|r| r["dir"].as_str().unwrap()).collect();
        assert_eq!(names, ["ours-s3", "late-s3", "late-s4"]);
        for r in runs {
            assert_eq!(r["branched"], true, "{r}");
            let speedup = r["speedup_flops"].as_f64().unwrap();
            assert!(speedup.is_finite() && speedup > 0.0, "{r}");
        }
        assert_eq!(runs[0]["growth_steps"], serde_json::json!([6]));
        // The branch's curve starts with the small reference's, bit for bit.
        let rows = |name: &str| -> Vec<MetricsRow> { read_jsonl(&out.join(name).join("metrics.jsonl")).unwrap() };
        let (small, ours) = (rows("small-s3"), rows("ours-s3"));
        assert_eq!(ours.len(), 15);
        assert_eq!(
            serde_json::to_string(&small[..5]).unwrap(),
            serde_json::to_string(&ours[..5]).unwrap()
        );
        assert!(out.join("small-s4").join("snapshots").join("step-000000008").is_dir());
        for f in ["report.md", "loss-flops.svg", "ours-s3/loss.svg", "target-s4/loss.svg"] {
            assert!(out.join(f).is_file(), "{f} missing");
        }
        let report = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(report.contains("| ours | [3] | [6] |"), "{report}");
        assert!(report.contains("| late | [3, 4] | [9] |"), "{report}");
        // The small model alone is measured against the target as the arms are.
        let refs = results["references"].as_array().unwrap();
        let small = refs.iter().find(|r| r["run"] == "small-s3").unwrap();
        let read = |name: &str| compare::read_run(&out.join(name)).unwrap();
        let want = compare::compare("small-s3", &read("small-s3"), &read("target-s3"), None).unwrap();
        assert_eq!(small["speedup_flops"].as_f64(), Some(want.speedup_flops), "{small}");
        let target = refs.iter().find(|r| r["run"] == "target-s3").unwrap();
        assert!(target["speedup_flops"].is_null(), "{target}");
        assert!(
            report.contains(&format!("| small-s3 | 12 | {:.4} |", want.final_val_loss)),
            "{report}"
        );

        // Run again: everything is reused, nothing retrained.
        let summary = out.join("ours-s3").join("summary.json");
        let before = std::fs::metadata(&summary).unwrap().modified().unwrap();
        run(args(&file, &out)).unwrap();
        assert_eq!(std::fs::metadata(&summary).unwrap().modified().unwrap(), before);

        // --report-only trains nothing and lists what is missing.
        std::fs::remove_dir_all(out.join("late-s4")).unwrap();
        run(ExperimentArgs {
            report_only: true,
            ..args(&file, &out)
        })
        .unwrap();
        assert!(!out.join("late-s4").exists());
        let report = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(
            report.contains("| late | [3] | [9] |") && report.contains("Not run yet"),
            "{report}"
        );
        assert!(report.contains("`late-s4`"), "{report}");
        // A solver that cannot fit (four evaluations) is reported, and the report written.
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, format!("solve = true\n{text}")).unwrap();
        run(ExperimentArgs {
            report_only: true,
            ..args(&file, &out)
        })
        .unwrap();
        let report = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(
            report.contains("The solver: ") && report.contains("too few points"),
            "{report}"
        );
        std::fs::write(&file, text).unwrap();

        // An edited arm is refused, naming its directory, not overwritten.
        let file = tiny(dir.path(), "sets = ['stages.1.growth.ramp_steps=3']");
        let e = format!("{:#}", run(args(&file, &out)).unwrap_err());
        assert!(
            e.contains("ours-s3 was trained with another config") && e.contains("ramp_steps"),
            "{e}"
        );
    }

    #[test]
    fn spread_is_the_sample_standard_deviation() {
        assert_eq!(spread(&[2.0]), [2.0, 0.0]);
        let [m, s] = spread(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        assert!((s - 1.0).abs() < 1e-12);
    }
}
