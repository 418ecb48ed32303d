//! `identity`: identity layers (Shen et al. 2022, staged training).

use growlm_model::GptConfig;

use crate::operator::{DepthOp, LayerOrigin};
use crate::OpsError;

/// New layers interleaved as `redundant` places them, with fresh weights and LayerNorm
/// weights and every bias zero: an identity at `Gb`.
pub struct Identity;

impl DepthOp for Identity {
    fn layers(&self, source: &GptConfig, target: &GptConfig) -> Result<Vec<LayerOrigin>, OpsError> {
        super::interleave(source, target, |_| LayerOrigin::Identity)
    }
}
