//! A trained model read off a checkpoint, for evaluation and export (docs/design.md §Runs):
//! the checkpoint's stage model, its run config and state, the tokenizer it was trained
//! with, and whether it can leave growlm (not mid-ramp: GPT-Neo has no width mask).

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use growlm_data::{Tokenizer, TokenizerKind};
use growlm_model::{Gpt, GptConfig};

use crate::checkpoint::{latest_checkpoint, load_model, read_state, saved_config, verify_checksums};
use crate::{RunConfig, RunState, TrainError};

/// A trained model read off a checkpoint, for evaluation and export.
pub struct Trained<B: Backend> {
    /// The model of the checkpoint's stage.
    pub model: Gpt<B>,
    /// Its model config.
    pub config: GptConfig,
    /// The run's resolved config.
    pub run: RunConfig,
    /// The checkpoint's scalars (step, stage, ramp).
    pub state: RunState,
    /// The checkpoint directory read.
    pub path: PathBuf,
}

/// Reads the model of a checkpoint: `path` is a checkpoint directory (`checkpoints/step-N`,
/// `snapshots/step-N`) or a run directory, whose latest checkpoint is read.
pub fn load_trained<B: Backend>(path: &Path, device: &B::Device) -> Result<Trained<B>, TrainError> {
    let ckpt = if path.join("state.json").is_file() {
        path.to_path_buf()
    } else {
        latest_checkpoint(path).ok_or_else(|| TrainError::Corrupt {
            path: path.to_path_buf(),
            reason: "neither a run directory with a checkpoint nor a checkpoint directory (no state.json)".into(),
        })?
    };
    verify_checksums(&ckpt)?;
    let run = saved_config(&ckpt)?;
    let state = read_state(&ckpt)?;
    let config = run
        .stages
        .get(state.stage)
        .ok_or_else(|| TrainError::Corrupt {
            path: ckpt.join("state.json"),
            reason: format!("stage {} is not in the config", state.stage),
        })?
        .model
        .clone();
    // The weights as read and as tensors, before either is allocated.
    growlm_model::memory::check_fits(
        &format!("loading {}", ckpt.display()),
        config.num_params() as f64 * 8.0,
        "nothing (the checkpoint's model is this large); free memory",
    )?;
    let model = load_model::<B>(&config, &ckpt, device)?;
    Ok(Trained {
        model,
        config,
        run,
        state,
        path: ckpt,
    })
}

impl<B: Backend> Trained<B> {
    /// Refuses a model whose new width is still masked or scaled by a growth ramp: without
    /// the mask it computes another function, and GPT-Neo has no mask.
    pub fn check_not_mid_ramp(&self) -> Result<(), TrainError> {
        let step = self.state.step;
        match &self.state.ramp {
            Some(r) if r.in_progress(step) => Err(TrainError::MidRamp {
                path: self.path.clone(),
                step,
                end: r.end_step(),
                max_steps: r.end_step().max(self.run.train.max_steps),
            }),
            _ => Ok(()),
        }
    }

    /// The width mask the model computes with at its step: `None` unless a growth ramp is
    /// still masking or scaling its new width.
    pub fn width_mask(&self, device: &B::Device) -> Result<Option<growlm_model::WidthMask<B>>, TrainError> {
        match &self.state.ramp {
            Some(r) => Ok(r.width_mask::<B>(&self.config, self.state.step, device)?),
            None => Ok(None),
        }
    }

    /// The tokenizer the model was trained with: a trained BPE, or one a `tokenizer.json`
    /// named, is read from the run directory's `tokenizer.json`.
    pub fn tokenizer(&self) -> Result<Tokenizer, TrainError> {
        let kind = self.run.data.tokenizer.clone();
        if let TokenizerKind::Bpe { .. } | TokenizerKind::File(_) = kind {
            let path = self.path.join("../../tokenizer.json");
            let json = std::fs::read_to_string(&path).map_err(|e| TrainError::Corrupt {
                path: path.clone(),
                reason: format!("the run's trained tokenizer is missing: {e}"),
            })?;
            return Ok(Tokenizer::from_json(kind, &json)?);
        }
        Ok(Tokenizer::named(kind)?)
    }
}
