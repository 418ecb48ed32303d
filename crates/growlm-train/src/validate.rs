//! Validation of a run config: every value checked, errors naming the key and saying what
//! is allowed (docs/design.md §Runs).

use crate::{RunConfig, Schedule, TrainError};

fn invalid(key: &str, reason: impl Into<String>) -> TrainError {
    TrainError::config(key, reason)
}

impl RunConfig {
    /// Checks every value; errors name the key and say what is allowed.
    pub fn validate(&self) -> Result<(), TrainError> {
        let tok = &self.data.tokenizer;
        tok.validate().map_err(|r| invalid("data.tokenizer", r))?;
        // Once: a `tokenizer.json` is read for it.
        let vocab = tok.vocab_size();
        for (i, s) in self.stages.iter().enumerate() {
            if s.model.vocab_size != vocab {
                return Err(invalid(
                    &format!("stages.{i}.model.vocab_size"),
                    format!(
                        "is {} but data.tokenizer = \"{}\" has {} ids; remove the key (it follows the tokenizer) or set it to {}",
                        s.model.vocab_size,
                        tok.name(),
                        vocab,
                        vocab
                    ),
                ));
            }
        }
        let f = self.data.valid_fraction;
        if !(f > 0.0 && f < 1.0) {
            return Err(invalid(
                "data.valid_fraction",
                format!("is {f}; must be above 0 and below 1 (0.1 holds out a tenth of the documents)"),
            ));
        }
        if self.data.text_key.is_empty() {
            return Err(invalid(
                "data.text_key",
                "is empty; name the JSON key or Parquet column that holds the text",
            ));
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

impl RunConfig {
    /// The host memory each part of the run needs at its peak (bytes), as `cargo xtask
    /// info` estimates it: each stage training (weights, gradients, AdamW moments and one
    /// step's activations), and each growth (the old and the new model's state at once).
    /// Each comes with its name and the keys that lower it.
    pub fn memory_needs(&self) -> Vec<MemoryNeed> {
        let (b, t) = (self.train.batch_size, self.train.seq_len);
        let mut needs = Vec::new();
        for (i, s) in self.stages.iter().enumerate() {
            let m = &s.model;
            let name = s
                .name
                .as_ref()
                .map_or(format!("stages.{i}"), |n| format!("stages.{i} (`{n}`)"));
            let lower =
                format!("stages.{i}.model.d_model or stages.{i}.model.n_layers, or train.batch_size or train.seq_len");
            needs.push(MemoryNeed {
                what: name.clone(),
                bytes: m.train_state_bytes() + m.activation_bytes(b, t),
                lower: lower.clone(),
            });
            if i > 0 {
                let before = &self.stages[i - 1].model;
                needs.push(MemoryNeed {
                    what: format!("the growth into {name}"),
                    bytes: before.train_state_bytes() + m.train_state_bytes(),
                    lower,
                });
            }
        }
        needs
    }

    /// Refuses a run whose largest need ([`memory_needs`](Self::memory_needs)) does not fit
    /// in `available` (see [`crate::memory_for`]; none: nothing to check against).
    pub fn check_memory(&self, available: Option<growlm_model::memory::Available>) -> Result<(), TrainError> {
        if let Some(n) = self
            .memory_needs()
            .into_iter()
            .max_by(|a, b| a.bytes.total_cmp(&b.bytes))
        {
            growlm_model::memory::check_fits_in(available, &n.what, n.bytes, &n.lower)?;
        }
        Ok(())
    }
}

/// What a part of a run needs in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryNeed {
    /// The part: `stages.1 (\`target\`)` or `the growth into stages.1 (\`target\`)`.
    pub what: String,
    /// Bytes.
    pub bytes: f64,
    /// The keys that lower it.
    pub lower: String,
}
