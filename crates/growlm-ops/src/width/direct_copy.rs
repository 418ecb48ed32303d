//! `direct-copy`: the paper's Direct Copy baseline (§4.1, Table 2).

use crate::operator::{AxisMap, WidthOp};
use crate::OpsError;

/// The source fills the leading block, new units are freshly initialised and on at once:
/// not function-preserving.
pub struct DirectCopy;

impl WidthOp for DirectCopy {
    fn map(&self, _what: &'static str, source: usize, target: usize) -> Result<AxisMap, OpsError> {
        Ok(AxisMap::leading(source, target))
    }
}
