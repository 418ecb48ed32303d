//! `msg`: Masked Structural Growth (Yao et al., 2023), the paper's MSG baseline (§4.1,
//! Table 2).

use crate::operator::WidthOp;
use crate::{Ramp, RampState};

/// The source fills the leading block, new units are freshly initialised, on and trained
/// from the growth, and scaled by MSG's masks rising from 0 to 1 ([`MsgRamp`]: FFN units,
/// then hidden dims, then attention dims, `ramp_steps` each): function-preserving at the
/// growth whatever the new values are.
///
/// [`MsgRamp`]: crate::MsgRamp
pub struct Msg;

impl WidthOp for Msg {
    fn ramps(&self) -> bool {
        true
    }
    fn scales_softly(&self) -> bool {
        true
    }
    /// MSG's factors: each rises from 0 to 1 over `ramp_steps`, one phase after another
    /// (FFN, hidden, attention when the width grows; one phase when only depth does); the
    /// new blocks' gate rises in the first phase.
    fn ramp_at(&self, ramp: &Ramp, step: u64) -> RampState {
        let elapsed = step.saturating_sub(ramp.begin);
        if ramp.steps == 0 || elapsed >= ramp.steps * phases(ramp) {
            return RampState::Done;
        }
        let phase = |p: u64| ((elapsed as f64 - (p * ramp.steps) as f64) / ramp.steps as f64).clamp(0.0, 1.0) as f32;
        if phases(ramp) == 1 {
            return RampState::Scaled {
                scale: [1.0; 3],
                gate: phase(0),
            };
        }
        RampState::Scaled {
            scale: [phase(1), phase(2), phase(0)],
            gate: phase(0),
        }
    }
    fn ramp_end(&self, ramp: &Ramp) -> u64 {
        ramp.begin + ramp.steps * phases(ramp)
    }
    /// MSG's fractional masks do not compose with another growth's.
    fn composes(&self) -> bool {
        false
    }
}

/// MSG's phases: three when the width grows (FFN, hidden, attention), else one.
fn phases(ramp: &Ramp) -> u64 {
    if ramp.start == ramp.end {
        1
    } else {
        3
    }
}
