//! Runs through the library: observers see the run in order and a user's observer can be
//! attached; an observer can stop a run as a kill would; `--resume` refuses a changed seed
//! or data source and allows a raised step budget.

use std::path::{Path, PathBuf};

use burn_autodiff::Autodiff;
use burn_flex::Flex;
use growlm_policy::{Registry, ValPoint};
use growlm_train::{
    train, GrowEvent, HaltAfter, MetricsRow, Observer, RunConfig, RunOptions, RunStart, Summary, TrainError,
};

type TB = Autodiff<Flex>;

fn registry() -> Registry {
    let mut r = Registry::new();
    growlm_policy_never::register(&mut r);
    growlm_policy_fixed::register(&mut r);
    r
}

/// A small text with learnable structure, written by the test.
fn corpus(dir: &Path, salt: usize) -> PathBuf {
    let words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota"];
    let text: String = (0..3000)
        .map(|i| format!("{} ", words[(i * 7 + i / 5 + salt) % words.len()]))
        .collect();
    let path = dir.join(format!("corpus-{salt}.txt"));
    std::fs::write(&path, text).unwrap();
    path
}

fn config(corpus: &Path, max_steps: u64) -> RunConfig {
    let text = format!(
        r#"
seed = 1
[data]
source = "{}"
valid_batches = 1
[train]
batch_size = 2
seq_len = 8
max_steps = {max_steps}
lr = 0.01
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
name = "fixed"
steps = [5]
"#,
        corpus.display()
    );
    RunConfig::from_toml(&text).unwrap()
}

fn run(cfg: &RunConfig, out: &Path, resume: bool, observers: &mut [&mut dyn Observer]) -> Result<Summary, TrainError> {
    let opts = RunOptions {
        resume,
        cache_dir: out.join("cache"),
        ..RunOptions::new(out)
    };
    train::<TB>(cfg, &opts, &registry(), &Default::default(), observers)
}

/// Records every call, in order.
#[derive(Default)]
struct Log(Vec<String>);

impl Observer for Log {
    fn on_start(&mut self, s: &RunStart<'_>) -> Result<(), TrainError> {
        self.0.push(format!("start {:?}", s.resumed_at));
        Ok(())
    }
    fn on_step(&mut self, r: &MetricsRow) -> Result<(), TrainError> {
        self.0.push(format!("step {}", r.step));
        Ok(())
    }
    fn on_evaluation(&mut self, p: &ValPoint) -> Result<(), TrainError> {
        self.0.push(format!("eval {}", p.step));
        Ok(())
    }
    fn on_growth(&mut self, e: &GrowEvent) -> Result<(), TrainError> {
        self.0.push(format!("grow {}", e.step));
        Ok(())
    }
    fn on_checkpoint(&mut self, step: u64, path: &Path) -> Result<(), TrainError> {
        assert!(path.join("state.json").is_file() && path.join("config.toml").is_file());
        self.0.push(format!("ckpt {step}"));
        Ok(())
    }
    fn on_end(&mut self, s: &Summary) -> Result<(), TrainError> {
        self.0.push(format!("end {}", s.steps));
        Ok(())
    }
}

#[test]
fn observers_see_the_run_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&corpus(dir.path(), 0), 6);
    let mut log = Log::default();
    run(&cfg, &dir.path().join("r"), false, &mut [&mut log]).unwrap();
    let want = [
        "start None",
        "step 1",
        "step 2",
        "eval 3",
        "step 3",
        "step 4",
        "ckpt 4",
        "step 5",
        "grow 5",
        "eval 6",
        "step 6",
        "ckpt 6",
        "end 6",
    ];
    assert_eq!(log.0, want);
}

#[test]
fn an_observer_error_stops_the_run_before_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&corpus(dir.path(), 0), 6);
    let out = dir.path().join("r");
    let e = run(&cfg, &out, false, &mut [&mut HaltAfter(4)]).unwrap_err();
    assert!(matches!(e, TrainError::Halted { step: 4 }), "{e}");
    assert_eq!(growlm_train::latest_checkpoint(&out), None);
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 4);
}

#[test]
fn resume_refuses_a_changed_seed_or_data_and_allows_more_steps() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (corpus(dir.path(), 0), corpus(dir.path(), 1));
    let cfg = config(&a, 8);
    let out = dir.path().join("r");
    run(&cfg, &out, false, &mut []).unwrap();
    let mut reseeded = cfg.clone();
    reseeded.seed = 5;
    let e = run(&reseeded, &out, true, &mut []).unwrap_err();
    assert!(
        matches!(&e, TrainError::ResumeChanged { key, .. } if key == "seed"),
        "{e}"
    );
    assert!(
        e.to_string().contains("`seed` was 1") && e.to_string().contains("is 5"),
        "{e}"
    );
    let mut other = cfg.clone();
    other.data.source = growlm_data::CorpusSource::Path(b);
    let e = run(&other, &out, true, &mut []).unwrap_err();
    assert!(
        matches!(&e, TrainError::ResumeChanged { key, .. } if key == "data.source"),
        "{e}"
    );
    // Raising the budget continues the run; it then matches a straight run of 12 steps.
    let mut longer = cfg.clone();
    longer.train.max_steps = 12;
    let s = run(&longer, &out, true, &mut []).unwrap();
    assert_eq!(s.steps, 12);
    let saved = RunConfig::from_file(&out.join("config.toml")).unwrap();
    assert_eq!(saved.train.max_steps, 12);
}
