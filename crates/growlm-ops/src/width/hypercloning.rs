//! `hypercloning`: HyperCloning (Samragh et al. 2024).

use crate::operator::{AxisMap, WidthOp};
use crate::OpsError;

/// Every unit cloned the same integer number of times (hidden dims, heads and FFN units
/// alike), readers divided by that number: function-preserving, LayerNorm included. Other
/// factors are refused.
pub struct HyperCloning;

impl WidthOp for HyperCloning {
    fn map(&self, what: &'static str, source: usize, target: usize) -> Result<AxisMap, OpsError> {
        if !target.is_multiple_of(source) {
            return Err(OpsError::Incompatible(format!(
                "hypercloning needs integer multiples, but {what} grows {source} → {target}; use widths that are multiples (or `fpi`, `pdg`)"
            )));
        }
        Ok(AxisMap::cyclic(source, target))
    }
}
