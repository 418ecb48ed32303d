//! The progressive-dimensionality-growth ramp (paper §3.3, eq. 5–6).

use growlm_model::{ActiveWidth, GptConfig};
use serde::{Deserialize, Serialize};

/// Active width of a grown model over `[Gb, Ge]`.
///
/// Hidden dims rise from `ds` to `dt` at `r = ceil((dt − ds)/(Ge − Gb))` per step (eq. 5–6):
/// at step `N` the leading `min(dt, ds + r·(N − Gb))` are active. Heads and FFN units
/// activate in step with them, each at its own rate over the same interval. From the step
/// where everything is active on, no mask is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ramp {
    /// Active width at `Gb` (the small model's).
    pub start: ActiveWidth,
    /// The target's full width.
    pub end: ActiveWidth,
    /// `Gb`: the step whose training first uses the grown model.
    pub begin: u64,
    /// `Ge − Gb`; 0 switches everything on at once (the paper's "w/o PDG").
    pub steps: u64,
}

fn ramp_count(start: usize, end: usize, steps: u64, elapsed: u64) -> usize {
    if steps == 0 || end <= start {
        return end;
    }
    let r = (end - start).div_ceil(steps as usize);
    end.min(start + r.saturating_mul(elapsed as usize))
}

impl Ramp {
    /// A ramp from `small`'s width to `target`'s, starting at step `begin`.
    pub fn new(small: &GptConfig, target: &GptConfig, begin: u64, steps: u64) -> Self {
        Self {
            start: ActiveWidth {
                hidden: small.d_model,
                heads: small.n_heads,
                ffn: small.ffn_dim(),
            },
            end: ActiveWidth::full(target),
            begin,
            steps,
        }
    }

    /// `Ge`.
    pub fn end_step(&self) -> u64 {
        self.begin + self.steps
    }

    /// Active width for the training of step `step` (eq. 6).
    pub fn active_at(&self, step: u64) -> ActiveWidth {
        let elapsed = step.saturating_sub(self.begin);
        ActiveWidth {
            hidden: ramp_count(self.start.hidden, self.end.hidden, self.steps, elapsed),
            heads: ramp_count(self.start.heads, self.end.heads, self.steps, elapsed),
            ffn: ramp_count(self.start.ffn, self.end.ffn, self.steps, elapsed),
        }
    }

    /// The mask to use at `step`: `None` once everything is active.
    pub fn mask_at(&self, step: u64) -> Option<ActiveWidth> {
        let a = self.active_at(step);
        (a != self.end).then_some(a)
    }
}
