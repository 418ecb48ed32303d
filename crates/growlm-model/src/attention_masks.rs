//! What attention needs besides the weights, built once per sequence length (docs/design.md
//! §Model): the causal and local boolean masks the decomposed path applies, and Llama's
//! rotary tables.

use burn::tensor::{backend::Backend, Bool, Tensor, TensorData};

use crate::GptConfig;

/// Boolean attention masks (true = masked out), built once per sequence length and reused
/// every step.
#[derive(Debug, Clone)]
pub struct AttentionMasks<B: Backend> {
    causal: Tensor<B, 4, Bool>,
    local: Vec<(usize, Tensor<B, 4, Bool>)>,
    /// Llama: the rotary tables for the same length.
    pub(crate) rope: Option<Rope<B>>,
}

/// Rotary position embeddings (Llama): the cosine and sine of each position and frequency,
/// `[1, seq, 1, head_dim]`, in transformers' layout (a head's two halves rotate together).
#[derive(Debug, Clone)]
pub struct Rope<B: Backend> {
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
    /// The same tables on the host, for the fused attention kernel.
    pub(crate) host: growlm_fused::Rope,
}

impl<B: Backend> Rope<B> {
    /// The tables for `seq` positions of heads of `head_dim` with base `theta`, computed as
    /// transformers does (inverse frequencies from an f64 power, angles in f32).
    pub fn new(seq: usize, head_dim: usize, theta: f64, device: &B::Device) -> Self {
        let host = growlm_fused::Rope::new(seq, head_dim, theta);
        let t = |v: &[f32]| Tensor::from_data(TensorData::new(v.to_vec(), [1, seq, 1, head_dim]), device);
        Self {
            cos: t(host.cos()),
            sin: t(host.sin()),
            host,
        }
    }

    /// Rotates `x: [batch, seq, heads, head_dim]` (`seq` at most the tables' length).
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, t, _, hd] = x.dims();
        let half = hd / 2;
        let (x1, x2) = (x.clone().narrow(3, 0, half), x.clone().narrow(3, half, half));
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        x * self.cos.clone().narrow(1, 0, t) + rotated * self.sin.clone().narrow(1, 0, t)
    }

    fn to_device(self, device: &B::Device) -> Self {
        Self {
            cos: self.cos.to_device(device),
            sin: self.sin.to_device(device),
            host: self.host,
        }
    }
}

impl<B: Backend> AttentionMasks<B> {
    /// Masks for sequences of `seq_len` tokens under `config`'s attention pattern.
    pub fn new(config: &GptConfig, seq_len: usize, device: &B::Device) -> Self {
        let build = |window: Option<usize>| {
            let v: Vec<bool> = (0..seq_len * seq_len)
                .map(|i| {
                    let (q, k) = (i / seq_len, i % seq_len);
                    k > q || window.is_some_and(|w| q - k >= w)
                })
                .collect();
            Tensor::<B, 2, Bool>::from_data(TensorData::new(v, vec![seq_len, seq_len]), device).unsqueeze::<4>()
        };
        let mut local = Vec::new();
        for l in 0..config.n_layers {
            if let Some(w) = config.window(l) {
                if !local.iter().any(|(lw, _)| *lw == w) {
                    local.push((w, build(Some(w))));
                }
            }
        }
        Self {
            causal: build(None),
            local,
            rope: (config.components().positions == crate::Positions::Rotary)
                .then(|| Rope::new(seq_len, config.head_dim(), config.theta(), device)),
        }
    }

    /// The same masks on `device` (for a data-parallel peer on another device).
    pub fn to_device(self, device: &B::Device) -> Self {
        Self {
            causal: self.causal.to_device(device),
            local: self.local.into_iter().map(|(w, m)| (w, m.to_device(device))).collect(),
            rope: self.rope.map(|r| r.to_device(device)),
        }
    }

    pub(crate) fn get(&self, window: usize) -> &Tensor<B, 4, Bool> {
        if window == 0 {
            return &self.causal;
        }
        self.local
            .iter()
            .find(|(w, _)| *w == window)
            .map(|(_, m)| m)
            .unwrap_or(&self.causal)
    }
}
