//! Validation of a run config: every value checked, errors naming the key and saying what
//! is allowed (DESIGN.md §Runs).

use crate::{RunConfig, Schedule, TrainError};

fn invalid(key: &str, reason: impl Into<String>) -> TrainError {
    TrainError::config(key, reason)
}

impl RunConfig {
    /// Checks every value; errors name the key and say what is allowed.
    pub fn validate(&self) -> Result<(), TrainError> {
        let tok = self.data.tokenizer;
        tok.validate().map_err(|r| invalid("data.tokenizer", r))?;
        for (i, s) in self.stages.iter().enumerate() {
            if s.model.vocab_size != tok.vocab_size() {
                return Err(invalid(
                    &format!("stages.{i}.model.vocab_size"),
                    format!(
                        "is {} but data.tokenizer = \"{}\" has {} ids; remove the key (it follows the tokenizer) or set it to {}",
                        s.model.vocab_size,
                        tok.name(),
                        tok.vocab_size(),
                        tok.vocab_size()
                    ),
                ));
            }
        }
        let t = &self.train;
        if t.batch_size == 0 {
            return Err(invalid("train.batch_size", "must be at least 1"));
        }
        if t.seq_len == 0 {
            return Err(invalid("train.seq_len", "must be at least 1"));
        }
        if t.max_steps == 0 {
            return Err(invalid("train.max_steps", "must be at least 1"));
        }
        if !(t.lr > 0.0 && t.lr.is_finite()) {
            return Err(invalid("train.lr", format!("must be positive, got {}", t.lr)));
        }
        if !(t.min_lr >= 0.0 && t.min_lr <= t.lr) {
            return Err(invalid(
                "train.min_lr",
                format!("must be between 0 and train.lr = {}, got {}", t.lr, t.min_lr),
            ));
        }
        if !(t.decay_frac > 0.0 && t.decay_frac <= 1.0) {
            return Err(invalid(
                "train.decay_frac",
                format!("must be in (0, 1], got {}", t.decay_frac),
            ));
        }
        if t.schedule == Schedule::Wsd && t.warmup_steps + t.decay_len() > t.max_steps {
            return Err(invalid(
                "train.decay_frac",
                format!(
                    "the decay ({} steps) and the warm-up ({} steps) overlap within train.max_steps = {}; lower one of them",
                    t.decay_len(),
                    t.warmup_steps,
                    t.max_steps
                ),
            ));
        }
        if t.warmup_steps > t.max_steps {
            return Err(invalid(
                "train.warmup_steps",
                format!("{} exceeds train.max_steps = {}", t.warmup_steps, t.max_steps),
            ));
        }
        if !(t.weight_decay >= 0.0 && t.weight_decay < 1.0) {
            return Err(invalid(
                "train.weight_decay",
                format!("must be in [0, 1), got {}", t.weight_decay),
            ));
        }
        for (key, b) in [("train.beta1", t.beta1), ("train.beta2", t.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(invalid(key, format!("must be in [0, 1), got {b}")));
            }
        }
        if !(t.grad_clip >= 0.0 && t.grad_clip.is_finite()) {
            return Err(invalid(
                "train.grad_clip",
                format!("must be ≥ 0 (0 disables clipping), got {}", t.grad_clip),
            ));
        }
        if t.eval_every == 0 {
            return Err(invalid("train.eval_every", "must be at least 1"));
        }
        if t.checkpoint_every == 0 {
            return Err(invalid("train.checkpoint_every", "must be at least 1"));
        }
        if self.data.valid_batches == 0 {
            return Err(invalid("data.valid_batches", "must be at least 1"));
        }
        if self.stages.is_empty() {
            return Err(invalid("stages", "list at least one stage with a [stages.model] table"));
        }
        for (i, s) in self.stages.iter().enumerate() {
            let prefix = format!("stages.{i}.model");
            s.model.validate(&prefix).map_err(TrainError::Model)?;
            if s.model.context_len < t.seq_len {
                return Err(invalid(
                    &format!("{prefix}.context_len"),
                    format!("{} is shorter than train.seq_len = {}", s.model.context_len, t.seq_len),
                ));
            }
            if i > 0 {
                let op = s.growth.clone().unwrap_or_default();
                growlm_ops::check_growth(&self.stages[i - 1].model, &s.model, &op)
                    .map_err(|e| invalid(&format!("stages.{i}"), e.to_string()))?;
            }
        }
        self.policy_name()?;
        Ok(())
    }
}
