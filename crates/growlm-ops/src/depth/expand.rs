//! `expand`: block expansion (LLaMA-Pro, Wu et al. 2024), beside the paper's redundant
//! layers (§3.4).

use growlm_model::GptConfig;

use crate::operator::{DepthOp, LayerOrigin};
use crate::OpsError;

/// New layers interleaved evenly, each a whole copy of the layer before it (norms
/// included) with its output projections (`attn.out`, `mlp.down`) zero: an identity at
/// `Gb`. Unlike `redundant`, whose zeroed norms leave the new block's input zero (so only
/// the norm scales get a gradient at the first step), the copied norms keep the block's
/// input alive, and the zeroed output projections get a gradient at once.
pub struct Expand;

impl DepthOp for Expand {
    fn layers(&self, source: &GptConfig, target: &GptConfig) -> Result<Vec<LayerOrigin>, OpsError> {
        super::interleave(source, target, LayerOrigin::Expanded)
    }
}
