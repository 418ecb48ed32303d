//! `random`: freshly initialised new layers (the paper's "w/o RL" ablation, Table 3).

use growlm_model::GptConfig;

use crate::operator::{DepthOp, LayerOrigin};
use crate::OpsError;

/// New layers interleaved as `redundant` places them, freshly initialised: not
/// function-preserving.
pub struct Random;

impl DepthOp for Random {
    fn layers(&self, source: &GptConfig, target: &GptConfig) -> Result<Vec<LayerOrigin>, OpsError> {
        super::interleave(source, target, |_| LayerOrigin::Random)
    }
}
