//! The width ramp after a growth (paper §3.3, eq. 5–7). A [`Ramp`] holds the numbers —
//! where the width starts and ends, when, over how many steps — and the width operator
//! that started it; the operator says what the ramp does at each step ([`RampState`],
//! `WidthOp::ramp_at`): PDG's 0/1 mask whose hidden entries do not train (the default),
//! MSG's fractional masks (`width/msg.rs`), or an operator's own. The engine asks the ramp
//! and never names an operator.

use burn::tensor::backend::Backend;
use growlm_model::{ActiveWidth, GptConfig, ModelError, WidthMask};
use serde::{Deserialize, Serialize};

use crate::{width, OpsError, Width};

/// What a ramp does at one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RampState {
    /// Nothing masked: the grown model as it is.
    Done,
    /// The leading `active` units on, the rest masked off; with `hold`, the masked entries
    /// do not train (they are held at their values at growth, paper §3.3).
    Masked {
        /// The active width.
        active: ActiveWidth,
        /// Whether the masked entries are held.
        hold: bool,
    },
    /// Everything on, the new part of each width axis scaled by `scale` (`[hidden, attn,
    /// ffn]`) and each new block's residual branches by `gate` (MSG).
    Scaled {
        /// The new units' factors.
        scale: [f32; 3],
        /// The new blocks' gate.
        gate: f32,
    },
}

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
#[serde_with::skip_serializing_none]
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
    /// MSG's new blocks (`None`: no block is gated; PDG).
    pub msg: Option<MsgRamp>,
    /// The width operator whose schedule this is. Absent in checkpoints written before
    /// it was recorded: MSG's when `msg` is set, else PDG's.
    pub op: Option<Width>,
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
            op: None,
        }
    }

    /// The operator whose schedule this is.
    pub fn schedule(&self) -> Width {
        match self.op {
            Some(w) => w,
            None => Width(width::find(if self.msg.is_some() { "msg" } else { "pdg" }).unwrap_or(&width::ALL[0])),
        }
    }

    /// What the ramp does for the training of `step`.
    pub fn state_at(&self, step: u64) -> RampState {
        self.schedule().ramp_at(self, step)
    }

    /// Whether the ramp still masks or scales anything at `step` (a model read then would
    /// compute another function without its mask).
    pub fn in_progress(&self, step: u64) -> bool {
        self.state_at(step) != RampState::Done
    }

    /// Refuses a growth at `step` that the running ramp's operator cannot compose with.
    pub fn check_growth_at(&self, step: u64) -> Result<(), OpsError> {
        let w = self.schedule();
        if self.in_progress(step) && !w.composes() {
            return Err(OpsError::Incompatible(format!(
                "a growth at step {step} would start while the {} ramp of the previous growth runs until \
                 step {}: its masks do not compose with another growth's; grow at step {} or later, or \
                 use width `pdg` (whose ramps do)",
                w.name(),
                self.end_step(),
                self.end_step()
            )));
        }
        Ok(())
    }

    /// `Ge`, the latest step at which a mask can still be needed.
    pub fn end_step(&self) -> u64 {
        self.schedule().ramp_end(self)
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

    /// The entries held at `step`: the active width when the masked entries do not train
    /// (PDG's), else `None` (nothing masked, or MSG's scaled entries, which train).
    pub fn mask_at(&self, step: u64) -> Option<ActiveWidth> {
        match self.state_at(step) {
            RampState::Masked { active, hold: true } => Some(active),
            _ => None,
        }
    }

    /// The mask of the training of `step` on a model of `config` (the target), or `None`
    /// when nothing is masked.
    pub fn width_mask<B: Backend>(
        &self,
        config: &GptConfig,
        step: u64,
        device: &B::Device,
    ) -> Result<Option<WidthMask<B>>, ModelError> {
        match self.state_at(step) {
            RampState::Done => Ok(None),
            RampState::Masked { active, .. } => WidthMask::new(config, active, device).map(Some),
            RampState::Scaled { scale, gate } => {
                let new_layers = self.msg.map_or(0, |m| m.new_layers);
                let gates = if new_layers == 0 {
                    Vec::new()
                } else {
                    (0..config.n_layers)
                        .map(|i| if new_layers >> i & 1 == 1 { gate } else { 1.0 })
                        .collect()
                };
                WidthMask::scaled(config, self.start, scale, gates, device).map(Some)
            }
        }
    }
}
