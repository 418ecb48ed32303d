//! `pdg`: progressive dimensionality growth (paper §3.3, eq. 4–7; ours).

use crate::operator::{AxisMap, WidthOp};
use crate::OpsError;

/// The source fills the leading block of every tensor, new units are freshly initialised
/// and switched on by the eq. 5–7 mask over `ramp_steps`: strictly function-preserving.
pub struct Pdg;

impl WidthOp for Pdg {
    fn map(&self, _what: &'static str, source: usize, target: usize) -> Result<AxisMap, OpsError> {
        Ok(AxisMap::leading(source, target))
    }
    fn ramps(&self) -> bool {
        true
    }
}
