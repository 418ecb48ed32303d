//! The checks that need a GPU (docs/design.md §Backends), as one suite to run when a GPU is
//! at hand: each check is one body generic over the backend; the test suite runs the
//! bodies on the CPU (burn-flex), `cargo xtask gpu-check` on CUDA. They are
//! - **forward**: the paper-tiny target's logits on the device against burn-flex's for the
//!   same weights;
//! - **growth**: every function-preserving operator (the probes of `cargo xtask
//!   operators`, paper §3.3–3.5) keeps the logits on the device, and in bf16 (mixed
//!   precision) up to bf16 rounding;
//! - **resume**: a staged run halted after a step inside its PDG ramp and resumed gives
//!   the straight run's metrics bit for bit;
//! - **bench**: tokens/s and MFU of the paper-tiny target and of GPT-Neo-125M (stage 0 of
//!   `configs/gpt-neo-125m-355m.toml`).

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::Serialize;

use crate::model::{AttentionMasks, GptConfig};
use crate::ops::{depth, logit_change, logit_change_in, width, Depth, GrowthConfig, Width};
use crate::train::{
    measure, run_on, testing, BenchSpec, DeviceKind, Edit, HaltAfter, MetricsRow, Observer, RunConfig, RunDir,
    RunOptions, TrainError, WithBackend,
};

/// A check's own failure (turned into a failed [`Check`]).
type R<T> = Result<T, Box<dyn std::error::Error>>;

/// Logits of the same weights on two backends may differ by this much (f32 kernels with
/// other summation orders).
const FORWARD_TOLERANCE: f32 = 1e-3;
/// A function-preserving growth keeps the logits within this on the device.
const GROWTH_TOLERANCE: f32 = 1e-4;
/// The same in bf16 (8 bits of mantissa; logits of order 1).
const BF16_TOLERANCE: f32 = 2e-2;

/// One check's outcome.
#[derive(Debug, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// The measured figure or the error.
    pub detail: String,
}

fn check(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok,
        detail: detail.into(),
    }
}

/// Logits of `cfg`'s model (seed 0) on two fixed sequences of 64 tokens, on backend `C`.
fn logits<C: burn::tensor::backend::Backend>(cfg: &GptConfig, device: &C::Device) -> R<Vec<f32>> {
    let tokens: Vec<i64> = (0..2 * 64).map(|i| (i * 37 % 256) as i64).collect();
    let x = Tensor::<C, 2, Int>::from_data(TensorData::new(tokens, vec![2, 64]), device);
    let masks = AttentionMasks::new(cfg, 64, device);
    cfg.init::<C>(0, device)?
        .forward(x, &masks, None)
        .into_data()
        .to_vec::<f32>()
        .map_err(|e| format!("{e:?}").into())
}

/// The paper-tiny target's logits on `B` against burn-flex's, same weights and tokens.
fn forward<B: AutodiffBackend>(device: &B::Device) -> R<Check> {
    let cfg = GptConfig::new(256, 64, 128, 4, 4);
    let on_b = logits::<B::InnerBackend>(&cfg, device)?;
    let on_cpu = logits::<burn_flex::Flex>(&cfg, &Default::default())?;
    let d = on_b
        .iter()
        .zip(&on_cpu)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let finite = on_b.iter().all(|v| v.is_finite());
    Ok(check(
        "forward: paper-tiny target logits vs burn-flex",
        finite && d <= FORWARD_TOLERANCE,
        format!("max |Δlogit| {d:.2e} (tolerance {FORWARD_TOLERANCE:.0e})"),
    ))
}

/// Every function-preserving operator keeps the logits on `B`.
fn growth<B: AutodiffBackend>(device: &B::Device) -> Vec<Check> {
    let base = GptConfig::new(64, 8, 16, 2, 2);
    let (wide, deep) = (GptConfig::new(64, 8, 32, 2, 4), GptConfig::new(64, 8, 16, 4, 2));
    let mut ops: Vec<(String, GrowthConfig, &GptConfig)> = Vec::new();
    for w in width::ALL {
        let op = GrowthConfig {
            width: Width(w),
            ..GrowthConfig::default()
        };
        ops.push((format!("growth: width {} (d 16 → 32)", w.name), op, &wide));
    }
    for d in depth::ALL {
        let Ok(width) = Width::named(if d.op.gates_new_layers() { "msg" } else { "pdg" }) else {
            continue;
        };
        let op = GrowthConfig {
            depth: Depth(d),
            width,
            ..GrowthConfig::default()
        };
        ops.push((format!("growth: depth {} (2 → 4 layers)", d.name), op, &deep));
    }
    // Only the operators that preserve the function on the CPU are expected to on the
    // device (the others, e.g. direct copy, change the function by design).
    ops.into_iter()
        .filter(|(_, op, t)| {
            logit_change::<burn_autodiff::Autodiff<burn_flex::Flex>>(&base, t, op, &Default::default())
                .is_ok_and(|d| d <= 1e-5)
        })
        .map(|(name, op, t)| match logit_change::<B>(&base, t, &op, device) {
            Ok(d) => check(name, d <= GROWTH_TOLERANCE, format!("max |Δlogit| {d:.2e}")),
            Err(e) => check(name, false, format!("error: {e}")),
        })
        .collect()
}

/// Function preservation of mixed precision (`train.precision = "bf16"`): both models
/// cast to bf16 give the same logits up to bf16 rounding.
fn growth_bf16<B: AutodiffBackend>(device: &B::Device) -> Vec<Check> {
    let base = GptConfig::new(64, 8, 16, 2, 2);
    [
        ("pdg", "redundant", GptConfig::new(64, 8, 32, 4, 4)),
        ("msg", "msg", GptConfig::new(64, 8, 32, 4, 4)),
    ]
    .into_iter()
    .map(|(w, d, target)| {
        let name = format!("growth in bf16: {w} + {d} (2×16 → 4×32)");
        let op = match GrowthConfig::named(w, d, GrowthConfig::default().ramp_steps) {
            Ok(op) => op,
            Err(e) => return check(name, false, format!("error: {e}")),
        };
        match logit_change_in::<B>(&base, &target, &op, device, Some(burn::tensor::FloatDType::BF16)) {
            Ok(d) => check(
                name,
                d <= BF16_TOLERANCE,
                format!("max |Δlogit| {d:.2e} (tolerance {BF16_TOLERANCE:.0e})"),
            ),
            Err(e) => check(name, false, format!("error: {e}")),
        }
    })
    .collect()
}

/// A staged run halted inside its PDG ramp and resumed equals the straight run.
fn resume(kind: DeviceKind, dir: &Path) -> R<Check> {
    // The tiny fixture, grown at step 6 with an 8-step ramp: step 11 is inside it.
    let corpus = testing::write_corpus(dir)?;
    let cfg = testing::tiny(
        &corpus,
        &[
            Edit::Seed(1),
            Edit::MaxSteps(24),
            Edit::Set("train.warmup_steps=2".into()),
            Edit::Set("stages.1.growth.ramp_steps=8".into()),
            testing::policy("fixed", "steps = [6]")?,
        ],
    )?;
    let registry = crate::registry();
    let go = |out: &Path, resume: bool, halt: Option<u64>| -> Result<(), TrainError> {
        let opts = RunOptions {
            resume,
            cache_dir: dir.join("cache"),
            ..RunOptions::new(out)
        };
        let mut h = halt.map(HaltAfter);
        let mut obs: Vec<&mut dyn Observer> = Vec::new();
        if let Some(h) = h.as_mut() {
            obs.push(h);
        }
        run_on(kind, &cfg, &opts, &registry, &mut obs).map(|_| ())
    };
    let (straight, halted) = (dir.join("straight"), dir.join("halted"));
    go(&straight, false, None)?;
    match go(&halted, false, Some(11)) {
        Err(TrainError::Halted { .. }) => {}
        other => return Err(format!("the halted run did not halt: {other:?}").into()),
    }
    go(&halted, true, None)?;
    let rows = |d: &Path| -> R<Vec<MetricsRow>> {
        Ok(RunDir::new(d)
            .metrics()?
            .into_iter()
            .map(|mut r| {
                r.wall_s = 0.0;
                r
            })
            .collect())
    };
    let name = "resume: halted at step 11 (inside the ramp), resumed";
    let reference = rows(&straight)?;
    if reference == rows(&halted)? {
        return Ok(check(name, true, "metrics identical to the straight run"));
    }
    // Not identical: is the backend itself deterministic? A second straight run tells.
    let again = dir.join("straight-again");
    go(&again, false, None)?;
    let gap = |a: &[MetricsRow], b: &[MetricsRow]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| ((x.train_loss - y.train_loss) / x.train_loss).abs())
            // A NaN gap counts as infinite (f64::max would drop it).
            .map(|g| if g.is_nan() { f64::INFINITY } else { g })
            .fold(if a.len() == b.len() { 0.0 } else { f64::INFINITY }, f64::max)
    };
    let (resumed, rerun) = (gap(&reference, &rows(&halted)?), gap(&reference, &rows(&again)?));
    Ok(if rerun == 0.0 {
        check(
            name,
            false,
            format!("the resumed run's loss differs by up to {resumed:.1e} (relative), a rerun's not at all"),
        )
    } else {
        check(
            name,
            resumed <= 10.0 * rerun.max(1e-6),
            format!(
                "this backend is not deterministic: two straight runs differ by up to {rerun:.1e} (relative loss), \
                 the resumed run by {resumed:.1e}"
            ),
        )
    })
}

/// Tokens/s and MFU of a stage, as the `bench` command measures them.
fn bench<B: AutodiffBackend>(
    config: &Path,
    stage: usize,
    batch: Option<usize>,
    device: &B::Device,
    name: &str,
) -> Check {
    let file = config
        .file_name()
        .map_or(String::new(), |f| f.to_string_lossy().into_owned());
    let what = format!(
        "bench: {file} stage {stage}{}",
        batch.map_or(String::new(), |b| format!(", batch {b}"))
    );
    let measured = RunConfig::from_file(config).and_then(|cfg| {
        let spec = BenchSpec {
            config: cfg,
            name: config.display().to_string(),
            stage: Some(stage),
            steps: 5,
            batch_size: batch,
            devices: 1,
            device_name: name.to_string(),
        };
        measure::<B>(&spec, device)
    });
    match measured {
        Ok(r) => check(
            what,
            true,
            format!(
                "{:.0} tokens/s, {:.1} ms/step, MFU {:.1}%",
                r.tokens_per_s,
                r.ms_per_step,
                100.0 * r.mfu
            ),
        ),
        Err(e) => check(what, false, format!("error: {}", crate::lab::chain(&e))),
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Sequences per step of the GPT-Neo-125M bench.
    pub batch_size: usize,
    /// Skip the throughput benches.
    pub no_bench: bool,
    /// The directory of the shipped configs (`paper-tiny.toml`, `gpt-neo-125m-355m.toml`).
    pub configs: PathBuf,
}

/// The memory the device allocates from, as the memory check before a run reads it (on
/// CUDA: the device's free memory, from the driver).
fn memory<B: AutodiffBackend>(device: &B::Device) -> Check {
    match crate::train::memory_for::<B>(device) {
        Ok(Some(a)) => check(
            "memory",
            a.bytes > 0.0,
            format!("{:.2} GiB available ({})", a.bytes / 1024f64.powi(3), a.source),
        ),
        Ok(None) => check("memory", false, "not readable: the memory check is skipped"),
        Err(e) => check("memory", false, format!("error: {e}")),
    }
}

/// All checks on backend `B` (`kind` for the training engine); a failure is a failed
/// check, not an error (the error is only for the scratch directory).
pub fn checks<B: AutodiffBackend>(
    kind: DeviceKind,
    device: &B::Device,
    o: &CheckOptions,
) -> std::io::Result<Vec<Check>> {
    let dir = tempfile::tempdir()?;
    let failed = |name: &str, e: Box<dyn std::error::Error>| check(name, false, format!("error: {e}"));
    let mut out = vec![
        memory::<B>(device),
        forward::<B>(device).unwrap_or_else(|e| failed("forward", e)),
    ];
    out.extend(growth::<B>(device));
    out.extend(growth_bf16::<B>(device));
    out.push(resume(kind, dir.path()).unwrap_or_else(|e| failed("resume", e)));
    if !o.no_bench {
        let name = kind.name();
        out.push(bench::<B>(&o.configs.join("paper-tiny.toml"), 1, None, device, name));
        out.push(bench::<B>(
            &o.configs.join("gpt-neo-125m-355m.toml"),
            0,
            Some(o.batch_size),
            device,
            name,
        ));
    }
    Ok(out)
}

/// [`checks`] on the backend `kind` names.
pub fn checks_on(kind: DeviceKind, o: &CheckOptions) -> Result<std::io::Result<Vec<Check>>, TrainError> {
    struct Checks<'a>(DeviceKind, &'a CheckOptions);
    impl WithBackend for Checks<'_> {
        type Output = std::io::Result<Vec<Check>>;
        fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output {
            checks::<B>(self.0, device, self.1)
        }
    }
    kind.dispatch(Checks(kind, o))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check bodies on the CPU: what `gpu-check` runs on CUDA must pass here.
    #[test]
    fn every_check_passes_on_the_cpu() {
        let o = CheckOptions {
            batch_size: 1,
            no_bench: true,
            configs: Path::new(env!("CARGO_MANIFEST_DIR")).join("configs"),
        };
        let results = checks_on(DeviceKind::Flex, &o).unwrap().unwrap();
        assert!(results.len() >= 4, "{results:?}");
        assert!(
            results.iter().any(|c| c.name.starts_with("growth: width pdg")),
            "{results:?}"
        );
        for c in &results {
            assert!(c.ok, "{}: {}", c.name, c.detail);
        }
    }
}
