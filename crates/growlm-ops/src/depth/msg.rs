//! `msg`: new layers of Masked Structural Growth (Yao et al., 2023), the paper's MSG
//! baseline (§4.1, Table 2).

use growlm_model::GptConfig;

use crate::operator::{DepthOp, LayerOrigin};
use crate::OpsError;

/// New layers interleaved as `redundant` places them, freshly initialised, with their
/// residual branches scaled by MSG's mask rising from 0 to 1 over `ramp_steps` (a new block
/// computes `x + m·f(x)`): function-preserving at the growth. Needs width `msg`.
pub struct Msg;

impl DepthOp for Msg {
    fn layers(&self, source: &GptConfig, target: &GptConfig) -> Result<Vec<LayerOrigin>, OpsError> {
        super::interleave(source, target, |_| LayerOrigin::Random)
    }
    fn gates_new_layers(&self) -> bool {
        true
    }
}
