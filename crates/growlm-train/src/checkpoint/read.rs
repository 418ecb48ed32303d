//! Reading a checkpoint back: its checksums, its config and scalar state, its model, and the
//! live run that resumes (or branches) from it exactly.

use std::path::{Path, PathBuf};

use burn::module::{AutodiffModule, Module};
use burn::optim::Optimizer;
use burn::record::Recorder;
use burn::tensor::backend::{AutodiffBackend, Backend};
use growlm_model::{Gpt, GptConfig};

use super::{recorder_err, Rec, Run, RunState, CHECKSUMS};
use crate::optim::adamw;
use crate::{check_branch, check_resume, RunConfig, RunDir, TrainError};

/// The files every checkpoint's [`CHECKSUMS`] must list.
const CHECKSUMMED: [&str; 4] = ["config.toml", "model.mpk", "optim.mpk", "state.json"];

/// Checks the files of checkpoint `dir` against its [`CHECKSUMS`], so that a truncated,
/// damaged or swapped file is refused naming it before any of it is decoded. A checkpoint
/// written before checksums existed has none and is read unchecked.
pub(crate) fn verify_checksums(dir: &Path) -> Result<(), TrainError> {
    let list = dir.join(CHECKSUMS);
    let text = match std::fs::read_to_string(&list) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(TrainError::io(&list)(e)),
    };
    let corrupt = |path: PathBuf, reason: String| TrainError::Corrupt { path, reason };
    let mut listed = Vec::new();
    for line in text.lines() {
        let one_name = |n: &str| {
            let mut c = Path::new(n).components();
            matches!((c.next(), c.next()), (Some(std::path::Component::Normal(_)), None))
        };
        let Some((sum, name)) = line.split_once("  ").filter(|(_, n)| one_name(n)) else {
            return Err(corrupt(
                list,
                format!("malformed line {line:?}; expected `<sha256>  <file>`"),
            ));
        };
        listed.push(name);
        let path = dir.join(name);
        let got = growlm_data::sha256_file(&path).map_err(|e| {
            corrupt(
                path.clone(),
                format!(
                    "cannot read it ({e}); the checkpoint is incomplete: resume from another checkpoint or start again"
                ),
            )
        })?;
        if got != sum {
            return Err(corrupt(
                path,
                "its SHA-256 differs from the one written with the checkpoint: the file was changed or damaged \
                 after it was saved; restore it, or resume from another checkpoint"
                    .into(),
            ));
        }
    }
    if let Some(missing) = CHECKSUMMED.iter().find(|f| !listed.contains(f)) {
        return Err(corrupt(
            list,
            format!(
                "does not list {missing}: the checksum list is damaged; restore it, or resume from another checkpoint"
            ),
        ));
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

/// The resolved config a checkpoint was trained with (written with every checkpoint; a
/// checkpoint from before that falls back to the run directory's `config.toml`).
pub fn saved_config(ckpt: &Path) -> Result<RunConfig, TrainError> {
    let own = ckpt.join("config.toml");
    let path = if own.is_file() {
        own
    } else {
        ckpt.join("../../config.toml")
    };
    RunConfig::from_file(&path)
}

/// Loads the checkpoint `ckpt` to continue training with `cfg`, which must not change
/// what was trained (see [`check_resume`]). Its files are checked against their checksums
/// first.
pub fn load<B: AutodiffBackend>(cfg: &RunConfig, ckpt: &Path, device: &B::Device) -> Result<Run<B>, TrainError> {
    verify_checksums(ckpt)?;
    check_resume(&saved_config(ckpt)?, cfg)?;
    read(cfg, ckpt, device)
}

/// Starts the run `cfg` describes in `dir` from the checkpoint `ckpt` of another run (a
/// branch: docs/design.md §Evaluation protocol): `cfg` must agree with the checkpoint's config
/// on everything its steps depend on (see [`check_branch`]). The source run's
/// `metrics.jsonl` and `events.jsonl` up to the checkpoint's step are copied into `dir`, so
/// the branch's curve and costs include what the checkpoint trained. Since batches depend
/// only on the seed and the step, the branch then trains exactly as a straight run of
/// `cfg` would.
pub fn branch<B: AutodiffBackend>(
    cfg: &RunConfig,
    ckpt: &Path,
    dir: &Path,
    device: &B::Device,
) -> Result<Run<B>, TrainError> {
    if !ckpt.join("state.json").is_file() {
        return Err(TrainError::Corrupt {
            path: ckpt.to_path_buf(),
            reason: "not a checkpoint (no state.json); branch from a run's snapshots/step-N or checkpoints/step-N"
                .into(),
        });
    }
    verify_checksums(ckpt)?;
    let s = read_state(ckpt)?;
    check_branch(&saved_config(ckpt)?, cfg, s.step, s.stage, ckpt)?;
    let run = read::<B>(cfg, ckpt, device)?;
    std::fs::create_dir_all(dir).map_err(TrainError::io(dir))?;
    let source = ckpt.join("../..");
    for name in [RunDir::METRICS, RunDir::EVENTS] {
        let from = source.join(name);
        if from.is_file() {
            let to = dir.join(name);
            std::fs::copy(&from, &to).map_err(TrainError::io(&to))?;
        }
    }
    Ok(run)
}

/// Reads a checkpoint into a live run of `cfg` (whose stages give the model shapes).
fn read<B: AutodiffBackend>(cfg: &RunConfig, ckpt: &Path, device: &B::Device) -> Result<Run<B>, TrainError> {
    let s = read_state(ckpt)?;
    let state_path = ckpt.join("state.json");
    let stage_cfg = &cfg
        .stages
        .get(s.stage)
        .ok_or_else(|| TrainError::Corrupt {
            path: state_path.clone(),
            reason: format!("stage {} is not in the config", s.stage),
        })?
        .model;
    let rec = Rec::new();
    let model = load_model::<B>(stage_cfg, ckpt, device)?;
    let record = Recorder::<B>::load(&rec, ckpt.join("optim"), device).map_err(recorder_err(ckpt))?;
    let optim = adamw(cfg).init().load_record(record);
    let frozen = s.ramp.and_then(|r| r.mask_at(s.step)).map(|_| model.valid());
    Ok(Run {
        model,
        optim,
        s,
        frozen,
    })
}

/// The scalar state of a checkpoint.
pub(crate) fn read_state(ckpt: &Path) -> Result<RunState, TrainError> {
    let path = ckpt.join("state.json");
    let text = std::fs::read(&path).map_err(TrainError::io(&path))?;
    serde_json::from_slice(&text).map_err(|e| TrainError::Corrupt {
        path: path.clone(),
        reason: format!("not a growlm run state: {e}"),
    })
}

/// Reads the model of checkpoint `ckpt` into a model of `config`. Query/key/value biases
/// must be there exactly when the family has them (Qwen2). A checkpoint written before the
/// model became exact GPT-Neo is refused: its query, key and value projections
/// have biases, which loading would silently drop, and it was trained with scaled attention
/// scores and the exact GELU, so it would not compute what it did.
pub(crate) fn load_model<B: Backend>(
    config: &GptConfig,
    ckpt: &Path,
    device: &B::Device,
) -> Result<Gpt<B>, TrainError> {
    let record: <Gpt<B> as Module<B>>::Record =
        Recorder::<B>::load(&Rec::new(), ckpt.join("model"), device).map_err(recorder_err(ckpt))?;
    let qkv_biases = record
        .blocks
        .iter()
        .any(|b| b.attn.query.bias.is_some() || b.attn.key.bias.is_some() || b.attn.value.bias.is_some());
    let want = config.components().qkv_biases;
    if want && !qkv_biases && config.n_layers > 0 {
        return Err(TrainError::Corrupt {
            path: ckpt.to_path_buf(),
            reason: format!(
                "its query/key/value projections have no biases, but the config's {} model has them: \
                 the checkpoint belongs to another model",
                config.describe().name
            ),
        });
    }
    if qkv_biases && !want {
        return Err(TrainError::Corrupt {
            path: ckpt.to_path_buf(),
            reason: "written by a growlm from before the model became exact GPT-Neo (its query/key/value \
                     projections have biases); this version cannot continue or export it, retrain the run"
                .into(),
        });
    }
    let fresh = config.init::<B>(0, device)?;
    let want = growlm_ops::param_shapes(&fresh);
    let model = fresh.load_record(record);
    // burn loads a record of other shapes without a word; the first op would then panic.
    for ((path, need), (_, got)) in want.iter().zip(growlm_ops::param_shapes(&model)) {
        if *need != got {
            return Err(TrainError::Corrupt {
                path: ckpt.join("model.mpk"),
                reason: format!(
                    "parameter `{path}` has shape {got:?}, but the config's model needs {need:?}: \
                     the checkpoint belongs to another model"
                ),
            });
        }
    }
    Ok(model)
}
