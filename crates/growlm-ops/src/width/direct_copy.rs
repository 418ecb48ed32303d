//! `direct-copy`: the paper's Direct Copy baseline (§4.1, Table 2).

use crate::operator::WidthOp;

/// The source fills the leading block, new units are freshly initialised and on at once:
/// not function-preserving.
pub struct DirectCopy;

impl WidthOp for DirectCopy {
}
