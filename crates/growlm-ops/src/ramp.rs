//! The progressive-dimensionality-growth ramp (paper §3.3, eq. 5–7), and MSG's fractional
//! masks (Yao et al., 2023; the paper's MSG baseline, §4.1).

use burn::tensor::backend::Backend;
use growlm_model::{ActiveWidth, GptConfig, ModelError, WidthMask};
use serde::{Deserialize, Serialize};

/// MSG's schedule (Masked Structural Growth, Yao et al., 2023): instead of PDG's dim-by-dim
/// 0/1 mask, all new width is on from the growth but scaled by a factor that rises linearly
/// from 0 to 1 over `R = ramp_steps` steps per phase — the new FFN units in the first
/// phase, the new hidden dims in the second, the new attention dims in the third — and
/// each new block's residual branches are scaled the same way during the first phase
/// (`x + m·f(x)`). Every factor is 0 at `Gb`, so the growth preserves the function; new
/// entries are trained from the start (their gradients are scaled by the factors). With no
/// new width there is one phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgRamp {
    /// Bit `i` set: target block `i` is new and its residual branches are scaled.
    pub new_layers: u64,
}

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
    /// `Ge − Gb` (for MSG: the steps of one phase); 0 switches everything on at once (the
    /// paper's "w/o PDG").
    pub steps: u64,
    /// MSG's fractional masks instead of PDG's (`None`: PDG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg: Option<MsgRamp>,
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
            msg: None,
        }
    }

    /// MSG's phases: three when the width grows (FFN, hidden, attention), else one.
    fn phases(&self) -> u64 {
        if self.start == self.end {
            1
        } else {
            3
        }
    }

    /// `Ge`, the latest step at which a mask can still be needed.
    pub fn end_step(&self) -> u64 {
        match self.msg {
            Some(_) => self.begin + self.steps * self.phases(),
            None => self.begin + self.steps,
        }
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

    /// PDG's mask at `step`: `None` once everything is active, and always for MSG (whose
    /// masked entries train, so nothing is held).
    pub fn mask_at(&self, step: u64) -> Option<ActiveWidth> {
        let a = self.active_at(step);
        (a != self.end && self.msg.is_none()).then_some(a)
    }

    /// MSG's factors at `step`: `[hidden, attn, ffn]` and the new blocks' gate; `None`
    /// for PDG and once every factor is 1.
    pub fn msg_scales_at(&self, step: u64) -> Option<([f32; 3], f32)> {
        self.msg?;
        let elapsed = step.saturating_sub(self.begin);
        if self.steps == 0 || elapsed >= self.steps * self.phases() {
            return None;
        }
        let phase = |p: u64| ((elapsed as f64 - (p * self.steps) as f64) / self.steps as f64).clamp(0.0, 1.0) as f32;
        if self.phases() == 1 {
            return Some(([1.0; 3], phase(0)));
        }
        Some(([phase(1), phase(2), phase(0)], phase(0)))
    }

    /// The mask of the training of `step` on a model of `config` (the target), or `None`
    /// when nothing is masked.
    pub fn width_mask<B: Backend>(
        &self,
        config: &GptConfig,
        step: u64,
        device: &B::Device,
    ) -> Result<Option<WidthMask<B>>, ModelError> {
        if let Some(a) = self.mask_at(step) {
            return WidthMask::new(config, a, device).map(Some);
        }
        let (Some(msg), Some((scale, gate))) = (self.msg, self.msg_scales_at(step)) else {
            return Ok(None);
        };
        let gates = if msg.new_layers == 0 {
            Vec::new()
        } else {
            (0..config.n_layers)
                .map(|i| if msg.new_layers >> i & 1 == 1 { gate } else { 1.0 })
                .collect()
        };
        WidthMask::scaled(config, self.start, scale, gates, device).map(Some)
    }
}
