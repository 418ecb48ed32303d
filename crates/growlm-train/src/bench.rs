//! Training throughput of one stage of a config (docs/design.md §Backends; the `bench`
//! command and `gpu-check` measure with it).
//!
//! Times `steps` training steps (forward, backward, AdamW) of stage N's model at the
//! config's batch and sequence length after two warm-up steps, without and (for a grown
//! stage) with the PDG ramp mask at mid-ramp, and one growth from stage N−1 (model and
//! optimizer state). Model FLOPs per step are the config's (`GptConfig::flops_per_step`,
//! 6·params per token plus attention); MFU divides model FLOPs/s by this machine's
//! single-precision matmul peak, measured in the same call as the best of ten 1024³
//! matmuls on the same backend (no autodiff).

use std::time::Instant;

use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use growlm_model::{ActiveWidth, AttentionMasks, GptConfig, WidthMask};
use growlm_ops::{Growth, GrowthConfig};
use serde::Serialize;

use crate::{DataParallel, RunConfig, TrainError, WithBackend};

/// What to time.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    /// The run config, and its name for the report.
    pub config: RunConfig,
    /// The config's name (its file), copied into the result.
    pub name: String,
    /// The stage whose model is timed [default: the last].
    pub stage: Option<usize>,
    /// Timed steps (after 2 warm-up steps), at least 1.
    pub steps: usize,
    /// Sequences per step instead of the config's `train.batch_size`.
    pub batch_size: Option<usize>,
    /// Data-parallel peers the batch is split over (threads sharing a CPU), at least 1.
    pub devices: usize,
    /// The backend's name, copied into the result.
    pub device_name: String,
}

/// What a bench measures.
#[derive(Debug, Clone, Serialize)]
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

/// The figures as `cargo xtask bench` prints them: what was timed, then ms/step, tokens/s,
/// FLOP/s and MFU, then the masked step and the growth when the stage grows.
impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let split = match self.devices {
            1 => String::new(),
            n => format!(", batch split over {n} data-parallel peers"),
        };
        writeln!(
            f,
            "{} stage {} on {}{split} ({threads} CPU threads available)",
            self.config, self.stage, self.device
        )?;
        write!(
            f,
            "  {:.1} ms/step, {:.0} tokens/s, {:.3e} model FLOP/s; matmul peak {:.3e} FLOP/s; MFU {:.1}%",
            self.ms_per_step,
            self.tokens_per_s,
            self.model_flops_per_s,
            self.peak_flops_per_s,
            100.0 * self.mfu
        )?;
        if let (Some(m), Some(g)) = (self.ms_per_step_masked, self.ms_per_growth) {
            write!(
                f,
                "\n  with the PDG mask at mid-ramp: {m:.1} ms/step ({:+.1}%); one growth from stage {}: {g:.1} ms",
                100.0 * (m / self.ms_per_step - 1.0),
                self.stage - 1
            )?;
        }
        Ok(())
    }
}

impl WithBackend for &BenchSpec {
    type Output = Result<BenchResult, TrainError>;
    fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output {
        measure::<B>(self, device)
    }
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
) -> Result<f64, TrainError> {
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
pub fn matmul_peak<B: Backend>(device: &B::Device) -> f64 {
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

/// Times `spec` on backend `B`.
pub fn measure<B: AutodiffBackend>(spec: &BenchSpec, device: &B::Device) -> Result<BenchResult, TrainError> {
    let run = &spec.config;
    let n = spec.stage.unwrap_or(run.stages.len().saturating_sub(1));
    let Some(stage) = run.stages.get(n) else {
        return Err(TrainError::config(
            "stage",
            format!(
                "there is no stage {n}: {} has {} stages (0-based)",
                spec.name,
                run.stages.len()
            ),
        ));
    };
    if spec.steps == 0 {
        return Err(TrainError::config("steps", "must be at least 1"));
    }
    let cfg = &stage.model;
    let (batch, seq) = (spec.batch_size.unwrap_or(run.train.batch_size), run.train.seq_len);
    if batch == 0 {
        return Err(TrainError::config("batch_size", "must be at least 1"));
    }
    growlm_model::memory::check_fits_in(
        crate::memory_for::<B>(device)?,
        &format!("the bench of stage {n} of {}", spec.name),
        cfg.train_state_bytes() + cfg.activation_bytes(batch, seq),
        "the stage's `model.d_model` or `model.n_layers`, or the batch size",
    )?;
    // The peak first, before any data-parallel session exists: measured after one it came
    // out a third lower on this machine.
    let peak = matmul_peak::<B::InnerBackend>(device);
    let peers = match spec.devices {
        0 => return Err(TrainError::config("devices", "must be at least 1")),
        1 => None,
        n => Some(DataParallel::<B>::start(n, batch, device, None)?),
    };
    let ms = time_steps::<B>(cfg, (batch, seq), spec.steps, None, peers.as_ref(), device)?;
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
            let masked = time_steps::<B>(cfg, (batch, seq), spec.steps, Some(mid), peers.as_ref(), device)?;
            let op = stage.growth.clone().unwrap_or_else(GrowthConfig::default);
            let model = small.init::<B>(0, device)?;
            let optim = AdamWConfig::new().init();
            let mut times = Vec::new();
            for _ in 0..3 {
                let clock = Instant::now();
                let g = Growth::new(small, cfg, &op, 1).apply(&model, &optim, AdamWConfig::new().init())?;
                let _ = g.model.wte.val().slice([0..1, 0..1]).into_data();
                times.push(clock.elapsed().as_secs_f64() * 1e3);
            }
            (Some(masked), Some(median(times)))
        }
        None => (None, None),
    };
    let flops = cfg.flops_per_step(batch, seq) / (ms / 1e3);
    Ok(BenchResult {
        config: spec.name.clone(),
        stage: n,
        device: spec.device_name.clone(),
        devices: spec.devices,
        ms_per_step: ms,
        tokens_per_s: (batch * seq) as f64 / (ms / 1e3),
        model_flops_per_s: flops,
        peak_flops_per_s: peak,
        mfu: flops / peak,
        ms_per_step_masked: ms_masked,
        ms_per_growth: ms_growth,
    })
}
