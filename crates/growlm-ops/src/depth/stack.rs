//! `stack`: stacking (StackBERT, Gong et al. 2019; G_stack, Du et al. 2024).

use growlm_model::GptConfig;

use crate::operator::{DepthOp, LayerOrigin};
use crate::OpsError;

/// The source stack repeated on top of itself and cut to the target depth: target layer
/// `j` copies source layer `j mod ls`. Not function-preserving.
pub struct Stack;

impl DepthOp for Stack {
    fn layers(&self, source: &GptConfig, target: &GptConfig) -> Result<Vec<LayerOrigin>, OpsError> {
        Ok((0..target.n_layers)
            .map(|j| LayerOrigin::Copy(j % source.n_layers))
            .collect())
    }
}
