//! `msg`: Masked Structural Growth (Yao et al., 2023), the paper's MSG baseline (§4.1,
//! Table 2).

use crate::operator::{AxisMap, WidthOp};
use crate::OpsError;

/// The source fills the leading block, new units are freshly initialised, on and trained
/// from the growth, and scaled by MSG's masks rising from 0 to 1 ([`MsgRamp`]: FFN units,
/// then hidden dims, then attention dims, `ramp_steps` each): function-preserving at the
/// growth whatever the new values are.
///
/// [`MsgRamp`]: crate::MsgRamp
pub struct Msg;

impl WidthOp for Msg {
    fn name(&self) -> &'static str {
        "msg"
    }
    fn reference(&self) -> &'static str {
        "copy into the leading block, fresh rest scaled by masks rising 0 → 1 (Masked Structural Growth, Yao et al. 2023)"
    }
    fn map(&self, _what: &'static str, source: usize, target: usize) -> Result<AxisMap, OpsError> {
        Ok(AxisMap::leading(source, target))
    }
    fn ramps(&self) -> bool {
        true
    }
    fn scales_softly(&self) -> bool {
        true
    }
}
