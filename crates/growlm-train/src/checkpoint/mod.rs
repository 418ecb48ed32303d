//! Checkpoints: the run's live state, written atomically (a temporary directory, then a
//! rename) with the resolved config and checksums of its files; `read.rs` reads them back
//! to resume exactly.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use growlm_model::Gpt;
use growlm_ops::Ramp;
use growlm_policy::ValPoint;
use serde::{Deserialize, Serialize};

use crate::optim::{adamw, Optim};
use crate::output::write_atomic;
use crate::{InitWeights, RunConfig, TrainError};

mod read;

pub use read::{branch, latest_checkpoint, load, saved_config};
pub(crate) use read::{load_model, read_state, verify_checksums};

pub(crate) type Rec = NamedMpkFileRecorder<FullPrecisionSettings>;

/// Scalar state of a run, saved with each checkpoint (the tensors go next to it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunState {
    /// Steps completed.
    pub step: u64,
    /// Current stage.
    pub stage: usize,
    /// Training tokens seen.
    pub tokens: u64,
    /// Cumulative training FLOPs.
    pub flops: f64,
    /// Wall-clock seconds of training.
    pub wall_s: f64,
    /// Every validation measurement so far.
    pub val_history: Vec<ValPoint>,
    /// The width ramp of the last growth, if any.
    pub ramp: Option<Ramp>,
    /// Steps at which the model grew.
    pub growth_steps: Vec<u64>,
    /// The policy's own state.
    pub policy: serde_json::Value,
    /// Whether the policy ended the run.
    #[serde(default)]
    pub stopped_by_policy: bool,
    /// Steps skipped for a non-finite loss or gradient, in all and in a row.
    #[serde(default)]
    pub skipped: u64,
    /// The current run of skipped steps.
    #[serde(default)]
    pub skipped_in_row: u64,
}

/// The live state of a run: model, optimizer and scalars.
pub struct Run<B: AutodiffBackend> {
    /// The current stage's model.
    pub model: Gpt<B>,
    /// AdamW with its moments.
    pub optim: Optim<B>,
    /// Scalars.
    pub s: RunState,
    /// During a width ramp, the model as grown: masked entries are held at these values.
    /// Not saved: masked entries never change, so a resumed run takes them from the
    /// checkpoint's model.
    pub frozen: Option<Gpt<B::InnerBackend>>,
}

/// Seed of the fresh parameters of stage `stage` (distinct per stage, fixed per run).
pub fn stage_seed(seed: u64, stage: usize) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(stage as u64)
}

impl<B: AutodiffBackend> Run<B> {
    /// A new run at step 0: stage 0 freshly initialised, or set to `init`'s weights.
    pub fn start(cfg: &RunConfig, init: Option<&InitWeights>, device: &B::Device) -> Result<Self, TrainError> {
        let mut model = cfg.stages[0].model.init::<B>(stage_seed(cfg.seed, 0), device)?;
        if let Some(init) = init {
            for (path, (_, t)) in growlm_ops::named_params::<B, _>(&model) {
                let given = init.values.get(&path).map(|v| &v.shape);
                if given != Some(&t.shape) {
                    return Err(TrainError::Config {
                        key: "init".into(),
                        reason: format!(
                            "{}: parameter `{path}` is {}, stage 0's model needs shape {:?}",
                            init.source,
                            given.map_or("missing".to_string(), |s| format!("shape {s:?}")),
                            t.shape
                        ),
                    });
                }
            }
            model = growlm_ops::assign_params::<B, _>(model, &init.values);
        }
        Ok(Self {
            model,
            optim: adamw(cfg).init(),
            s: RunState::default(),
            frozen: None,
        })
    }
}

pub(crate) fn recorder_err(path: &Path) -> impl FnOnce(burn::record::RecorderError) -> TrainError + '_ {
    move |source| TrainError::Checkpoint {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a checkpoint of `run` (with `cfg`, the resolved config) into `final_dir`
/// atomically: a temporary sibling directory, then a rename. On failure (a full disk, a
/// read-only directory) the temporary directory is removed and no earlier checkpoint is
/// touched, so the run resumes from the last good one once there is space again.
fn write<B: AutodiffBackend>(final_dir: &Path, run: &Run<B>, cfg: &RunConfig) -> Result<(), TrainError> {
    let root = final_dir.parent().expect("a checkpoint directory has a parent");
    let name = final_dir.file_name().expect("a checkpoint directory has a name");
    let tmp = root.join(format!(".tmp-{}", name.to_string_lossy()));
    let _ = std::fs::remove_dir_all(&tmp);
    let written = (|| {
        faults::point(&tmp)?;
        std::fs::create_dir_all(&tmp).map_err(TrainError::io(&tmp))?;
        let rec = Rec::new();
        faults::point(&tmp.join("model.mpk"))?;
        run.model
            .clone()
            .save_file(tmp.join("model"), &rec)
            .map_err(recorder_err(&tmp))?;
        faults::point(&tmp.join("optim.mpk"))?;
        Recorder::<B>::record(&rec, run.optim.to_record(), tmp.join("optim")).map_err(recorder_err(&tmp))?;
        let json = serde_json::to_vec_pretty(&run.s).expect("run state serialises");
        faults::point(&tmp.join("state.json"))?;
        write_atomic(&tmp.join("state.json"), &json)?;
        faults::point(&tmp.join("config.toml"))?;
        write_atomic(&tmp.join("config.toml"), cfg.to_toml().as_bytes())?;
        faults::point(&tmp.join(CHECKSUMS))?;
        write_checksums(&tmp)?;
        faults::point(final_dir)?;
        let _ = std::fs::remove_dir_all(final_dir);
        std::fs::rename(&tmp, final_dir).map_err(TrainError::io(final_dir))
    })();
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    written
}

/// Injected write failures, for the tests of a full disk (`testing::fail_checkpoint_write`):
/// the `k`-th checkpoint file operation of this thread fails with "No space left on
/// device".
pub(crate) mod faults {
    use std::cell::Cell;
    use std::path::Path;

    use crate::TrainError;

    thread_local! {
        static FAIL_AT: Cell<Option<usize>> = const { Cell::new(None) };
        static COUNT: Cell<usize> = const { Cell::new(0) };
    }

    /// Arms (or with `None` disarms) the failure of operation `k` (0-based, counted from now).
    pub(crate) fn arm(k: Option<usize>) {
        FAIL_AT.with(|f| f.set(k));
        COUNT.with(|c| c.set(0));
    }

    /// One file operation on `path`: fails if it is the armed one.
    pub(crate) fn point(path: &Path) -> Result<(), TrainError> {
        let n = COUNT.with(|c| {
            let n = c.get();
            c.set(n + 1);
            n
        });
        if FAIL_AT.with(|f| f.get()) == Some(n) {
            return Err(TrainError::io(path)(std::io::Error::from_raw_os_error(28)));
        }
        Ok(())
    }
}

/// The file of a checkpoint directory listing the SHA-256 of every other file in it.
const CHECKSUMS: &str = "SHA256SUMS";

/// Writes [`CHECKSUMS`] for the files of checkpoint directory `dir` (`sha256sum` format).
fn write_checksums(dir: &Path) -> Result<(), TrainError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(TrainError::io(dir))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != CHECKSUMS)
        .collect();
    names.sort();
    let mut sums = String::new();
    for n in names {
        let path = dir.join(&n);
        // On disk before the checkpoint is renamed into place and older ones are removed.
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(TrainError::io(&path))?;
        let sum = growlm_data::sha256_file(&path).map_err(TrainError::io(&path))?;
        sums.push_str(&format!("{sum}  {n}\n"));
    }
    write_atomic(&dir.join(CHECKSUMS), sums.as_bytes())
}

/// Writes a checkpoint of `run` (with `cfg`, the resolved config) into
/// `dir/checkpoints/step-N` atomically, points `checkpoints/latest` at it and removes
/// older ones; returns its path.
pub fn save<B: AutodiffBackend>(dir: &Path, run: &Run<B>, cfg: &RunConfig) -> Result<PathBuf, TrainError> {
    let root = dir.join("checkpoints");
    let name = format!("step-{:09}", run.s.step);
    let final_dir = root.join(&name);
    write(&final_dir, run, cfg)?;
    faults::point(&root.join("latest"))?;
    write_atomic(&root.join("latest"), name.as_bytes())?;
    for entry in std::fs::read_dir(&root).map_err(TrainError::io(&root))?.flatten() {
        let n = entry.file_name().to_string_lossy().to_string();
        if n.starts_with("step-") && n != name {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(final_dir)
}

/// Where a run directory keeps the snapshot taken after `step` steps
/// ([`RunOptions::keep_at`](crate::RunOptions::keep_at)): `dir/snapshots/step-N`.
pub fn snapshot_path(dir: &Path, step: u64) -> PathBuf {
    dir.join("snapshots").join(format!("step-{step:09}"))
}

/// Writes a checkpoint of `run` that is kept (not replaced by later ones) at
/// [`snapshot_path`]; returns its path.
pub fn snapshot<B: AutodiffBackend>(dir: &Path, run: &Run<B>, cfg: &RunConfig) -> Result<PathBuf, TrainError> {
    let path = snapshot_path(dir, run.s.step);
    std::fs::create_dir_all(dir.join("snapshots")).map_err(TrainError::io(dir))?;
    write(&path, run, cfg)?;
    Ok(path)
}
