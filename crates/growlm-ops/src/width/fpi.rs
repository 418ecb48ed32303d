//! `fpi`: function-preserving initialisation (Net2Net, Chen et al. 2016; bert2BERT's FPI,
//! Chen et al. 2022).

use crate::operator::{AxisMap, WidthOp};
use crate::OpsError;

/// New unit `j` copies unit `j mod n` of the source; every weight that reads a replicated
/// unit is divided by its replication count, so the sums it feeds are unchanged. For
/// attention the unit is a whole head. Exactly function-preserving when the hidden width
/// grows by an integer factor (uniform replication keeps LayerNorm's mean and variance);
/// with an uneven hidden factor LayerNorm's statistics change and it is not. Head and FFN
/// factors may be uneven.
pub struct Fpi;

impl WidthOp for Fpi {
    fn map(&self, _what: &'static str, source: usize, target: usize) -> Result<AxisMap, OpsError> {
        Ok(AxisMap::cyclic(source, target))
    }
}
