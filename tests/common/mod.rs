//! Shared helpers of the integration tests: a small corpus the tests write themselves and
//! tiny run configs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn_autodiff::Autodiff;
use burn_flex::Flex;
use growlm::train::{train, HaltAfter, MetricsRow, Observer, RunConfig, RunOptions, Summary, TrainError};

/// The autodiff CPU backend the tests train on.
pub type TB = Autodiff<Flex>;

/// Writes a few kilobytes of English-like text with learnable structure into `dir`.
pub fn write_corpus(dir: &Path) -> PathBuf {
    let words = [
        "the", "state", "of", "the", "union", "is", "strong", "and", "our", "people", "work", "for", "peace", "in",
        "every", "land", "we", "shall", "build", "a", "better", "future", "together", "with", "courage", "hope",
    ];
    let mut text = String::new();
    let mut x: u64 = 12345;
    for i in 0..4000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let w = words[((x >> 33) as usize + i) % words.len()];
        text.push_str(w);
        text.push(if i % 12 == 11 { '.' } else { ' ' });
        if i % 12 == 11 {
            text.push(' ');
        }
    }
    let path = dir.join("corpus.txt");
    std::fs::write(&path, text).unwrap();
    path
}

/// A tiny one- or two-stage config over `corpus`.
pub fn tiny_config(corpus: &Path, max_steps: u64, staged: bool, policy: &str) -> RunConfig {
    let second = if staged {
        r#"
[[stages]]
name = "target"
[stages.model]
context_len = 16
d_model = 24
n_layers = 3
n_heads = 3
[stages.growth]
ramp_steps = 6
"#
    } else {
        ""
    };
    let text = format!(
        r#"
seed = 3
[data]
source = "{}"
valid_batches = 2
[train]
batch_size = 4
seq_len = 16
max_steps = {max_steps}
lr = 1e-2
min_lr = 1e-3
warmup_steps = 3
eval_every = 4
checkpoint_every = 8
[[stages]]
name = "small"
[stages.model]
context_len = 16
d_model = 16
n_layers = 2
n_heads = 2
{second}
[policy]
{policy}
"#,
        corpus.display()
    );
    RunConfig::from_toml(&text).unwrap()
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
