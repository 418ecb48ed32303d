//! The progressive-dimensionality-growth ramp (paper §3.3, eq. 5–7).

use growlm_model::{ActiveWidth, GptConfig};
use serde::{Deserialize, Serialize};

/// Active width of a grown model over `[Gb, Ge]`.
///
/// Hidden dims rise from `ds` to `dt` at `r = ceil((dt − ds)/(Ge − Gb))` per step (eq. 5–6):
/// at step `N` the leading `min(dt, ds + r·(N − Gb))` are active. The query/key/value dims
/// (eq. 7: a new head turns on dim by dim) and the FFN units follow in step: at every step
/// the same fraction of their new part is active as of the hidden dims' (rounded down).
/// When the hidden width does not grow, that fraction is `(N − Gb)/(Ge − Gb)`. From the
/// step where everything is active on, no mask is needed.
///
/// A ramp may start from a partly active source (a growth during an earlier ramp): its
/// `start` is the width active when it grew, so the function is preserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ramp {
    /// Active width at `Gb` (the source's, as it stood).
    pub start: ActiveWidth,
    /// The target's full width.
    pub end: ActiveWidth,
    /// `Gb`: the step whose training first uses the grown model.
    pub begin: u64,
    /// `Ge − Gb`; 0 switches everything on at once (the paper's "w/o PDG").
    pub steps: u64,
}

impl Ramp {
    /// A ramp from `small`'s full width to `target`'s, starting at step `begin`.
    pub fn new(small: &GptConfig, target: &GptConfig, begin: u64, steps: u64) -> Self {
        Self::from_active(ActiveWidth::full(small), target, begin, steps)
    }

    /// A ramp from the active width `start` to `target`'s, starting at step `begin`.
    pub fn from_active(start: ActiveWidth, target: &GptConfig, begin: u64, steps: u64) -> Self {
        Self {
            start,
            end: ActiveWidth::full(target),
            begin,
            steps,
        }
    }

    /// `Ge`, the latest step at which a mask can still be needed.
    pub fn end_step(&self) -> u64 {
        self.begin + self.steps
    }

    /// Active width for the training of step `step` (eq. 6).
    pub fn active_at(&self, step: u64) -> ActiveWidth {
        let (s, e) = (self.start, self.end);
        let elapsed = step.saturating_sub(self.begin) as usize;
        let steps = self.steps as usize;
        if steps == 0 || elapsed >= steps {
            return e;
        }
        let hidden = if e.hidden > s.hidden {
            let r = (e.hidden - s.hidden).div_ceil(steps);
            e.hidden.min(s.hidden + r.saturating_mul(elapsed))
        } else {
            e.hidden
        };
        // The fraction of the new width that is on, as num/den.
        let (num, den) = if e.hidden > s.hidden {
            (hidden - s.hidden, e.hidden - s.hidden)
        } else {
            (elapsed, steps)
        };
        let follow = |a: usize, b: usize| a + (b - a) * num / den;
        ActiveWidth {
            hidden,
            attn: follow(s.attn, e.attn),
            ffn: follow(s.ffn, e.ffn),
        }
    }

    /// The mask to use at `step`: `None` once everything is active.
    pub fn mask_at(&self, step: u64) -> Option<ActiveWidth> {
        let a = self.active_at(step);
        (a != self.end).then_some(a)
    }
}
