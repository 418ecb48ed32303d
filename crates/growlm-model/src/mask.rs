//! Width masks (paper §3.3, eq. 6–7): which hidden dims, attention dims and FFN units of
//! a wide model are active.
//!
//! As eq. 7 writes it, the mask `C` multiplies every sub-layer input and output and the
//! query, key and value projections per dim, so a new head turns on dim by dim (the
//! attention dims are head-major: the leading ones are the leading heads'). A wide model
//! whose leading blocks hold a small model's parameters and whose extra dims and units are
//! masked computes exactly the small model's function. [`Gpt::restore_masked`] keeps the
//! masked entries untouched by the optimizer ("the missing parameters will not be
//! operated": not even weight decay moves them).
//!
//! [`Gpt::restore_masked`]: crate::Gpt::restore_masked

use burn::module::Param;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Bool, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::layers::{Dense, LayerNorm};
use crate::{Gpt, GptConfig, ModelError};

/// How many hidden dims, attention dims and FFN units are active; the leading ones are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveWidth {
    /// Active hidden (residual-stream) dims.
    pub hidden: usize,
    /// Active query/key/value dims (`n_heads · head_dim` in all; head-major, so
    /// `attn / head_dim` heads are fully on and the next one partly).
    pub attn: usize,
    /// Active MLP hidden units.
    pub ffn: usize,
}

impl ActiveWidth {
    /// Everything of `config` active.
    pub fn full(config: &GptConfig) -> Self {
        Self {
            hidden: config.d_model,
            attn: config.attn_dim(),
            ffn: config.ffn_dim(),
        }
    }

    /// Whether this leaves nothing of `config` masked.
    pub fn is_full(&self, config: &GptConfig) -> bool {
        *self == Self::full(config)
    }
}

/// A mask over the hidden dims, attention dims and FFN units of a model, as tensors ready
/// to multiply activations: 0/1 for PDG (eq. 6–7), or with the new entries scaled by a
/// fraction for MSG ([`WidthMask::scaled`]), which may also scale the residual branches of
/// new blocks.
#[derive(Debug, Clone)]
pub struct WidthMask<B: Backend> {
    active: ActiveWidth,
    /// The sum of the hidden mask's values: the weight LayerNorm statistics divide by.
    pub(crate) hidden_sum: f64,
    /// Per block, the factor of its residual branches (empty: all 1).
    pub(crate) gates: Vec<f32>,
    /// `[1, 1, d_model]`: the global mask `C` of eq. 6.
    pub(crate) hidden: Tensor<B, 3>,
    /// `[1, 1, n_heads·head_dim]`: the per-dim mask of Q, K and V.
    pub(crate) attn: Tensor<B, 3>,
    /// `[1, 1, ffn_dim]`.
    pub(crate) ffn: Tensor<B, 3>,
    /// Llama with grouped key/value heads: `[1, 1, n_kv_heads·head_dim]`, the mask of K and
    /// V ([`kv_values`]); `None` when they are as wide as Q and take `attn`.
    pub(crate) kv: Option<Tensor<B, 3>>,
}

/// The key/value mask of a Llama model whose query mask is `attn`: key/value head `j`
/// serves query heads `j·g … j·g + g − 1`, and takes the mask of the first of them, dim by
/// dim. With the leading query heads on, the leading key/value heads are; with new query
/// heads scaled (MSG), their key/value heads are scaled alike. `None` when the key/value
/// heads are the query heads.
pub(crate) fn kv_values(config: &GptConfig, attn: &[f32]) -> Option<Vec<f32>> {
    let (h, kv, hd) = (config.n_heads, config.kv_heads(), config.head_dim());
    if kv == h {
        return None;
    }
    let g = h / kv;
    Some((0..kv * hd).map(|i| attn[(i / hd) * g * hd + i % hd]).collect())
}

/// `n` values, the leading `active` of them 1 and the rest 0.
pub(crate) fn leading_ones(n: usize, active: usize) -> Vec<f32> {
    (0..n).map(|i| if i < active { 1.0 } else { 0.0 }).collect()
}

impl<B: Backend> WidthMask<B> {
    /// The same mask in float type `dtype` (for a model cast to a low precision).
    pub fn cast(self, dtype: burn::tensor::FloatDType) -> Self {
        Self {
            hidden: self.hidden.cast(dtype),
            attn: self.attn.cast(dtype),
            ffn: self.ffn.cast(dtype),
            kv: self.kv.map(|k| k.cast(dtype)),
            ..self
        }
    }

    /// The same mask on `device` (for a data-parallel peer on another device).
    pub fn to_device(self, device: &B::Device) -> Self {
        Self {
            hidden: self.hidden.to_device(device),
            attn: self.attn.to_device(device),
            ffn: self.ffn.to_device(device),
            kv: self.kv.map(|k| k.to_device(device)),
            ..self
        }
    }

    /// Builds the mask for `config` with the leading `active` dims and units on.
    pub fn new(config: &GptConfig, active: ActiveWidth, device: &B::Device) -> Result<Self, ModelError> {
        let (d, a, f) = (config.d_model, config.attn_dim(), config.ffn_dim());
        for (what, k, n) in [
            ("hidden", active.hidden, d),
            ("attn", active.attn, a),
            ("ffn", active.ffn, f),
        ] {
            if k == 0 || k > n {
                return Err(ModelError::InvalidMask {
                    what,
                    active: k,
                    total: n,
                });
            }
        }
        let t = |v: Vec<f32>, shape: Vec<usize>| TensorData::new(v, shape);
        let attn = leading_ones(a, active.attn);
        let kv = kv_values(config, &attn).map(|v| {
            let n = v.len();
            Tensor::from_data(t(v, vec![1, 1, n]), device)
        });
        Ok(Self {
            active,
            hidden_sum: active.hidden as f64,
            gates: Vec::new(),
            hidden: Tensor::from_data(t(leading_ones(d, active.hidden), vec![1, 1, d]), device),
            attn: Tensor::from_data(t(attn, vec![1, 1, a]), device),
            ffn: Tensor::from_data(t(leading_ones(f, active.ffn), vec![1, 1, f]), device),
            kv,
        })
    }

    /// MSG's mask (Yao et al., 2023): the leading `old` hidden dims, attention dims and FFN
    /// units are fully on and the rest are scaled by `scale = [hidden, attn, ffn]`, each in
    /// `[0, 1]`; block `i`'s residual branches are scaled by `gates[i]` (empty: all 1).
    /// LayerNorm statistics are weighted by the hidden mask, so with every scale 0 the
    /// model computes what its leading part computes and with every scale 1 it is the
    /// unmasked model.
    pub fn scaled(
        config: &GptConfig,
        old: ActiveWidth,
        scale: [f32; 3],
        gates: Vec<f32>,
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        let mut mask = Self::new(config, old, device)?;
        if !gates.is_empty() && gates.len() != config.n_layers {
            return Err(ModelError::InvalidMask {
                what: "block gates",
                active: gates.len(),
                total: config.n_layers,
            });
        }
        let values = |n: usize, k: usize, s: f32| (0..n).map(|i| if i < k { 1.0 } else { s }).collect::<Vec<f32>>();
        let (d, a, f) = (config.d_model, config.attn_dim(), config.ffn_dim());
        let hidden = values(d, old.hidden, scale[0]);
        mask.hidden_sum = hidden.iter().map(|&v| f64::from(v)).sum();
        let t = |v: Vec<f32>, n: usize| Tensor::from_data(TensorData::new(v, vec![1, 1, n]), device);
        mask.hidden = t(hidden, d);
        let attn = values(a, old.attn, scale[1]);
        mask.kv = kv_values(config, &attn).map(|v| {
            let n = v.len();
            t(v, n)
        });
        mask.attn = t(attn, a);
        mask.ffn = t(values(f, old.ffn, scale[2]), f);
        mask.gates = gates;
        Ok(mask)
    }

    /// The hidden mask's mean value: the fraction of the hidden width that is on.
    pub fn hidden_fraction(&self) -> f64 {
        self.hidden_sum / self.hidden.dims()[2] as f64
    }

    /// The factor of block `i`'s residual branches, if it is not 1.
    pub(crate) fn gate(&self, i: usize) -> Option<f32> {
        self.gates.get(i).copied().filter(|&g| g != 1.0)
    }

    /// The active counts.
    pub fn active(&self) -> ActiveWidth {
        self.active
    }
}

type Inner<B> = <B as AutodiffBackend>::InnerBackend;

/// Keeps the entries of `param` that `active` (a `[rows, cols]` or `[n]` boolean) marks and
/// takes the rest from `frozen`; the result is a fresh trainable leaf with the same id.
fn keep<B: AutodiffBackend, const D: usize>(
    param: Param<Tensor<B, D>>,
    frozen: &Param<Tensor<Inner<B>, D>>,
    active: Tensor<Inner<B>, D, Bool>,
) -> Param<Tensor<B, D>> {
    let (id, tensor, _) = param.consume();
    let value = frozen.val().mask_where(active, tensor.inner());
    Param::initialized(id, Tensor::from_inner(value).require_grad())
}

impl<B: AutodiffBackend> Gpt<B> {
    /// Returns the model with every entry that `active` masks out of `config`'s width set
    /// back to its value in `frozen` (the model as it was grown): masked entries get no
    /// gradient, and this undoes what weight decay did to them, so that "the missing
    /// parameters will not be operated" (paper §3.3) holds exactly. Active entries are
    /// left as they are.
    pub fn restore_masked(mut self, frozen: &Gpt<Inner<B>>, config: &GptConfig, active: ActiveWidth) -> Self {
        let device = self.wte.val().device();
        let on = |n: usize, k: usize| {
            Tensor::<Inner<B>, 1>::from_data(TensorData::new(leading_ones(n, k), vec![n]), &device)
        };
        let (d, a, f) = (config.d_model, config.attn_dim(), config.ffn_dim());
        let (hid, att, ffn) = (on(d, active.hidden), on(a, active.attn), on(f, active.ffn));
        let all = |n: usize| on(n, n);
        // Grouped key/value heads take the mask of the first query head each serves (as in
        // the forward pass); heads as many as the queries' take the query width.
        let kv = match kv_values(config, &leading_ones(a, active.attn)) {
            Some(v) => Tensor::<Inner<B>, 1>::from_data(TensorData::new(v, vec![config.kv_dim()]), &device),
            None => att.clone(),
        };
        let vec = |m: &Tensor<Inner<B>, 1>| m.clone().greater_elem(0.5);
        let mat = |r: &Tensor<Inner<B>, 1>, c: &Tensor<Inner<B>, 1>| {
            let outer = r.clone().unsqueeze_dim::<2>(1).matmul(c.clone().unsqueeze_dim::<2>(0));
            outer.greater_elem(0.5)
        };
        let ln = |l: LayerNorm<B>, old: &LayerNorm<Inner<B>>| {
            let mut l = l;
            l.gamma = keep(l.gamma, &old.gamma, vec(&hid));
            l.beta = match (l.beta, &old.beta) {
                (Some(b), Some(ob)) => Some(keep(b, ob, vec(&hid))),
                (b, _) => b,
            };
            l
        };
        let dense = |x: Dense<B>, old: &Dense<Inner<B>>, rows: &Tensor<Inner<B>, 1>, cols: &Tensor<Inner<B>, 1>| {
            let mut x = x;
            x.weight = keep(x.weight, &old.weight, mat(rows, cols));
            x.bias = match (x.bias, &old.bias) {
                (Some(b), Some(ob)) => Some(keep(b, ob, vec(cols))),
                (b, _) => b,
            };
            x
        };
        self.wte = keep(self.wte, &frozen.wte, mat(&all(config.vocab_size), &hid));
        self.wpe = match (self.wpe, &frozen.wpe) {
            (Some(p), Some(old)) => Some(keep(p, old, mat(&all(config.context_len), &hid))),
            (p, _) => p,
        };
        self.lm_head = match (self.lm_head, &frozen.lm_head) {
            (Some(p), Some(old)) => Some(keep(p, old, mat(&all(config.vocab_size), &hid))),
            (p, _) => p,
        };
        self.ln_f = ln(self.ln_f, &frozen.ln_f);
        self.blocks = self
            .blocks
            .into_iter()
            .zip(&frozen.blocks)
            .map(|(mut b, old)| {
                b.ln_attn = ln(b.ln_attn, &old.ln_attn);
                b.ln_mlp = ln(b.ln_mlp, &old.ln_mlp);
                b.attn.query = dense(b.attn.query, &old.attn.query, &hid, &att);
                b.attn.key = dense(b.attn.key, &old.attn.key, &hid, &kv);
                b.attn.value = dense(b.attn.value, &old.attn.value, &hid, &kv);
                b.attn.out = dense(b.attn.out, &old.attn.out, &att, &hid);
                b.mlp.up = dense(b.mlp.up, &old.mlp.up, &hid, &ffn);
                b.mlp.gate = match (b.mlp.gate, &old.mlp.gate) {
                    (Some(g), Some(og)) => Some(dense(g, og, &hid, &ffn)),
                    (g, _) => g,
                };
                b.mlp.down = dense(b.mlp.down, &old.mlp.down, &ffn, &hid);
                b
            })
            .collect();
        self
    }
}
