//! The run context (paper §4.3, §3.3–3.5): what stays fixed for a run (config, batches,
//! validation set, attention masks) and the step helpers the loop in `engine.rs` calls —
//! gradients of the step's batch, counting, evaluation, the policy's observation, growth.

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use growlm_data::{Batch, Batcher};
use growlm_model::{AttentionMasks, Gpt, GptConfig, WidthMask};
use growlm_ops::{Growth, Ramp};
use growlm_policy::ValPoint;

use crate::checkpoint::{stage_seed, Run, RunState};
use crate::optim::{adamw, clip_global_norm};
use crate::output::{GrowEvent, MetricsRow};
use crate::parallel::DataParallel;
use crate::{RunConfig, TrainError};

/// What one training step produced.
pub(crate) struct StepOut {
    pub(crate) train_loss: f64,
    pub(crate) grad_norm: f64,
    width_active: f64,
}

impl StepOut {
    /// Whether the loss and the gradient norm are finite: the update may be applied.
    pub(crate) fn finite(&self) -> bool {
        self.train_loss.is_finite() && self.grad_norm.is_finite()
    }

    pub(crate) fn row(&self, lr: f64, s: &RunState, val_loss: Option<f64>) -> MetricsRow {
        MetricsRow {
            step: s.step,
            tokens: s.tokens,
            flops: s.flops,
            wall_s: s.wall_s,
            train_loss: self.train_loss,
            val_loss,
            lr,
            stage: s.stage,
            width_active: self.width_active,
            grad_norm: self.grad_norm,
            skipped: s.skipped,
        }
    }
}

type Pair<B> = (Tensor<B, 2, Int>, Tensor<B, 2, Int>);

fn to_tensors<B: Backend>(b: &Batch, device: &B::Device) -> Pair<B> {
    let shape = vec![b.batch_size, b.seq_len];
    let t = |v: &Vec<i64>| Tensor::from_data(TensorData::new(v.clone(), shape.clone()), device);
    (t(&b.inputs), t(&b.targets))
}

/// Everything fixed for the run: config, batches, the validation set, attention masks.
pub(crate) struct Ctx<'a, B: AutodiffBackend> {
    cfg: &'a RunConfig,
    batcher: Batcher,
    valid: Vec<Pair<B::InnerBackend>>,
    /// Attention masks of each stage, for training and for evaluation.
    masks: Vec<(AttentionMasks<B>, AttentionMasks<B::InnerBackend>)>,
    device: &'a B::Device,
    /// Data-parallel peers, when the run has more than one device.
    peers: Option<DataParallel<B>>,
}

impl<'a, B: AutodiffBackend> Ctx<'a, B> {
    /// Takes the run's batches ([`batcher`]) and builds the validation set and masks.
    pub(crate) fn new(
        cfg: &'a RunConfig,
        batcher: Batcher,
        source: &str,
        device: &'a B::Device,
        devices: usize,
        dist: Option<&crate::Distributed>,
    ) -> Result<Self, TrainError> {
        let t = &cfg.train;
        let peers = match devices {
            0 => {
                return Err(TrainError::Config {
                    key: "devices".into(),
                    reason: "must be at least 1".into(),
                })
            }
            1 if dist.is_none() => None,
            n => Some(DataParallel::start(n, t.batch_size, device, dist)?),
        };
        let valid_tokens = batcher.valid_tokens();
        // Non-overlapping validation windows, or the validation set is smaller than it says.
        let (need, have) = (cfg.data.valid_batches * t.batch_size * (t.seq_len + 1), valid_tokens);
        if have < need {
            return Err(growlm_data::DataError::TooSmall {
                source_name: source.to_string(),
                reason: format!(
                    "its validation split has {have} tokens, but data.valid_batches = {} batches of {} × {} tokens need {need}; \
                     use more text, or lower data.valid_batches or train.batch_size",
                    cfg.data.valid_batches,
                    t.batch_size,
                    t.seq_len + 1
                ),
            }
            .into());
        }
        let valid = batcher.valid_batches(cfg.data.valid_batches)?;
        let mask = |s: &crate::StageConfig| {
            (
                AttentionMasks::new(&s.model, t.seq_len, device),
                AttentionMasks::new(&s.model, t.seq_len, device),
            )
        };
        Ok(Self {
            cfg,
            valid: valid.iter().map(|b| to_tensors(b, device)).collect(),
            batcher,
            masks: cfg.stages.iter().map(mask).collect(),
            device,
            peers,
        })
    }

    /// Forward and backward pass on the batch of the current step (paper §4.3: a pure
    /// function of seed and step), with the width mask of the ramp if one is running;
    /// returns the clipped gradients.
    pub(crate) fn peers(&self) -> Option<&DataParallel<B>> {
        self.peers.as_ref()
    }

    /// Forward and backward pass (see [`Ctx::gradients`]'s callers).
    pub(crate) fn gradients(&self, run: &Run<B>) -> Result<(StepOut, GradientsParams), TrainError> {
        let (t, step, stage) = (&self.cfg.train, run.s.step, &self.cfg.stages[run.s.stage].model);
        let width = width_mask(run.s.ramp, stage, step, self.device)?;
        let (x, y) = to_tensors::<B>(&self.batcher.train_batch(step)?, self.device);
        let masks = &self.masks[run.s.stage].0;
        let low = t.precision.low();
        let (train_loss, mut grads) = match &self.peers {
            Some(peers) => peers.gradients(&run.model, (x, y), masks, width.as_ref(), low)?,
            None => {
                let model = match low {
                    Some(dtype) => run.model.clone().cast(dtype),
                    None => run.model.clone(),
                };
                let loss = model.loss(x, y, masks, width.as_ref());
                let train_loss = loss.clone().into_scalar().elem::<f64>();
                (train_loss, GradientsParams::from_grads(loss.backward(), &run.model))
            }
        };
        let grad_norm = clip_global_norm(&run.model, &mut grads, t.grad_clip);
        let width_active = width.as_ref().map_or(1.0, |w| w.hidden_fraction());
        let out = StepOut {
            train_loss,
            grad_norm,
            width_active,
        };
        Ok((out, grads))
    }

    /// A step whose loss or gradient norm is not finite: with `train.on_nonfinite = "skip"`
    /// its update is skipped and counted, up to `train.max_skips_in_row` in a row; else the
    /// run stops naming the step and its last checkpoint (the weights stay as they were, so
    /// non-finite weights are never checkpointed).
    pub(crate) fn skip_step(&self, s: &mut RunState, out: &StepOut, dir: &std::path::Path) -> Result<(), TrainError> {
        let t = &self.cfg.train;
        let skipping = t.on_nonfinite == crate::config::OnNonFinite::Skip;
        if !skipping || s.skipped_in_row >= t.max_skips_in_row {
            return Err(TrainError::Diverged {
                step: s.step + 1,
                loss: out.train_loss,
                grad_norm: out.grad_norm,
                skipped: s.skipped_in_row,
                checkpoint: crate::latest_checkpoint(dir),
            });
        }
        s.skipped += 1;
        s.skipped_in_row += 1;
        Ok(())
    }

    /// After the update of the current step during a width ramp, sets the entries its
    /// mask hides back to their values at growth (weight decay would move them; paper
    /// §3.3: "the missing parameters will not be operated"); forgets the grown model once
    /// the ramp is over.
    pub(crate) fn hold_masked(&self, run: &mut Run<B>) {
        let Some(frozen) = &run.frozen else { return };
        match run.s.ramp.and_then(|r| r.mask_at(run.s.step)) {
            Some(active) => {
                let config = &self.cfg.stages[run.s.stage].model;
                run.model = run.model.clone().restore_masked(frozen, config, active);
            }
            None => run.frozen = None,
        }
    }

    /// Counts a finished step: tokens and the FLOPs of the current stage.
    pub(crate) fn advance(&self, s: &mut RunState) {
        let t = &self.cfg.train;
        s.step += 1;
        s.tokens += (t.batch_size * t.seq_len) as u64;
        s.flops += self.cfg.stages[s.stage].model.flops_per_step(t.batch_size, t.seq_len);
    }

    /// Mean validation loss of `model` in stage `stage`, with the ramp's mask at `step`.
    pub(crate) fn val_loss(
        &self,
        model: &Gpt<B>,
        stage: usize,
        ramp: Option<Ramp>,
        step: u64,
    ) -> Result<f64, TrainError> {
        let config = &self.cfg.stages[stage].model;
        let model = model.valid();
        let width = width_mask(ramp, config, step, self.device)?;
        let mut total = 0.0;
        for (x, y) in &self.valid {
            let loss = model.loss(x.clone(), y.clone(), &self.masks[stage].1, width.as_ref());
            total += loss.into_scalar().elem::<f64>();
        }
        Ok(total / self.valid.len() as f64)
    }

    /// Evaluates now (with the mask of the step just trained) and records the point.
    pub(crate) fn evaluate_now(&self, run: &mut Run<B>) -> Result<ValPoint, TrainError> {
        let s = &run.s;
        let loss = self.val_loss(&run.model, s.stage, s.ramp, s.step.saturating_sub(1))?;
        let point = ValPoint {
            step: s.step,
            loss,
            stage: s.stage,
        };
        run.s.val_history.push(point);
        Ok(point)
    }

    /// Grows the current stage into the next (paper §3.3–3.5): the operator maps model and
    /// optimizer state and hands back its width ramp; returns the event with the
    /// validation loss just before and just after, the latter with the mask at `Gb`.
    pub(crate) fn grow_stage(&self, run: &mut Run<B>) -> Result<GrowEvent, TrainError> {
        let cfg = self.cfg;
        let (from, to, step) = (run.s.stage, run.s.stage + 1, run.s.step);
        let (src, dst) = (&cfg.stages[from].model, &cfg.stages[to].model);
        let op = cfg.stages[to].growth.clone().unwrap_or_default();
        if let Some(r) = run.s.ramp {
            r.check_growth_at(step)?;
        }
        let loss_before = self.val_loss(&run.model, from, run.s.ramp, step.saturating_sub(1))?;
        let seed = stage_seed(cfg.seed, to);
        let fresh = adamw(cfg).init();
        let active = run.s.ramp.and_then(|r| r.mask_at(step.saturating_sub(1)));
        let grown = Growth {
            step,
            active,
            ..Growth::new(src, dst, &op, seed)
        }
        .apply(&run.model, &run.optim, fresh)?;
        let loss_after = self.val_loss(&grown.model, to, Some(grown.ramp), step)?;
        run.frozen = grown.ramp.mask_at(step).map(|_| grown.model.valid());
        run.model = grown.model;
        run.optim = grown.optim;
        run.s.stage = to;
        run.s.ramp = Some(grown.ramp);
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

/// The ramp's mask (PDG's or MSG's) for the training of `step`, if any.
fn width_mask<C: Backend>(
    ramp: Option<Ramp>,
    config: &GptConfig,
    step: u64,
    device: &C::Device,
) -> Result<Option<WidthMask<C>>, TrainError> {
    Ok(match ramp {
        Some(r) => r.width_mask(config, step, device)?,
        None => None,
    })
}
