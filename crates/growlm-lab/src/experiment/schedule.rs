//! Training an experiment's runs: each after the run it branches from, `jobs` at a time,
//! reusing runs that are done and resuming killed ones.

use std::path::Path;
use std::sync::{Condvar, Mutex};

use growlm_policy::Registry;
use growlm_train::{
    check_resume, latest_checkpoint, run_on, saved_config, DeviceKind, Observer, RunConfig, RunDir, RunOptions,
};

use super::Job;
use crate::error::{write_atomic, Context};
use crate::LabError;

/// Makes the observer that watches one job: a progress log, a metrics sink. Called on the
/// worker thread that trains the job, just before it trains.
pub type ObserverFactory<'a> = dyn Fn(&JobStart<'_>) -> Box<dyn Observer> + Sync + 'a;

/// The observer factory that watches nothing: runs train silently (their files are still
/// written).
pub fn silent(_: &JobStart<'_>) -> Box<dyn Observer> {
    struct Silent;
    impl Observer for Silent {}
    Box::new(Silent)
}

/// A job about to train, as its observer factory sees it.
#[derive(Debug)]
pub struct JobStart<'a> {
    /// The job's directory name.
    pub name: &'a str,
    /// Its config.
    pub cfg: &'a RunConfig,
    /// Something the user should know, e.g. that an arm trains straight because its
    /// small reference has no snapshot at its branch point.
    pub note: Option<String>,
}

/// What to do with a run directory.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum State {
    /// Finished with this config: reuse it.
    Done,
    /// A checkpoint of this config: resume it.
    Resume,
    /// Nothing yet: train it.
    Fresh,
}

/// What to do with the run directory `dir` for `cfg`; an error when it was trained with
/// another config (it is never overwritten).
pub fn state_of(dir: &Path, cfg: &RunConfig) -> Result<State, LabError> {
    let run = RunDir::new(dir);
    if run.is_done() && run.config()?.to_toml() == cfg.to_toml() {
        return Ok(State::Done);
    }
    match latest_checkpoint(dir) {
        Some(ckpt) => {
            check_resume(&saved_config(&ckpt)?, cfg).context_with(|| {
                format!(
                    "{} was trained with another config than the experiment now asks for; \
                     delete it to retrain it, or write the experiment into another directory",
                    dir.display()
                )
            })?;
            Ok(State::Resume)
        }
        None => Ok(State::Fresh),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Status {
    Pending,
    Running,
    Done,
    Failed,
}

/// Trains every job not done yet into `dir`, `parallel` at a time, each after the jobs it
/// waits for (a job whose source failed fails too). Returns the failures: (name, error).
pub fn run_all(
    dir: &Path,
    jobs: &[Job],
    parallel: usize,
    device: DeviceKind,
    registry: &Registry,
    observer: &ObserverFactory<'_>,
) -> Vec<(String, String)> {
    let status = Mutex::new(vec![Status::Pending; jobs.len()]);
    let wake = Condvar::new();
    let failures = Mutex::new(Vec::new());
    let next = || -> Option<usize> {
        let mut st = status.lock().expect("no worker panics holding the lock");
        loop {
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
                    let result = train_one(dir, &jobs[i], device, registry, observer);
                    if let Err(e) = &result {
                        failures
                            .lock()
                            .expect("lock")
                            .push((jobs[i].name.clone(), crate::chain(e)));
                    }
                    status.lock().expect("lock")[i] = if result.is_ok() { Status::Done } else { Status::Failed };
                    wake.notify_all();
                }
            });
        }
    });
    failures.into_inner().expect("lock")
}

fn train_one(
    dir: &Path,
    job: &Job,
    device: DeviceKind,
    registry: &Registry,
    observer: &ObserverFactory<'_>,
) -> Result<(), LabError> {
    let out = RunDir::new(dir.join(&job.name));
    let state = state_of(out.path(), &job.cfg)?;
    if state != State::Done {
        // A small reference trained before this arm was planned may lack its snapshot: the
        // arm then trains straight (list the step in `branch_points` to branch it).
        let mut note = None;
        let branch = job.branch.as_ref().map(|b| b.0.clone()).filter(|at| {
            let there = at.join("state.json").is_file();
            if !there && state == State::Fresh {
                note = Some(format!(
                    "no snapshot {} (the small reference was trained without this branch point; \
                     list it in `branch_points`): training straight",
                    at.display()
                ));
            }
            there
        });
        if let Some(at) = branch.as_ref().filter(|_| state == State::Fresh) {
            std::fs::create_dir_all(out.path()).map_err(LabError::io(out.path()))?;
            write_atomic(&out.file(RunDir::BRANCHED_FROM), at.display().to_string().as_bytes())?;
        }
        let opts = RunOptions {
            resume: state == State::Resume,
            branch_from: branch,
            keep_at: job.keep_at.clone(),
            device_name: device.name().to_string(),
            ..RunOptions::new(out.path())
        };
        let mut watch = observer(&JobStart {
            name: &job.name,
            cfg: &job.cfg,
            note,
        });
        run_on(device, &job.cfg, &opts, registry, &mut [watch.as_mut()])?;
    }
    crate::plot::loss_svg(&out)?;
    Ok(())
}
