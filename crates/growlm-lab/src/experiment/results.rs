//! Running an experiment end to end and measuring its runs: each arm against the target
//! from scratch (paper Table 2), the smaller references alone on the same measure, the
//! mean and spread over seeds, the solver's predictions beside them.

use std::path::{Path, PathBuf};

use growlm_policy::Registry;
use growlm_train::{DeviceKind, RunCurve, RunDir};
use serde::Serialize;

use super::frontier::{frontier_results, FrontierResults};
use super::schedule::{run_all, state_of, ObserverFactory};
use super::{middle, Experiment, Job};
use crate::compare::{compare, Row};
use crate::error::write_atomic;
use crate::solve::{solve, SolveInputs, SolveReport};
use crate::stats::Interval;
use crate::LabError;

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
    /// The command that reruns it, written into the report.
    pub command: String,
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
}

/// Trains what is missing (unless `report_only`), then measures the runs and writes
/// `results.json`, `report.md` and the figures into `opts.out`. `observer` watches each
/// run. Returns the results and the markdown report.
pub fn run_experiment(
    opts: &ExperimentOptions,
    registry: &Registry,
    observer: &ObserverFactory<'_>,
) -> Result<(Results, String), LabError> {
    let exp = Experiment::load(&opts.file)?;
    let base = opts.file.parent().unwrap_or(Path::new(".")).join(&exp.base);
    let dir = match &exp.pool {
        Some(pool) => opts.out.parent().unwrap_or(Path::new(".")).join(format!("runs-{pool}")),
        None => opts.out.clone(),
    };
    for d in [&opts.out, &dir] {
        std::fs::create_dir_all(d).map_err(LabError::io(d))?;
    }
    let jobs = exp.jobs(&dir, &base)?;
    if jobs.is_empty() {
        return Err(LabError::Invalid(format!(
            "{}: the experiment plans no runs (every arm has an empty `seeds`?)",
            opts.file.display()
        )));
    }
    // Refuse a changed run directory before training anything.
    for j in &jobs {
        state_of(&dir.join(&j.name), &j.cfg)?;
    }
    let clock = std::time::Instant::now();
    let failures = if opts.report_only {
        Vec::new()
    } else {
        run_all(&dir, &jobs, opts.jobs, opts.device, registry, observer)
    };
    if !failures.is_empty() {
        let list: Vec<String> = failures.iter().map(|(n, e)| format!("  {n}: {e}")).collect();
        return Err(LabError::Invalid(format!(
            "{} of {} runs failed (the others are kept; rerun the same experiment to retry):\n{}",
            failures.len(),
            jobs.len(),
            list.join("\n")
        )));
    }
    let took = clock.elapsed().as_secs_f64();
    let results = measure(&exp, opts, &dir, &jobs, took)?;
    write_atomic(
        &opts.out.join("results.json"),
        serde_json::to_string_pretty(&results)
            .expect("results serialise")
            .as_bytes(),
    )?;
    let md = super::report::markdown(&exp, &results, &links(&dir, &opts.out));
    write_atomic(&opts.out.join("report.md"), md.as_bytes())?;
    Ok((results, md))
}

/// Measures the runs of `jobs` (run directories in `dir`) and draws the figure.
fn measure(
    exp: &Experiment,
    opts: &ExperimentOptions,
    dir: &Path,
    jobs: &[Job],
    took: f64,
) -> Result<Results, LabError> {
    let run = |name: &str| RunDir::new(dir.join(name));
    // Each run's curve is read once (a target reference serves every arm of its seed).
    let cache: std::cell::RefCell<std::collections::HashMap<String, RunCurve>> = Default::default();
    let read = |name: &str| -> Result<RunCurve, LabError> {
        if let Some(c) = cache.borrow().get(name) {
            return Ok(c.clone());
        }
        let c = run(name).curve()?;
        cache.borrow_mut().insert(name.to_string(), c.clone());
        Ok(c)
    };
    let last_stage = jobs.iter().map(|j| j.cfg.stages.len()).max().unwrap_or(2) - 1;
    let target = |seed: u64| exp.target_reference(jobs, seed, last_stage);
    let is_done = |name: &str| run(name).file(RunDir::SUMMARY).is_file();
    let done = |j: &&Job| is_done(&j.name);
    let missing = jobs.iter().filter(|j| !done(j)).map(|j| j.name.clone()).collect();
    let mut runs = Vec::new();
    for j in jobs.iter().filter(|j| !j.is_reference()).filter(done) {
        let seed = j.cfg.seed;
        let Some(reference) = target(seed).filter(|t| is_done(t)) else {
            continue;
        };
        let arm = j.name.rsplit_once("-s").map_or(j.name.clone(), |p| p.0.to_string());
        let curve = read(&j.name)?;
        let row = compare(&j.name, &curve, &read(&reference)?, None)?;
        let events = run(&j.name).events()?;
        let summary = run(&j.name).summary()?;
        runs.push(RunResult {
            arm,
            seed,
            dir: j.name.clone(),
            growth_steps: summary.growth_steps.clone(),
            delta_loss_at_growth: events.first().map(|e| (e.loss_after - e.loss_before).abs()),
            branched: run(&j.name).is_branched(),
            row,
            wall_s: summary.wall_s,
        });
    }
    let mut arms: Vec<ArmResult> = Vec::new();
    for label in exp.arms.iter().flat_map(|a| a.cells()).map(|c| c.label) {
        let mine: Vec<&RunResult> = runs.iter().filter(|r| r.arm == label).collect();
        let Some(first) = mine.first() else { continue };
        let col = |f: fn(&RunResult) -> f64| Interval::of(&mine.iter().map(|r| f(r)).collect::<Vec<_>>());
        let loss = col(|r| r.row.final_val_loss);
        arms.push(ArmResult {
            arm: label.clone(),
            seeds: mine.iter().map(|r| r.seed).collect(),
            growth_steps: first.growth_steps.clone(),
            delta_loss_at_growth: first.delta_loss_at_growth,
            final_val_loss: loss,
            perplexity: loss.mean.exp(),
            flops: col(|r| r.row.flops).mean,
            speedup_flops: col(|r| r.row.speedup_flops),
            speedup_wall: col(|r| r.row.speedup_wall),
            all_reached: mine.iter().all(|r| r.row.reached),
        });
    }
    let references: Vec<&Job> = jobs.iter().filter(|j| j.is_reference()).collect();
    let mut reference_rows = Vec::new();
    for j in references.iter().copied().filter(done) {
        let s = run(&j.name).summary()?;
        // A smaller model trained alone, measured as an arm is: what growth has to beat.
        let alone = match target(j.cfg.seed).filter(|t| t != &j.name && is_done(t)) {
            Some(t) => Some(compare(&j.name, &read(&j.name)?, &read(&t)?, None)?),
            None => None,
        };
        reference_rows.push(ReferenceRow {
            run: j.name.clone(),
            steps: s.steps,
            final_val_loss: s.final_val_loss,
            flops: s.flops,
            wall_s: s.wall_s,
            speedup_flops: alone.as_ref().map(|r| r.speedup_flops),
            reached: alone.as_ref().map(|r| r.reached),
        });
    }

    // The figure: validation loss against FLOPs, the first seed's arms with its references
    // (the target, the small and middle models alone; in a frontier experiment every size's
    // longest budget), each that is done.
    let seed0 = jobs[0].cfg.seed;
    // References that branched are a size's shorter budgets: their curve is the longest's.
    let shown_refs: Vec<&Job> = references
        .iter()
        .copied()
        .filter(|j| j.cfg.seed == seed0 && j.branch.is_none() && done(j))
        .collect();
    let mut shown: Vec<(String, RunCurve)> = Vec::new();
    for j in shown_refs {
        shown.push((j.name.clone(), read(&j.name)?));
    }
    // Every done arm of the first seed, whether or not its target reference is done.
    for j in jobs
        .iter()
        .filter(|j| !j.is_reference() && j.cfg.seed == seed0)
        .filter(done)
    {
        shown.push((j.name.clone(), read(&j.name)?));
    }
    let named: Vec<(&str, &RunCurve)> = shown.iter().map(|(n, c)| (n.as_str(), c)).collect();
    if !named.is_empty() {
        crate::plot::loss_flops_svg(
            &opts.out.join("loss-flops.svg"),
            "validation loss against training FLOPs",
            &named,
            !exp.sizes.is_empty(),
        )?;
    }
    let frontier = frontier_results(exp, dir, jobs, &runs)?;
    if let Some(e) = frontier
        .as_ref()
        .and_then(|f| f.envelopes.iter().find(|e| e.seed == seed0))
    {
        crate::plot::frontier_svg(&opts.out.join("frontier.svg"), &e.envelope, &named)?;
    }
    if let Some(f) = &frontier {
        for name in f.grid_arms() {
            let cells = f.heat_cells(name);
            if cells.is_empty() {
                continue;
            }
            let label = |b: u64| match f.tokens_per_param_at(b) {
                Some(t) => format!("{b} ({t:.0} tok/param)"),
                None => b.to_string(),
            };
            crate::plot::heatmap_svg(
                &opts.out.join(format!("regime-{name}.svg")),
                &format!("×frontier of `{name}` over budget and growth point"),
                &cells,
                &label,
            )?;
        }
    }

    let solver = exp.solve.then(|| {
        // A fit that fails (or a reference not trained yet) is reported, not fatal.
        match solve_first_seed(&opts.out, dir, seed0, jobs, &runs) {
            Ok(r) => SolverOutcome::Report(Box::new(r)),
            Err(e) => SolverOutcome::Failed {
                error: crate::chain(&e),
            },
        }
    });
    Ok(Results {
        experiment: opts.file.display().to_string(),
        description: exp.description.clone(),
        command: opts.command.clone(),
        machine: crate::provenance::machine(),
        version: crate::provenance::version(),
        jobs: opts.jobs,
        seconds: took,
        references: reference_rows,
        arms,
        runs,
        solver,
        missing,
        frontier,
    })
}

/// Fits the solver on the first seed's references with the single-growth arms as grown
/// runs, writes `solve.json` and `solve.svg`. With more than two stages, the middle
/// references give the multi-stage plan; wsd references are fitted on their stable phase.
fn solve_first_seed(
    out: &Path,
    dir: &Path,
    seed: u64,
    jobs: &[Job],
    runs: &[RunResult],
) -> Result<SolveReport, LabError> {
    let mut inputs = SolveInputs::new(dir.join(format!("small-s{seed}")), dir.join(format!("target-s{seed}")));
    inputs.grown = runs
        .iter()
        .filter(|r| r.seed == seed && r.growth_steps.len() == 1)
        .map(|r| dir.join(&r.dir))
        .collect();
    let stages = jobs.iter().map(|j| j.cfg.stages.len()).max().unwrap_or(2);
    if !exp_has_references(jobs, seed) {
        return Err(LabError::Invalid(
            "the solver needs the small and target references (`small-sN`, `target-sN`)".into(),
        ));
    }
    inputs.via = (1..stages - 1)
        .map(|j| dir.join(format!("{}-s{seed}", middle(j))))
        .collect();
    let solved = solve(&inputs)?;
    crate::solve::write(&solved, Some(&out.join("solve.json")), Some(&out.join("solve.svg")))?;
    Ok(solved.report)
}

fn exp_has_references(jobs: &[Job], seed: u64) -> bool {
    ["small", "target"]
        .iter()
        .all(|r| jobs.iter().any(|j| j.name == format!("{r}-s{seed}")))
}

/// The run directory `dir` as a link prefix from inside `out`: empty when they are the
/// same, else `../runs-POOL/`.
fn links(dir: &Path, out: &Path) -> String {
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
