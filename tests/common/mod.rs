//! Shared helpers of the integration tests: a small corpus the tests write themselves and
//! tiny run configs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn_autodiff::Autodiff;
use burn_flex::Flex;
use growlm::train::{
    train, Edit, GrowEvent, HaltAfter, MetricsRow, Observer, RunConfig, RunDir, RunOptions, Summary, TrainError,
};

/// The autodiff CPU backend the tests train on.
pub type TB = Autodiff<Flex>;

/// Writes a few kilobytes of English-like text with learnable structure into `dir`.
pub fn write_corpus(dir: &Path) -> PathBuf {
    growlm::train::testing::write_corpus(dir).unwrap()
}

/// A temporary directory with the test corpus written into it: the start of most tests.
pub struct Scratch {
    dir: tempfile::TempDir,
    /// The corpus file.
    pub corpus: PathBuf,
}

impl Scratch {
    /// A fresh directory and its corpus.
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let corpus = write_corpus(dir.path());
        Scratch { dir, corpus }
    }
    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// `name` inside the directory.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(name)
    }
    /// [`tiny_config`] over its corpus.
    pub fn config(&self, max_steps: u64, staged: bool, policy: &str) -> RunConfig {
        tiny_config(&self.corpus, max_steps, staged, policy)
    }
}

/// A fresh [`Scratch`] and [`Scratch::config`] over its corpus: the start of most tests.
pub fn scratch(max_steps: u64, staged: bool, policy: &str) -> (Scratch, RunConfig) {
    let dir = Scratch::new();
    let cfg = dir.config(max_steps, staged, policy);
    (dir, cfg)
}

/// A run trained straight through in a fresh [`Scratch`]: the start of the end-to-end
/// tests. Keep `dir` bound while the run is read: dropping it deletes the run.
pub struct Trained {
    /// The directory (it holds the corpus and the run).
    pub dir: Scratch,
    /// The run's config.
    pub cfg: RunConfig,
    /// The run directory, `dir/run`.
    pub out: PathBuf,
    /// What the run returned.
    pub summary: Summary,
}

/// Trains [`scratch`]'s config into `dir/run`.
pub fn trained(max_steps: u64, staged: bool, policy: &str) -> Trained {
    let (dir, cfg) = scratch(max_steps, staged, policy);
    let out = dir.join("run");
    let summary = run(&cfg, &out, false, None).unwrap();
    Trained { dir, cfg, out, summary }
}

/// The tiny fixture (`configs/tiny.toml`) over `corpus` with `max_steps`, one stage or
/// both, and the policy `policy` (its `[policy]` table's lines).
pub fn tiny_config(corpus: &Path, max_steps: u64, staged: bool, policy: &str) -> RunConfig {
    let table: toml::Table = toml::from_str(policy).unwrap();
    let mut cfg = growlm::train::testing::tiny(corpus, &[Edit::MaxSteps(max_steps), Edit::Policy(table)]).unwrap();
    if !staged {
        cfg.stages.truncate(1);
    }
    cfg.validate().unwrap();
    cfg
}

/// Options writing into `out`, with the corpus cache inside it.
pub fn opts(out: &Path, resume: bool) -> RunOptions {
    RunOptions {
        resume,
        cache_dir: out.join("cache"),
        ..RunOptions::new(out)
    }
}

/// Trains on the test backend, quietly; `halt_after` stops the run after that step as a
/// kill would.
pub fn run(cfg: &RunConfig, out: &Path, resume: bool, halt_after: Option<u64>) -> Result<Summary, TrainError> {
    run_on_devices(cfg, out, resume, halt_after, 1)
}

/// [`run`] with the batch split over `devices` data-parallel peers.
pub fn run_on_devices(
    cfg: &RunConfig,
    out: &Path,
    resume: bool,
    halt_after: Option<u64>,
    devices: usize,
) -> Result<Summary, TrainError> {
    let mut halt = halt_after.map(HaltAfter);
    let mut observers: Vec<&mut dyn Observer> = Vec::new();
    if let Some(h) = halt.as_mut() {
        observers.push(h);
    }
    train::<TB>(
        cfg,
        &RunOptions {
            devices,
            ..opts(out, resume)
        },
        &growlm::registry(),
        &Default::default(),
        &mut observers,
    )
}

/// The metrics of a run with wall-clock time removed (the one thing allowed to differ).
pub fn metrics(out: &Path) -> Vec<MetricsRow> {
    growlm::train::output::read_jsonl::<MetricsRow>(&out.join("metrics.jsonl"))
        .unwrap()
        .into_iter()
        .map(|mut r| {
            r.wall_s = 0.0;
            r
        })
        .collect()
}

/// The growth events of a run.
pub fn events(out: &Path) -> Vec<GrowEvent> {
    RunDir::new(out).events().unwrap()
}

/// Runs `cfg` straight through in `dir/full` and, in `dir/killed`, killed after step
/// `kill_after` then resumed; asserts that both wrote the same metrics and events, and
/// returns the full run's summary, metrics and events.
pub fn killed_run_resumes_exactly(
    cfg: &RunConfig,
    dir: &Path,
    kill_after: u64,
) -> (Summary, Vec<MetricsRow>, Vec<GrowEvent>) {
    let (full, killed) = (dir.join("full"), dir.join("killed"));
    let s = run(cfg, &full, false, None).unwrap();
    assert!(run(cfg, &killed, false, Some(kill_after)).is_err());
    let resumed = run(cfg, &killed, true, None).unwrap();
    assert_eq!(s.growth_steps, resumed.growth_steps);
    let (m, e) = (metrics(&full), events(&full));
    assert_eq!(m, metrics(&killed));
    assert_eq!(e, events(&killed));
    (s, m, e)
}
