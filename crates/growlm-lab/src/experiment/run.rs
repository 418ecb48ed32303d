//! An experiment as one call: plan its runs, train what is missing, measure them and write
//! `results.json` and `report.md`.

use std::path::{Path, PathBuf};

use growlm_policy::Registry;

use super::keep::keep_runs;
use super::measure::measure;
use super::report::markdown;
use super::results::{ExperimentOptions, Results};
use super::schedule::{run_all, state_of, ObserverFactory};
use super::{Experiment, Job};
use crate::error::write_atomic;
use crate::LabError;

/// Trains what is missing (unless `report_only`), then measures the runs and writes
/// `results.json`, `report.md` and the figures into `opts.out`. `observer` watches each
/// run. Returns the results and the markdown report.
pub fn run_experiment(
    opts: &ExperimentOptions,
    registry: &Registry,
    observer: &ObserverFactory<'_>,
) -> Result<(Results, String), LabError> {
    let mut exp = Experiment::load(&opts.file)?;
    if let Some(seeds) = &opts.seeds {
        exp.only_seeds(seeds);
    }
    let base = opts.file.parent().unwrap_or(Path::new(".")).join(&exp.base);
    let dir = run_dir(&exp, &opts.out);
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
    } else if opts.sizes_only {
        run_all(&dir, &references(&jobs), opts.jobs, opts.device, registry, observer)
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
    if let (Some(eval), false) = (&exp.eval, opts.report_only) {
        eval.evaluate_runs(opts.file.parent().unwrap_or(Path::new(".")), &dir, &jobs)?;
    }
    let results = measure(&exp, opts, &dir, &jobs, took)?;
    super::figures::draw(&opts.out, &dir, &jobs, &results, !exp.sizes.is_empty())?;
    write_atomic(
        &opts.out.join("results.json"),
        serde_json::to_string_pretty(&results)
            .expect("results serialise")
            .as_bytes(),
    )?;
    let md = markdown(&exp, &results, &links(&dir, &opts.out));
    write_atomic(&opts.out.join("report.md"), md.as_bytes())?;
    if let Some(keep) = &opts.keep {
        keep_results(&exp, opts, keep, (&dir, &jobs), &results, took)?;
    }
    Ok((results, md))
}

/// The references of `jobs` (the sizes, or the small and target models alone), each
/// waiting on the same references as before (references wait on references only).
fn references(jobs: &[Job]) -> Vec<Job> {
    let kept: Vec<usize> = (0..jobs.len()).filter(|&i| jobs[i].is_reference()).collect();
    kept.iter()
        .map(|&i| Job {
            after: jobs[i]
                .after
                .iter()
                .filter_map(|d| kept.iter().position(|k| k == d))
                .collect(),
            ..jobs[i].clone()
        })
        .collect()
}

/// The run directory of an experiment written to `out`: `out` itself, or beside it the
/// pool's `runs-POOL`.
fn run_dir(exp: &super::Experiment, out: &Path) -> PathBuf {
    match &exp.pool {
        Some(pool) => out.parent().unwrap_or(Path::new(".")).join(format!("runs-{pool}")),
        None => out.to_path_buf(),
    }
}

/// Writes the small copy of the experiment into `keep` ([`super::keep`]): the runs
/// thinned, then the results, report and figures measured on that copy, which must equal
/// `results` (measured on the full runs) but for where the runs are.
fn keep_results(
    exp: &super::Experiment,
    opts: &ExperimentOptions,
    keep: &Path,
    (dir, jobs): (&Path, &[Job]),
    results: &Results,
    took: f64,
) -> Result<(), LabError> {
    let kept_dir = run_dir(exp, keep);
    if kept_dir == dir {
        return Err(LabError::Invalid(format!(
            "--keep {}: that is where the runs are; keep them in another directory",
            keep.display()
        )));
    }
    std::fs::create_dir_all(keep).map_err(LabError::io(keep))?;
    keep_runs(dir, jobs, &kept_dir)?;
    // Its command is the one that rebuilds the kept copy: the same, with `--out` the copy.
    let kept_opts = ExperimentOptions {
        out: keep.to_path_buf(),
        command: opts
            .command
            .replace(&opts.out.display().to_string(), &keep.display().to_string()),
        ..opts.clone()
    };
    let kept = measure(exp, &kept_opts, &kept_dir, jobs, took)?;
    super::figures::draw(keep, &kept_dir, jobs, &kept, !exp.sizes.is_empty())?;
    let json = |r: &Results| serde_json::to_string_pretty(r).expect("results serialise");
    let moved = |p: &Path, to: &Path| (p.display().to_string(), to.display().to_string());
    let mut full = json(results);
    for (from, to) in [moved(dir, &kept_dir), moved(&opts.out, keep)] {
        full = full.replace(&from, &to);
    }
    let small = json(&kept);
    if full != small {
        write_atomic(&keep.join("results.full.json"), full.as_bytes())?;
        write_atomic(&keep.join("results.kept.json"), small.as_bytes())?;
        return Err(LabError::Invalid(format!(
            "--keep {}: the thinned runs measure differently from the full ones (a bug: please report it); \
             the full runs are untouched in {}; both results are in results.full.json and results.kept.json there",
            keep.display(),
            dir.display()
        )));
    }
    write_atomic(&keep.join("results.json"), small.as_bytes())?;
    let md = markdown(exp, &kept, &links(&kept_dir, keep));
    write_atomic(&keep.join("report.md"), md.as_bytes())
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
