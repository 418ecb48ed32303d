//! The MLP of a block (docs/design.md §Model; paper eq. 4): GPT-Neo's GELU MLP or Llama's
//! SwiGLU, whose gate and up projections run as one matmul on the fused path.

use burn::module::Module;
use burn::tensor::activation::silu;
use burn::tensor::{backend::Backend, DType, Tensor};

use crate::layers::{dense, gelu_new, Dense};

/// The MLP: GPT-Neo's `down(gelu_new(up(x)))`, or with a gate, Llama's SwiGLU
/// `down(silu(gate(x)) · up(x))`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// `[d_model, ffn_dim]`.
    pub up: Dense<B>,
    /// `[ffn_dim, d_model]`.
    pub down: Dense<B>,
    /// Llama's gate `[d_model, ffn_dim]`.
    pub gate: Option<Dense<B>>,
}

impl<B: Backend> Mlp<B> {
    /// The hidden units before the down projection. On burn-flex in f32, SwiGLU's gate and
    /// up projections are one matmul (their weights side by side, `[d_model, 2·ffn_dim]`)
    /// and `silu(g)·u` one fused kernel each way ([`growlm_fused::swiglu`]).
    pub(crate) fn hidden(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let Some(gate) = &self.gate else {
            return gelu_new(self.up.forward(x));
        };
        let unbiased = gate.bias.is_none() && self.up.bias.is_none();
        if unbiased && growlm_fused::serves::<B>() && x.dtype() == DType::F32 {
            let weight = Tensor::cat(vec![gate.weight.val(), self.up.weight.val()], 1);
            match growlm_fused::swiglu(dense(x, weight, None)) {
                Ok(y) => return y,
                Err(gu) => {
                    let f = gu.dims()[2] / 2;
                    return silu(gu.clone().narrow(2, 0, f)) * gu.narrow(2, f, f);
                }
            }
        }
        silu(gate.forward(x.clone())) * self.up.forward(x)
    }
}
