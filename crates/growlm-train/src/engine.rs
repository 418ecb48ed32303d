//! The training loop (docs/design.md §Training engine; paper §3.2–3.5, §4.3): one loop for
//! every run. Each step: the learning rate as a pure function of the step, a forward and
//! backward pass on the step's batch, the update, an evaluation when due, the observers,
//! the policy's decision, a growth if it asks for one, and a checkpoint when due.

use std::path::PathBuf;
use std::time::Instant;

use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use growlm_policy::{Decision, Registry};

use crate::checkpoint::{self, RunState};
use crate::observe::{observation, Observer, Observers, RunFiles, RunStart};
use crate::output::{write_atomic, Summary};
use crate::session::Session;
use crate::{RunConfig, RunDir, TrainError};

/// Where a run goes and where its data is cached.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run directory.
    pub out_dir: PathBuf,
    /// Continue from the last checkpoint in `out_dir`.
    pub resume: bool,
    /// Directory of the corpus cache.
    pub cache_dir: PathBuf,
    /// Backend name, recorded in the summary.
    pub device_name: String,
    /// Start a new run from this checkpoint of another run instead of from scratch (see
    /// `checkpoint::branch`); ignored when `out_dir` already has a checkpoint to resume.
    pub branch_from: Option<PathBuf>,
    /// Keep a snapshot of the run after each of these steps, in `out_dir/snapshots/step-N`
    /// (later checkpoints do not replace it): the branch points of an experiment.
    pub keep_at: Vec<u64>,
    /// Start stage 0 from these weights instead of a fresh initialisation (for example a
    /// Hugging Face checkpoint read by `growlm-hf`); the optimizer starts fresh. Every
    /// parameter of stage 0's model must be given with its shape.
    pub init: Option<InitWeights>,
    /// Data-parallel peers: each step's batch is split evenly over this many devices of
    /// the run's device type (threads sharing the one device on a CPU), whose gradients
    /// burn's collective all-reduce averages. 1: no split.
    pub devices: usize,
    /// This process's place in a run across processes (`crate::Distributed`): its peers
    /// join the other processes' in one collective. `None`: this process alone.
    pub dist: Option<crate::Distributed>,
}

/// Weights to start a run from, by module path (`blocks.0.attn.query.weight`).
#[derive(Debug, Clone)]
pub struct InitWeights {
    /// Where they come from, written to the run directory's `init-from.txt`.
    pub source: String,
    /// The values.
    pub values: std::collections::HashMap<String, growlm_ops::HostTensor>,
}

impl RunOptions {
    /// A new run into `out_dir` on the default CPU backend, with the default corpus cache.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: out_dir.into(),
            resume: false,
            cache_dir: growlm_data::default_cache_dir(),
            device_name: "flex".into(),
            branch_from: None,
            keep_at: Vec::new(),
            init: None,
            devices: 1,
            dist: None,
        }
    }
}

/// Trains the run `cfg` describes on backend `B`, writing into `opts.out_dir` and telling
/// `observers` what happens (after the engine's own [`RunFiles`]).
pub fn train<B: AutodiffBackend>(
    cfg: &RunConfig,
    opts: &RunOptions,
    registry: &Registry,
    device: &B::Device,
    observers: &mut [&mut dyn Observer],
) -> Result<Summary, TrainError> {
    let Session {
        lock: _lock,
        mut policy,
        mut run,
        ctx,
        data,
        resumed_at,
    } = Session::<B>::open(cfg, opts, registry, device)?;
    let dir = &opts.out_dir;
    let mut obs = Observers {
        files: RunFiles::default(),
        user: observers,
    };
    let start = RunStart {
        config: cfg,
        out_dir: dir,
        resumed_at,
        data: &data,
        policy: &policy.describe(),
        device: &opts.device_name,
    };
    obs.each(|o| o.on_start(&start))?;
    let (t, clock, wall0) = (&cfg.train, Instant::now(), run.s.wall_s);

    while run.s.step < t.max_steps {
        let lr = t.lr_for(run.s.step, run.s.growth_steps.last().copied());
        let (out, grads) = ctx.gradients(&run)?;
        if out.finite() {
            run.model = run.optim.step(lr, run.model, grads);
            ctx.hold_masked(&mut run);
            run.s.skipped_in_row = 0;
        } else {
            ctx.skip_step(&mut run.s, &out, dir)?;
        }
        ctx.advance(&mut run.s);
        run.s.wall_s = wall0 + clock.elapsed().as_secs_f64();
        let evaluated = run.s.step % t.eval_every == 0 || run.s.step == t.max_steps;
        let val_loss = if evaluated {
            let point = ctx.evaluate_now(&mut run)?;
            obs.each(|o| o.on_evaluation(&point))?;
            Some(point.loss)
        } else {
            None
        };
        let row = out.row(lr, &run.s, val_loss);
        obs.each(|o| o.on_step(&row))?;
        let stage_start = run.s.growth_steps.last().copied().unwrap_or(0);
        match policy.decide(&observation(cfg, &row, &run.s.val_history, stage_start)) {
            Decision::Grow if run.s.stage + 1 < cfg.stages.len() => {
                let event = ctx.grow_stage(&mut run)?;
                obs.each(|o| o.on_growth(&event))?;
            }
            Decision::Stop => {
                if !evaluated {
                    let point = ctx.evaluate_now(&mut run)?;
                    obs.each(|o| o.on_evaluation(&point))?;
                }
                run.s.stopped_by_policy = true;
            }
            _ => {}
        }
        run.s.policy = policy.state();
        if run.s.stopped_by_policy {
            break;
        }
        if run.s.step % t.checkpoint_every == 0 && run.s.step < t.max_steps {
            let path = checkpoint::save(dir, &run, cfg)?;
            obs.each(|o| o.on_checkpoint(run.s.step, &path))?;
        }
        if opts.keep_at.contains(&run.s.step) {
            checkpoint::snapshot(dir, &run, cfg)?;
        }
    }
    let path = checkpoint::save(dir, &run, cfg)?;
    obs.each(|o| o.on_checkpoint(run.s.step, &path))?;
    let summary = summarize(&run.s, policy.name(), &opts.device_name);
    let json = serde_json::to_vec_pretty(&summary).expect("summary serialises");
    write_atomic(&dir.join(RunDir::SUMMARY), &json)?;
    obs.each(|o| o.on_end(&summary))?;
    Ok(summary)
}

fn summarize(s: &RunState, policy: &str, device: &str) -> Summary {
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
        stopped_by_policy: s.stopped_by_policy,
        skipped_steps: s.skipped,
    }
}
