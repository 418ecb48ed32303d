//! `pdg`: progressive dimensionality growth (paper §3.3, eq. 4–7; ours).

use crate::operator::WidthOp;

/// The source fills the leading block of every tensor, new units are freshly initialised
/// and switched on by the eq. 5–7 mask over `ramp_steps`: strictly function-preserving.
pub struct Pdg;

impl WidthOp for Pdg {
    fn ramps(&self) -> bool {
        true
    }
}
