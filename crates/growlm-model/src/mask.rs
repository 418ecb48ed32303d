//! Width masks (paper §3.3, eq. 6–7): which hidden dims, heads and FFN units of a wide
//! model are active.
//!
//! A wide model whose leading blocks hold a small model's parameters and whose extra
//! dims, heads and units are masked computes exactly the small model's function.

use burn::tensor::{backend::Backend, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::{GptConfig, ModelError};

/// How many hidden dims, heads and FFN units are active; the leading ones are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveWidth {
    /// Active hidden (residual-stream) dims.
    pub hidden: usize,
    /// Active attention heads.
    pub heads: usize,
    /// Active MLP hidden units.
    pub ffn: usize,
}

impl ActiveWidth {
    /// Everything of `config` active.
    pub fn full(config: &GptConfig) -> Self {
        Self {
            hidden: config.d_model,
            heads: config.n_heads,
            ffn: config.ffn_dim(),
        }
    }

    /// Whether this leaves nothing of `config` masked.
    pub fn is_full(&self, config: &GptConfig) -> bool {
        *self == Self::full(config)
    }
}

/// A 0/1 mask over the hidden dims, heads and FFN units of a model, as tensors ready to
/// multiply activations.
#[derive(Debug, Clone)]
pub struct WidthMask<B: Backend> {
    active: ActiveWidth,
    /// `[1, 1, d_model]`: the global mask `C` of eq. 6.
    pub(crate) hidden: Tensor<B, 3>,
    /// `[1, n_heads, 1, 1]`.
    pub(crate) heads: Tensor<B, 4>,
    /// `[1, 1, ffn_dim]`.
    pub(crate) ffn: Tensor<B, 3>,
}

fn leading_ones(n: usize, active: usize) -> Vec<f32> {
    (0..n).map(|i| if i < active { 1.0 } else { 0.0 }).collect()
}

impl<B: Backend> WidthMask<B> {
    /// Builds the mask for `config` with the leading `active` dims, heads and units on.
    pub fn new(config: &GptConfig, active: ActiveWidth, device: &B::Device) -> Result<Self, ModelError> {
        let (d, h, f) = (config.d_model, config.n_heads, config.ffn_dim());
        for (what, a, n) in [
            ("hidden", active.hidden, d),
            ("heads", active.heads, h),
            ("ffn", active.ffn, f),
        ] {
            if a == 0 || a > n {
                return Err(ModelError::InvalidMask {
                    what,
                    active: a,
                    total: n,
                });
            }
        }
        let t = |v: Vec<f32>, shape: Vec<usize>| TensorData::new(v, shape);
        Ok(Self {
            active,
            hidden: Tensor::from_data(t(leading_ones(d, active.hidden), vec![1, 1, d]), device),
            heads: Tensor::from_data(t(leading_ones(h, active.heads), vec![1, h, 1, 1]), device),
            ffn: Tensor::from_data(t(leading_ones(f, active.ffn), vec![1, 1, f]), device),
        })
    }

    /// The active counts.
    pub fn active(&self) -> ActiveWidth {
        self.active
    }
}
