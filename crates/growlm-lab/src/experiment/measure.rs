//! Measuring an experiment's runs: each arm against the target from scratch (paper
//! Table 2), the smaller references alone on the same measure, the mean and spread over
//! seeds, the solver's predictions beside them, and the frontier when the experiment has
//! one.

use std::path::Path;

use growlm_train::{RunCurve, RunDir};

use super::frontier::frontier_results;
use super::results::{ArmResult, ExperimentOptions, ReferenceRow, Results, RunResult, SolverOutcome};
use super::{middle, Experiment, Job, JobId};
use crate::compare::compare;
use crate::solve::{solve, SolveInputs, SolveReport};
use crate::stats::Interval;
use crate::LabError;

/// Measures the runs of `jobs` (run directories in `dir`); the figures are drawn from the
/// results ([`super::figures::draw`]).
pub(super) fn measure(
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
        let arm = j.id.label();
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

    let seed0 = jobs[0].cfg.seed;
    let mut frontier = frontier_results(exp, dir, jobs, &runs)?;
    if let Some(f) = frontier.as_mut() {
        for p in &exp.prediction {
            let file = opts.file.parent().unwrap_or(Path::new(".")).join(p);
            f.preregistered
                .push(super::preregistered::compare(&file, p, &f.arms, &runs)?);
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
        downstream: super::downstream::rows(dir, jobs),
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
    let reference = |model: String| dir.join(JobId::reference(model, None, seed).name());
    let mut inputs = SolveInputs::new(reference("small".into()), reference("target".into()));
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
    inputs.via = (1..stages - 1).map(|j| reference(middle(j))).collect();
    let solved = solve(&inputs)?;
    crate::solve::write(&solved, Some(&out.join("solve.json")), Some(&out.join("solve.svg")))?;
    Ok(solved.report)
}

fn exp_has_references(jobs: &[Job], seed: u64) -> bool {
    ["small", "target"]
        .iter()
        .all(|r| jobs.iter().any(|j| j.id == JobId::reference(*r, None, seed)))
}
