//! The training engine (DESIGN.md §Training engine): one loop for every run — stages,
//! growth (paper §3.3–3.5) when the policy says so (§3.2), AdamW with warmup + cosine,
//! global-norm clipping, periodic evaluation on a fixed validation set, checkpoints.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use growlm_data::{Batch, Batcher, ByteTokenizer, Corpus, CorpusSource};
use growlm_model::{AttentionMasks, Gpt, GptConfig, WidthMask};
use growlm_ops::Ramp;
use growlm_policy::{Decision, Observation, Policy, Registry, ValPoint};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::output::{write_atomic, GrowEvent, JsonLines, MetricsRow, Summary};
use crate::{RunConfig, TrainError};

/// How to run: where, whether to resume, what to show.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run directory.
    pub out_dir: PathBuf,
    /// Continue from the last checkpoint in `out_dir`.
    pub resume: bool,
    /// Show a progress bar and messages on stderr.
    pub progress: bool,
    /// Directory of the corpus cache.
    pub cache_dir: PathBuf,
    /// Stop (without a final checkpoint) after this step, as if killed; for tests.
    pub halt_after: Option<u64>,
    /// Backend name, recorded in the summary.
    pub device_name: String,
}

type Optim<B> = OptimizerAdaptor<AdamW, Gpt<B>, B>;
type Recorder_ = NamedMpkFileRecorder<FullPrecisionSettings>;

/// Scalar state saved with each checkpoint (the tensors go next to it).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointState {
    step: u64,
    stage: usize,
    tokens: u64,
    flops: f64,
    wall_s: f64,
    val_history: Vec<ValPoint>,
    ramp: Option<Ramp>,
    growth_steps: Vec<u64>,
    policy: serde_json::Value,
}

/// The fixed validation set as tensors, built once.
struct ValidSet<B: Backend> {
    batches: Vec<(Tensor<B, 2, Int>, Tensor<B, 2, Int>)>,
}

fn to_tensors<B: Backend>(b: &Batch, device: &B::Device) -> (Tensor<B, 2, Int>, Tensor<B, 2, Int>) {
    let shape = vec![b.batch_size, b.seq_len];
    let t = |v: &Vec<i64>| Tensor::from_data(TensorData::new(v.clone(), shape.clone()), device);
    (t(&b.inputs), t(&b.targets))
}

/// Mean validation loss of `model` (with the width mask of `active`, if any).
fn evaluate<B: AutodiffBackend>(
    model: &Gpt<B>,
    config: &GptConfig,
    active: Option<growlm_model::ActiveWidth>,
    valid: &ValidSet<B::InnerBackend>,
    masks: &AttentionMasks<B::InnerBackend>,
    device: &B::Device,
) -> Result<f64, TrainError> {
    let model = model.valid();
    let width = active
        .map(|a| WidthMask::new(config, a, device))
        .transpose()
        .map_err(TrainError::Model)?;
    let mut total = 0.0;
    for (x, y) in &valid.batches {
        total += model
            .loss(x.clone(), y.clone(), masks, width.as_ref())
            .into_scalar()
            .elem::<f64>();
    }
    Ok(total / valid.batches.len() as f64)
}

/// Scales the gradients so that their global L2 norm is at most `max_norm`; returns the
/// norm before clipping.
fn clip_global_norm<B: AutodiffBackend>(model: &Gpt<B>, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    struct SumSq<'a, B: AutodiffBackend> {
        grads: &'a GradientsParams,
        total: Option<Tensor<B::InnerBackend, 1>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for SumSq<'_, B> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(p.id) {
                let s = g.square().sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.remove::<B::InnerBackend, D>(p.id) {
                self.grads
                    .register::<B::InnerBackend, D>(p.id, g.mul_scalar(self.factor));
            }
        }
    }
    let mut v = SumSq::<B> { grads, total: None };
    model.visit(&mut v);
    let norm = v.total.map_or(0.0, |t| t.into_scalar().elem::<f64>().sqrt());
    if max_norm > 0.0 && norm > max_norm {
        model.visit(&mut Scale {
            grads,
            factor: max_norm / (norm + 1e-6),
        });
    }
    norm
}

fn adamw(cfg: &RunConfig) -> AdamWConfig {
    AdamWConfig::new()
        .with_beta_1(cfg.train.beta1 as f32)
        .with_beta_2(cfg.train.beta2 as f32)
        .with_epsilon(1e-8)
        .with_weight_decay(cfg.train.weight_decay as f32)
}

/// Seed of the fresh parameters of stage `stage` (distinct per stage, fixed per run).
fn stage_seed(seed: u64, stage: usize) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(stage as u64)
}

fn ckpt_err(path: &Path) -> impl Fn(burn::record::RecorderError) -> TrainError + '_ {
    move |e| TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Writes a checkpoint directory atomically (temporary directory, then rename), points
/// `checkpoints/latest` at it and removes older ones.
fn save_checkpoint<B: AutodiffBackend>(
    dir: &Path,
    model: &Gpt<B>,
    optim: &Optim<B>,
    state: &CheckpointState,
) -> Result<(), TrainError> {
    let root = dir.join("checkpoints");
    let name = format!("step-{:09}", state.step);
    let tmp = root.join(format!(".tmp-{name}"));
    let io = |p: &Path, e: std::io::Error| TrainError::Io {
        path: p.to_path_buf(),
        reason: e.to_string(),
    };
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    let rec = Recorder_::new();
    model
        .clone()
        .save_file(tmp.join("model"), &rec)
        .map_err(ckpt_err(&tmp))?;
    Recorder::<B>::record(&rec, optim.to_record(), tmp.join("optim")).map_err(ckpt_err(&tmp))?;
    let json = serde_json::to_vec_pretty(state).expect("state serialises");
    write_atomic(&tmp.join("state.json"), &json)?;
    let final_dir = root.join(&name);
    let _ = std::fs::remove_dir_all(&final_dir);
    std::fs::rename(&tmp, &final_dir).map_err(|e| io(&final_dir, e))?;
    write_atomic(&root.join("latest"), name.as_bytes())?;
    for entry in std::fs::read_dir(&root).map_err(|e| io(&root, e))?.flatten() {
        let n = entry.file_name().to_string_lossy().to_string();
        if n.starts_with("step-") && n != name {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// Path of the last complete checkpoint of a run directory, if any.
pub fn latest_checkpoint(dir: &Path) -> Option<PathBuf> {
    let root = dir.join("checkpoints");
    let name = std::fs::read_to_string(root.join("latest")).ok()?;
    let p = root.join(name.trim());
    p.join("state.json").is_file().then_some(p)
}

/// The live state of a run.
struct Run<B: AutodiffBackend> {
    model: Gpt<B>,
    optim: Optim<B>,
    s: CheckpointState,
}

fn load_data(cfg: &RunConfig, opts: &RunOptions) -> Result<(Batcher, String), TrainError> {
    let corpus = Corpus::load(&CorpusSource::parse(&cfg.data.source), &opts.cache_dir).map_err(TrainError::Data)?;
    let tok = ByteTokenizer;
    let batcher = Batcher::new(
        tok.encode(&corpus.train),
        tok.encode(&corpus.valid),
        cfg.train.batch_size,
        cfg.train.seq_len,
        cfg.seed,
    )
    .map_err(TrainError::Data)?;
    Ok((batcher, corpus.source))
}

/// Trains the run `cfg` describes, on backend `B`, writing into `opts.out_dir`.
pub fn train<B: AutodiffBackend>(
    cfg: &RunConfig,
    opts: &RunOptions,
    registry: &Registry,
    device: &B::Device,
) -> Result<Summary, TrainError> {
    cfg.validate()?;
    let dir = &opts.out_dir;
    let latest = latest_checkpoint(dir);
    if !opts.resume && latest.is_some() {
        return Err(TrainError::RunExists { path: dir.clone() });
    }
    if opts.resume && latest.is_none() {
        return Err(TrainError::NothingToResume { path: dir.clone() });
    }
    std::fs::create_dir_all(dir).map_err(|e| TrainError::Io {
        path: dir.clone(),
        reason: e.to_string(),
    })?;
    let (batcher, source) = load_data(cfg, opts)?;
    let mut policy = registry
        .build(cfg.policy_name()?, &cfg.policy)
        .map_err(TrainError::Policy)?;
    let say = |msg: String| {
        if opts.progress {
            eprintln!("{msg}")
        }
    };
    say(format!(
        "data: {source}; policy: {}; device: {}",
        policy.describe(),
        opts.device_name
    ));

    let mut run = match &latest {
        Some(ckpt) => resume::<B>(cfg, ckpt, policy.as_mut(), device)?,
        None => {
            write_atomic(
                &dir.join("config.toml"),
                toml::to_string(cfg).expect("config serialises").as_bytes(),
            )?;
            let model = cfg.stages[0]
                .model
                .init::<B>(stage_seed(cfg.seed, 0), device)
                .map_err(TrainError::Model)?;
            let s = CheckpointState {
                step: 0,
                stage: 0,
                tokens: 0,
                flops: 0.0,
                wall_s: 0.0,
                val_history: vec![],
                ramp: None,
                growth_steps: vec![],
                policy: serde_json::Value::Null,
            };
            Run {
                model,
                optim: adamw(cfg).init(),
                s,
            }
        }
    };
    let keep = latest.as_ref().map(|_| run.s.step);
    let mut metrics = JsonLines::open(dir.join("metrics.jsonl"), keep)?;
    let mut events = JsonLines::open(dir.join("events.jsonl"), keep)?;
    let ctx = Ctx::<B>::new(cfg, &batcher, device);
    let t = &cfg.train;
    let bar = progress_bar(opts.progress, t.max_steps, run.s.step);
    let started = Instant::now();
    let wall0 = run.s.wall_s;

    // The loop: set LR, take a step, maybe evaluate, log, ask the policy, maybe grow or
    // stop, maybe checkpoint.
    while run.s.step < t.max_steps {
        let (out, grads) = ctx.gradients(&run)?;
        run.model = run.optim.step(out.lr, run.model, grads);
        ctx.advance(&mut run.s);
        run.s.wall_s = wall0 + started.elapsed().as_secs_f64();
        let evaluated = run.s.step % t.eval_every == 0 || run.s.step == t.max_steps;
        let val_loss = if evaluated {
            Some(ctx.evaluate_now(&mut run)?)
        } else {
            None
        };
        metrics.write(&out.row(&run.s, val_loss))?;
        show_progress(&bar, opts.progress, &run.s, t.max_steps, out.train_loss, val_loss);
        match policy.decide(&ctx.observation(&run, out.train_loss, evaluated)) {
            Decision::Grow if run.s.stage + 1 < cfg.stages.len() => {
                let ev = ctx.grow_stage(&mut run)?;
                bar.suspend(|| say(describe_growth(&ev)));
                events.write(&ev)?;
            }
            Decision::Stop => {
                bar.suspend(|| say(format!("step {}: policy stopped the run", run.s.step)));
                if !evaluated {
                    ctx.evaluate_now(&mut run)?;
                }
                run.s.policy = policy.state();
                break;
            }
            _ => {}
        }
        run.s.policy = policy.state();
        if opts.halt_after == Some(run.s.step) {
            bar.abandon();
            return Err(TrainError::Halted { step: run.s.step });
        }
        if run.s.step % t.checkpoint_every == 0 || run.s.step == t.max_steps {
            save_checkpoint(dir, &run.model, &run.optim, &run.s)?;
        }
    }
    bar.finish_and_clear();
    save_checkpoint(dir, &run.model, &run.optim, &run.s)?;
    let summary = summarize(&run.s, policy.name(), &opts.device_name);
    write_atomic(
        &dir.join("summary.json"),
        &serde_json::to_vec_pretty(&summary).expect("summary serialises"),
    )?;
    Ok(summary)
}

/// What one training step produced.
struct StepOut {
    lr: f64,
    train_loss: f64,
    grad_norm: f64,
    width_active: f64,
}

impl StepOut {
    fn row(&self, s: &CheckpointState, val_loss: Option<f64>) -> MetricsRow {
        MetricsRow {
            step: s.step,
            tokens: s.tokens,
            flops: s.flops,
            wall_s: s.wall_s,
            train_loss: self.train_loss,
            val_loss,
            lr: self.lr,
            stage: s.stage,
            width_active: self.width_active,
            grad_norm: self.grad_norm,
        }
    }
}

/// Everything fixed for the run: config, data, attention masks, device.
struct Ctx<'a, B: AutodiffBackend> {
    cfg: &'a RunConfig,
    batcher: &'a Batcher,
    valid: ValidSet<B::InnerBackend>,
    /// Attention masks of each stage, for training and for evaluation.
    masks: Vec<(AttentionMasks<B>, AttentionMasks<B::InnerBackend>)>,
    device: &'a B::Device,
}

impl<'a, B: AutodiffBackend> Ctx<'a, B> {
    fn new(cfg: &'a RunConfig, batcher: &'a Batcher, device: &'a B::Device) -> Self {
        let batches = batcher.valid_batches(cfg.data.valid_batches);
        let seq = cfg.train.seq_len;
        Self {
            cfg,
            batcher,
            valid: ValidSet {
                batches: batches.iter().map(|b| to_tensors(b, device)).collect(),
            },
            masks: cfg
                .stages
                .iter()
                .map(|s| {
                    (
                        AttentionMasks::new(&s.model, seq, device),
                        AttentionMasks::new(&s.model, seq, device),
                    )
                })
                .collect(),
            device,
        }
    }

    /// Forward and backward pass on the batch of the current step (paper §4.3: a pure
    /// function of seed and step), with the width mask of the ramp if one is running;
    /// returns the clipped gradients.
    fn gradients(&self, run: &Run<B>) -> Result<(StepOut, GradientsParams), TrainError> {
        let (t, step, stage) = (&self.cfg.train, run.s.step, &self.cfg.stages[run.s.stage].model);
        let active = run.s.ramp.and_then(|r| r.mask_at(step));
        let width = active.map(|a| WidthMask::new(stage, a, self.device)).transpose()?;
        let (x, y) = to_tensors::<B>(&self.batcher.train_batch(step), self.device);
        let loss = run.model.loss(x, y, &self.masks[run.s.stage].0, width.as_ref());
        let train_loss = loss.clone().into_scalar().elem::<f64>();
        if !train_loss.is_finite() {
            return Err(TrainError::Diverged { step, loss: train_loss });
        }
        let mut grads = GradientsParams::from_grads(loss.backward(), &run.model);
        let grad_norm = clip_global_norm(&run.model, &mut grads, t.grad_clip);
        let width_active = active.map_or(1.0, |a| a.hidden as f64 / stage.d_model as f64);
        Ok((
            StepOut {
                lr: t.lr_at(step),
                train_loss,
                grad_norm,
                width_active,
            },
            grads,
        ))
    }

    /// Counts a finished step: tokens and the FLOPs of the current stage.
    fn advance(&self, s: &mut CheckpointState) {
        let t = &self.cfg.train;
        s.step += 1;
        s.tokens += (t.batch_size * t.seq_len) as u64;
        s.flops += self.cfg.stages[s.stage].model.flops_per_step(t.batch_size, t.seq_len);
    }

    /// Validation loss of the current model (with the current step's mask).
    fn val_loss(&self, model: &Gpt<B>, stage: usize, ramp: Option<Ramp>, step: u64) -> Result<f64, TrainError> {
        let cfg = &self.cfg.stages[stage].model;
        let active = ramp.and_then(|r| r.mask_at(step));
        evaluate(model, cfg, active, &self.valid, &self.masks[stage].1, self.device)
    }

    /// Evaluates now and records the point in the history.
    fn evaluate_now(&self, run: &mut Run<B>) -> Result<f64, TrainError> {
        let v = self.val_loss(&run.model, run.s.stage, run.s.ramp, run.s.step)?;
        run.s.val_history.push(ValPoint {
            step: run.s.step,
            loss: v,
            stage: run.s.stage,
        });
        Ok(v)
    }

    /// What the policy sees after a step.
    fn observation<'r>(&self, run: &'r Run<B>, train_loss: f64, evaluated: bool) -> Observation<'r> {
        let t = &self.cfg.train;
        let fps = |i: usize| {
            self.cfg
                .stages
                .get(i)
                .map(|s| s.model.flops_per_step(t.batch_size, t.seq_len))
        };
        Observation {
            step: run.s.step,
            tokens: run.s.tokens,
            flops: run.s.flops,
            train_loss,
            val_history: &run.s.val_history,
            evaluated,
            stage: run.s.stage,
            n_stages: self.cfg.stages.len(),
            flops_per_step: fps(run.s.stage).unwrap_or(0.0),
            next_flops_per_step: fps(run.s.stage + 1),
            stage_start: run.s.growth_steps.last().copied().unwrap_or(0),
        }
    }

    /// Grows the current stage into the next (paper §3.3–3.5), mapping the optimizer
    /// state and starting the width ramp; returns the event with the validation loss just
    /// before and just after, the latter with the mask as it stands at `Gb`.
    fn grow_stage(&self, run: &mut Run<B>) -> Result<GrowEvent, TrainError> {
        let cfg = self.cfg;
        let (from, to, step) = (run.s.stage, run.s.stage + 1, run.s.step);
        let (src, dst) = (&cfg.stages[from].model, &cfg.stages[to].model);
        let op = cfg.stages[to].growth.unwrap_or_default();
        let loss_before = self.val_loss(&run.model, from, run.s.ramp, step)?;
        let seed = stage_seed(cfg.seed, to);
        let grown = growlm_ops::grow(src, &run.model, &run.optim, adamw(cfg).init(), dst, &op, seed)?;
        let ramp = Ramp::new(src, dst, step, op.ramp_steps);
        let loss_after = self.val_loss(&grown.model, to, Some(ramp), step)?;
        run.model = grown.model;
        run.optim = grown.optim;
        run.s.stage = to;
        run.s.ramp = Some(ramp);
        run.s.growth_steps.push(step);
        let r = grown.report;
        Ok(GrowEvent {
            event: "grow".into(),
            step,
            from_stage: from,
            to_stage: to,
            operator: r.operator,
            params_before: r.params_before,
            params_after: r.params_after,
            loss_before,
            loss_after,
        })
    }
}

fn describe_growth(ev: &GrowEvent) -> String {
    format!(
        "step {}: grew stage {} → {} ({}), params {} → {}, val loss {:.5} → {:.5}",
        ev.step,
        ev.from_stage,
        ev.to_stage,
        ev.operator,
        ev.params_before,
        ev.params_after,
        ev.loss_before,
        ev.loss_after
    )
}

fn resume<B: AutodiffBackend>(
    cfg: &RunConfig,
    ckpt: &Path,
    policy: &mut dyn Policy,
    device: &B::Device,
) -> Result<Run<B>, TrainError> {
    let state_path = ckpt.join("state.json");
    let text = std::fs::read(&state_path).map_err(|e| TrainError::Io {
        path: state_path.clone(),
        reason: e.to_string(),
    })?;
    let s: CheckpointState = serde_json::from_slice(&text).map_err(|e| TrainError::Checkpoint {
        path: state_path.clone(),
        reason: e.to_string(),
    })?;
    let stage_cfg = &cfg
        .stages
        .get(s.stage)
        .ok_or_else(|| TrainError::Checkpoint {
            path: state_path.clone(),
            reason: format!("stage {} is not in the config", s.stage),
        })?
        .model;
    let rec = Recorder_::new();
    let model = stage_cfg
        .init::<B>(0, device)
        .map_err(TrainError::Model)?
        .load_file(ckpt.join("model"), &rec, device)
        .map_err(ckpt_err(ckpt))?;
    let record = Recorder::<B>::load(&rec, ckpt.join("optim"), device).map_err(ckpt_err(ckpt))?;
    let optim = adamw(cfg).init().load_record(record);
    policy.load_state(s.policy.clone()).map_err(TrainError::Policy)?;
    Ok(Run { model, optim, s })
}

fn summarize(s: &CheckpointState, policy: &str, device: &str) -> Summary {
    let final_val_loss = s.val_history.last().map_or(f64::NAN, |p| p.loss);
    let best_val_loss = s.val_history.iter().map(|p| p.loss).fold(f64::INFINITY, f64::min);
    Summary {
        final_val_loss,
        best_val_loss,
        steps: s.step,
        tokens: s.tokens,
        flops: s.flops,
        wall_s: s.wall_s,
        final_stage: s.stage,
        growth_steps: s.growth_steps.clone(),
        policy: policy.to_string(),
        device: device.to_string(),
    }
}

fn progress_bar(show: bool, total: u64, pos: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps | {msg} | eta {eta}").expect("valid template"),
    );
    bar.set_position(pos);
    bar
}

/// Updates the progress bar, or without a terminal (a log file, CI) prints one plain line
/// per evaluation.
fn show_progress(bar: &ProgressBar, show: bool, s: &CheckpointState, max: u64, loss: f64, val: Option<f64>) {
    let tps = s.tokens as f64 / s.wall_s.max(1e-9);
    let last_val = s
        .val_history
        .last()
        .map_or("-".to_string(), |p| format!("{:.4}", p.loss));
    bar.set_position(s.step);
    bar.set_message(format!(
        "stage {} | loss {loss:.4} | val {last_val} | {tps:.0} tok/s",
        s.stage
    ));
    if let (true, true, Some(v)) = (show, bar.is_hidden(), val) {
        eprintln!(
            "step {}/{max} | stage {} | loss {loss:.4} | val {v:.4} | {tps:.0} tok/s | {:.0}s",
            s.step, s.stage, s.wall_s
        );
    }
}
