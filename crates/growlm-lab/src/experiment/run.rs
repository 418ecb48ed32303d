//! An experiment as one call: plan its runs, train what is missing, measure them and write
//! `results.json` and `report.md`.

use std::path::Path;

use growlm_policy::Registry;

use super::measure::measure;
use super::report::markdown;
use super::results::{ExperimentOptions, Results};
use super::schedule::{run_all, state_of, ObserverFactory};
use super::Experiment;
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
    let md = markdown(&exp, &results, &links(&dir, &opts.out));
    write_atomic(&opts.out.join("report.md"), md.as_bytes())?;
    Ok((results, md))
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
