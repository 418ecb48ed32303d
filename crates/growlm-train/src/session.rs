//! Opening a run (docs/design.md §Training engine): validate the config, lock the run
//! directory, start, resume or branch the run, build its policy, write its config, load and
//! tokenize the data — everything `train` needs before its loop.

use burn::tensor::backend::AutodiffBackend;
use growlm_data::Input;
use growlm_policy::{Policy, Registry};

use crate::checkpoint::{self, latest_checkpoint, Run};
use crate::context::Ctx;
use crate::output::write_atomic;
use crate::{RunConfig, RunDir, RunLock, RunOptions, TrainError};

/// An opened run, ready for its first step.
pub(crate) struct Session<'a, B: AutodiffBackend> {
    /// The run directory's lock, held while the session lives.
    pub(crate) lock: RunLock,
    /// The growth-schedule policy, with its state restored on a resume.
    pub(crate) policy: Box<dyn Policy>,
    /// The model, optimizer and scalar state.
    pub(crate) run: Run<B>,
    /// The run's fixed data and step helpers.
    pub(crate) ctx: Ctx<'a, B>,
    /// The data source, described.
    pub(crate) data: String,
    /// The step a resumed or branched run continues from.
    pub(crate) resumed_at: Option<u64>,
}

impl<'a, B: AutodiffBackend> Session<'a, B> {
    /// Opens the run `cfg` describes in `opts.out_dir`: a new run refuses a directory that
    /// holds one, a resume needs a checkpoint, a branch starts from `opts.branch_from`.
    pub(crate) fn open(
        cfg: &'a RunConfig,
        opts: &RunOptions,
        registry: &Registry,
        device: &'a B::Device,
    ) -> Result<Self, TrainError> {
        cfg.validate()?;
        // Before anything is allocated or written, against the memory the device allocates
        // from (a GPU's own, the host's for the CPU backends).
        cfg.check_memory(crate::memory_for::<B>(device)?)?;
        let dir = &opts.out_dir;
        let lock = RunLock::acquire(dir)?;
        let latest = latest_checkpoint(dir);
        match (opts.resume, &latest) {
            (false, Some(_)) => return Err(TrainError::RunExists { path: dir.clone() }),
            (true, None) => return Err(TrainError::NothingToResume { path: dir.clone() }),
            _ => {}
        }
        let mut policy = registry.build(cfg.policy_name()?, &cfg.policy)?;
        let mut run = match (&latest, &opts.branch_from) {
            (Some(ckpt), _) => checkpoint::load::<B>(cfg, ckpt, device)?,
            (None, Some(src)) => checkpoint::branch::<B>(cfg, src, dir, device)?,
            (None, None) => Run::start(cfg, opts.init.as_ref(), device)?,
        };
        if latest.is_some() {
            policy.load_state(run.s.policy.clone())?;
        } else {
            // A branch starts its own policy: the source run's belongs to another schedule.
            run.s.policy = policy.state();
        }
        let continued = latest.is_some() || opts.branch_from.is_some();
        std::fs::create_dir_all(dir).map_err(TrainError::io(dir))?;
        write_atomic(&dir.join(RunDir::CONFIG), cfg.to_toml().as_bytes())?;
        if let Some(init) = opts.init.as_ref().filter(|_| !continued) {
            write_atomic(&dir.join("init-from.txt"), format!("{}\n", init.source).as_bytes())?;
        }
        let input = Input::open(&cfg.data.source, cfg.data.split, &opts.cache_dir)?;
        let (batcher, source) = crate::data::batcher(cfg, input, Some(dir), continued, &opts.cache_dir)?;
        // Only a run across processes compares it (it reads windows of both splits).
        let fingerprint = match opts.dist {
            Some(_) => batcher.fingerprint()?,
            None => String::new(),
        };
        let ctx = Ctx::<B>::new(cfg, batcher, &source, device, opts.devices, opts.dist.as_ref())?;
        if let Some(peers) = ctx.peers().filter(|_| opts.dist.is_some()) {
            // Every rank must train the same thing from the same state.
            let config = growlm_data::sha256_hex(cfg.to_toml().as_bytes());
            peers.check_same(&[
                ("the config", config),
                ("the data", fingerprint),
                ("the parameters at the start", crate::flat::param_hash(&run.model)),
            ])?;
        }
        Ok(Self {
            lock,
            policy,
            resumed_at: continued.then_some(run.s.step),
            run,
            ctx,
            data: source,
        })
    }
}
