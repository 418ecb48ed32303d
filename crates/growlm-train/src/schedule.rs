//! The learning-rate schedule (paper §4.3; docs/design.md §Training engine): warm-up, then
//! cosine, constant or warmup-stable-decay, with a re-warm-up after each growth. The LR of
//! a step is a pure function of the step, so a resumed or branched run sees the same LR.

use serde::{Deserialize, Serialize};

use crate::TrainConfig;

/// Learning-rate schedule shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Linear warmup, then cosine decay to `min_lr` at `max_steps`.
    #[default]
    Cosine,
    /// Linear warmup, then constant.
    Constant,
    /// Warmup-stable-decay: linear warmup, constant, then a linear decay to `min_lr` over
    /// the last `train.decay_frac` of `max_steps` — after the growth, for a policy that
    /// grows before the decay begins (see docs/when-to-grow.md).
    Wsd,
}

impl TrainConfig {
    /// Learning rate for the update of step `step` (0-based): a pure function of the step.
    pub fn lr_at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Cosine => {
                let span = self.max_steps.saturating_sub(self.warmup_steps).max(1) as f64;
                let p = ((step - self.warmup_steps) as f64 / span).min(1.0);
                self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + (std::f64::consts::PI * p).cos())
            }
            Schedule::Wsd => {
                let len = self.decay_len();
                let start = self.max_steps - len;
                if step < start {
                    return self.lr;
                }
                let p = ((step - start + 1) as f64 / len.max(1) as f64).min(1.0);
                self.lr + (self.min_lr - self.lr) * p
            }
        }
    }

    /// Steps of the `wsd` schedule's final decay: `decay_frac` of `max_steps`, rounded.
    pub fn decay_len(&self) -> u64 {
        ((self.decay_frac * self.max_steps as f64).round() as u64).min(self.max_steps)
    }

    /// Learning rate for the update of step `step` in a run whose last growth (if any)
    /// happened after step `grown_at`: the schedule's [`lr_at`](Self::lr_at), scaled by the
    /// re-warm-up (`rewarm_steps`) after a growth.
    pub fn lr_for(&self, step: u64, grown_at: Option<u64>) -> f64 {
        let lr = self.lr_at(step);
        match grown_at {
            Some(g) if self.rewarm_steps > 0 && step >= g && step - g < self.rewarm_steps => {
                lr * (step - g + 1) as f64 / self.rewarm_steps as f64
            }
            _ => lr,
        }
    }
}
