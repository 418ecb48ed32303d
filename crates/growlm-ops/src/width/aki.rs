//! `aki`: advanced knowledge initialisation (bert2BERT, Chen et al. 2022).

use crate::operator::{AxisMap, WidthOp};
use crate::OpsError;

/// Like `fpi` (new unit `j` replicates unit `j mod n`, readers divided by the count), but a
/// new unit of layer `i` takes its values from layer `i + 1` (the top layer from itself):
/// knowledge of the layer above breaks the symmetry of plain replication. Not
/// function-preserving.
pub struct Aki;

impl WidthOp for Aki {
    fn map(&self, _what: &'static str, source: usize, target: usize) -> Result<AxisMap, OpsError> {
        Ok(AxisMap::cyclic(source, target))
    }
    fn reads_layer_above(&self) -> bool {
        true
    }
}
