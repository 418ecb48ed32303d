//! `cargo xtask bench`: training throughput of one stage of a config (issue: throughput).
//!
//! Times `--steps` training steps (forward, backward, AdamW) of stage N's model at the
//! config's batch and sequence length after a warm-up, without and (for a grown stage)
//! with the PDG ramp mask at mid-ramp, and one growth from stage N−1 (model and optimizer
//! state). Model FLOPs per step are the config's (`GptConfig::flops_per_step`, 6·params
//! per token plus attention); MFU divides model FLOPs/s by this machine's single-precision
//! matmul peak, measured by the command itself as the best of ten 1024³ matmuls on the
//! same backend (no autodiff).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use growlm::model::{ActiveWidth, AttentionMasks, GptConfig, WidthMask};
use growlm::ops::{grow, GrowthConfig};
use growlm::train::{DataParallel, RunConfig};
use serde::Serialize;

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Run config (TOML).
    #[arg(long, default_value = "configs/paper-tiny.toml")]
    pub(crate) config: PathBuf,
    /// Stage whose model is timed (0-based) [default: the last].
    #[arg(long)]
    pub(crate) stage: Option<usize>,
    /// Timed steps (after 2 warm-up steps).
    #[arg(long, default_value_t = 10)]
    pub(crate) steps: usize,
    /// Backend.
    #[arg(long, value_enum, default_value_t = crate::Device::Flex)]
    pub(crate) device: crate::Device,
    /// Sequences per step instead of the config's `train.batch_size` (e.g. to fit a
    /// paper-size model on one GPU).
    #[arg(long)]
    pub(crate) batch_size: Option<usize>,
    /// Data-parallel peers, as `train --devices N` (threads sharing the CPU).
    #[arg(long, default_value_t = 1)]
    pub(crate) devices: usize,
    /// Write the figures as JSON.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
}

/// What the command measures.
#[derive(Debug, Serialize)]
pub struct BenchResult {
    /// Config and stage.
    pub config: String,
    /// Stage index.
    pub stage: usize,
    /// Backend.
    pub device: String,
    /// Data-parallel peers the batch was split over.
    pub devices: usize,
    /// Milliseconds per training step (median of the timed steps).
    pub ms_per_step: f64,
    /// Training tokens per second.
    pub tokens_per_s: f64,
    /// Model FLOPs per second.
    pub model_flops_per_s: f64,
    /// Measured single-precision matmul peak of this machine and backend.
    pub peak_flops_per_s: f64,
    /// Model FLOPs utilisation: `model_flops_per_s / peak_flops_per_s`.
    pub mfu: f64,
    /// Milliseconds per step with the PDG ramp mask at mid-ramp (grown stages only).
    pub ms_per_step_masked: Option<f64>,
    /// Milliseconds of one growth from the previous stage (grown stages only).
    pub ms_per_growth: Option<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn tokens<B: Backend>(b: usize, t: usize, vocab: usize, salt: usize, device: &B::Device) -> Tensor<B, 2, Int> {
    let v: Vec<i64> = (0..b * t)
        .map(|i| ((i * 31 + salt * 7 + i / 5) % vocab) as i64)
        .collect();
    Tensor::from_data(TensorData::new(v, vec![b, t]), device)
}

/// Median ms per training step of `cfg` at `batch`×`seq`, with `width` masked if given,
/// the batch split over `peers` data-parallel peers if more than one.
fn time_steps<B: AutodiffBackend>(
    cfg: &GptConfig,
    (batch, seq): (usize, usize),
    steps: usize,
    width: Option<ActiveWidth>,
    peers: Option<&DataParallel<B>>,
    device: &B::Device,
) -> Result<f64> {
    let masks = AttentionMasks::<B>::new(cfg, seq, device);
    let width = width.map(|a| WidthMask::new(cfg, a, device)).transpose()?;
    let mut model = cfg.init::<B>(0, device)?;
    let mut optim = AdamWConfig::new().init();
    let mut times = Vec::new();
    for i in 0..steps + 2 {
        let (x, y) = (
            tokens(batch, seq, cfg.vocab_size, i, device),
            tokens(batch, seq, cfg.vocab_size, i + 1, device),
        );
        let clock = Instant::now();
        let grads = match peers {
            Some(p) => p.gradients(&model, (x, y), &masks, width.as_ref(), None)?.1,
            None => {
                let loss = model.loss(x, y, &masks, width.as_ref());
                GradientsParams::from_grads(loss.backward(), &model)
            }
        };
        model = optim.step(1e-3, model, grads);
        // Wait for the step: read one value back.
        let _ = model.wte.val().slice([0..1, 0..1]).into_data();
        if i >= 2 {
            times.push(clock.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(median(times))
}

/// Best FLOP/s of a 1024³ single-precision matmul on `B` (10 tries after two warm-ups:
/// on a shared 2-core machine single tries vary by a third).
fn matmul_peak<B: Backend>(device: &B::Device) -> f64 {
    let n = 1024;
    let a = Tensor::<B, 2>::random([n, n], Distribution::Normal(0.0, 1.0), device);
    let b = Tensor::<B, 2>::random([n, n], Distribution::Normal(0.0, 1.0), device);
    for _ in 0..2 {
        let _ = a.clone().matmul(b.clone()).into_data();
    }
    (0..10)
        .map(|_| {
            let clock = Instant::now();
            let _ = a.clone().matmul(b.clone()).into_data();
            2.0 * (n as f64).powi(3) / clock.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

pub(crate) fn measure<B: AutodiffBackend>(a: &BenchArgs, device: &B::Device, device_name: &str) -> Result<BenchResult> {
    let run = RunConfig::from_file(&a.config)?;
    let n = a.stage.unwrap_or(run.stages.len() - 1);
    let Some(stage) = run.stages.get(n) else {
        bail!(
            "--stage {n}: {} has {} stages (0-based)",
            a.config.display(),
            run.stages.len()
        );
    };
    if a.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let cfg = &stage.model;
    let (batch, seq) = (a.batch_size.unwrap_or(run.train.batch_size), run.train.seq_len);
    if batch == 0 {
        bail!("--batch-size must be at least 1");
    }
    // The peak first, before any data-parallel session exists: measured after one it came
    // out a third lower on this machine.
    let peak = matmul_peak::<B::InnerBackend>(device);
    let peers = match a.devices {
        0 => bail!("--devices must be at least 1"),
        1 => None,
        n => Some(DataParallel::<B>::start(n, batch, device)?),
    };
    let ms = time_steps::<B>(cfg, (batch, seq), a.steps, None, peers.as_ref(), device)?;
    let (ms_masked, ms_growth) = match n.checked_sub(1).map(|p| &run.stages[p].model) {
        Some(small) => {
            // Mid-ramp: half of each new part active.
            let half = |s: usize, t: usize| s + (t - s) / 2;
            let (s, t) = (ActiveWidth::full(small), ActiveWidth::full(cfg));
            let mid = ActiveWidth {
                hidden: half(s.hidden, t.hidden).max(1),
                attn: half(s.attn, t.attn).max(1),
                ffn: half(s.ffn, t.ffn).max(1),
            };
            let masked = time_steps::<B>(cfg, (batch, seq), a.steps, Some(mid), peers.as_ref(), device)?;
            let op = stage.growth.clone().unwrap_or_else(GrowthConfig::default);
            let model = small.init::<B>(0, device)?;
            let optim = AdamWConfig::new().init();
            let mut times = Vec::new();
            for _ in 0..3 {
                let clock = Instant::now();
                let g = grow(small, &model, &optim, AdamWConfig::new().init(), cfg, &op, 1, 0, None)?;
                let _ = g.model.wte.val().slice([0..1, 0..1]).into_data();
                times.push(clock.elapsed().as_secs_f64() * 1e3);
            }
            (Some(masked), Some(median(times)))
        }
        None => (None, None),
    };
    let flops = cfg.flops_per_step(batch, seq) / (ms / 1e3);
    Ok(BenchResult {
        config: a.config.display().to_string(),
        stage: n,
        device: device_name.to_string(),
        devices: a.devices,
        ms_per_step: ms,
        tokens_per_s: (batch * seq) as f64 / (ms / 1e3),
        model_flops_per_s: flops,
        peak_flops_per_s: peak,
        mfu: flops / peak,
        ms_per_step_masked: ms_masked,
        ms_per_growth: ms_growth,
    })
}

/// Runs the command.
pub fn run(a: BenchArgs) -> Result<()> {
    let r = match a.device {
        crate::Device::Flex => measure::<burn_autodiff::Autodiff<burn_flex::Flex>>(&a, &Default::default(), "flex")?,
        crate::Device::Ndarray => {
            measure::<burn_autodiff::Autodiff<burn_ndarray::NdArray>>(&a, &Default::default(), "ndarray")?
        }
        crate::Device::Cuda => bench_cuda(&a)?,
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{} stage {} on {}{} ({threads} CPU threads available)",
        r.config,
        r.stage,
        r.device,
        match r.devices {
            1 => String::new(),
            n => format!(", batch split over {n} data-parallel peers"),
        }
    );
    println!(
        "  {:.1} ms/step, {:.0} tokens/s, {:.3e} model FLOP/s; matmul peak {:.3e} FLOP/s; MFU {:.1}%",
        r.ms_per_step,
        r.tokens_per_s,
        r.model_flops_per_s,
        r.peak_flops_per_s,
        100.0 * r.mfu
    );
    if let (Some(m), Some(g)) = (r.ms_per_step_masked, r.ms_per_growth) {
        println!(
            "  with the PDG mask at mid-ramp: {m:.1} ms/step ({:+.1}%); one growth from stage {}: {g:.1} ms",
            100.0 * (m / r.ms_per_step - 1.0),
            r.stage - 1
        );
    }
    if let Some(p) = &a.json {
        crate::write_file(p, serde_json::to_string_pretty(&r)?.as_bytes())?;
    }
    Ok(())
}

#[cfg(feature = "cuda")]
fn bench_cuda(a: &BenchArgs) -> Result<BenchResult> {
    measure::<burn_autodiff::Autodiff<burn_cuda::Cuda>>(a, &Default::default(), "cuda")
}

#[cfg(not(feature = "cuda"))]
fn bench_cuda(_: &BenchArgs) -> Result<BenchResult> {
    bail!("this build has no CUDA backend; rebuild with `--features cuda`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_times_a_tiny_config_and_writes_its_json() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(
            &cfg,
            "[data]\nsource = \"sotu\"\n[train]\nbatch_size = 2\nseq_len = 8\nmax_steps = 1\nlr = 0.01\neval_every = 1\ncheckpoint_every = 1\n\
             [[stages]]\n[stages.model]\ncontext_len = 8\nd_model = 8\nn_layers = 1\nn_heads = 2\n\
             [[stages]]\n[stages.model]\ncontext_len = 8\nd_model = 16\nn_layers = 2\nn_heads = 4\n",
        )
        .unwrap();
        let json = dir.path().join("b.json");
        run(BenchArgs {
            config: cfg.clone(),
            stage: None,
            steps: 2,
            device: crate::Device::Flex,
            batch_size: None,
            devices: 2,
            json: Some(json.clone()),
        })
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(v["devices"], 2);
        for k in [
            "ms_per_step",
            "tokens_per_s",
            "model_flops_per_s",
            "peak_flops_per_s",
            "mfu",
        ] {
            assert!(v[k].as_f64().is_some_and(|x| x > 0.0 && x.is_finite()), "{k}: {v}");
        }
        // tokens/s is batch·seq over the step time; MFU is FLOP/s over the peak.
        let ms = v["ms_per_step"].as_f64().unwrap();
        assert!((v["tokens_per_s"].as_f64().unwrap() - 16.0 / (ms / 1e3)).abs() < 1e-6);
        let mfu = v["model_flops_per_s"].as_f64().unwrap() / v["peak_flops_per_s"].as_f64().unwrap();
        assert!((v["mfu"].as_f64().unwrap() - mfu).abs() < 1e-12);
        assert!(v["ms_per_growth"].as_f64().is_some() && v["ms_per_step_masked"].as_f64().is_some());
        let e = run(BenchArgs {
            config: cfg,
            stage: Some(5),
            steps: 2,
            device: crate::Device::Flex,
            batch_size: None,
            devices: 1,
            json: None,
        })
        .unwrap_err();
        assert!(e.to_string().contains("--stage 5"), "{e}");
    }
}
