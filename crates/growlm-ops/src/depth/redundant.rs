//! `redundant`: redundant layers (paper §3.4; ours).

use growlm_model::GptConfig;

use crate::operator::{DepthOp, LayerOrigin};
use crate::OpsError;

/// New layers interleaved evenly, each copying the attention and MLP weights of the layer
/// before it, with LayerNorm weights and every bias zero: an identity at `Gb` that learns
/// to switch itself on.
pub struct Redundant;

impl DepthOp for Redundant {
    fn layers(&self, source: &GptConfig, target: &GptConfig) -> Result<Vec<LayerOrigin>, OpsError> {
        super::interleave(source, target, LayerOrigin::Redundant)
    }
}
