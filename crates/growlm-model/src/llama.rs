//! The Llama-family decoder (DESIGN.md §Model, model families): RMSNorm, a SwiGLU MLP,
//! rotary position embeddings, grouped-query attention, no biases, a tied or untied head —
//! the function transformers' `LlamaForCausalLM` computes (also SmolLM's and, without their
//! q/k/v biases, Qwen2's).
//!
//! Weight matrices are stored `[d_in, d_out]`, as in the GPT-Neo model. The parameter
//! table ([`LlamaConfig::param_table`]) names every parameter once, with its shape and its
//! transformers name, for loading and saving.

use burn::module::{Module, Param};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{backend::Backend, Bool, Int, Tensor, TensorData};
use growlm_fused::AttentionPattern;
use serde::{Deserialize, Serialize};

use crate::layers::{Dense, Initializer};
use crate::{cross_entropy, ModelError, MAX_DIM, MAX_LAYERS, MAX_PARAMS};

/// Configuration of a Llama-family decoder.
///
/// `head_dim` defaults to `d_model / n_heads`, `n_kv_heads` to `n_heads` (no grouping) and
/// `ffn_dim` (transformers' `intermediate_size`) to `4 · d_model`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Longest sequence the model is trained on (RoPE has no table to outgrow).
    pub context_len: usize,
    /// Width of the residual stream (`hidden_size`).
    pub d_model: usize,
    /// Number of blocks.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads; each serves `n_heads / n_kv_heads` query heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_kv_heads: Option<usize>,
    /// Width of one head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// SwiGLU hidden units (`intermediate_size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ffn_dim: Option<usize>,
    /// RoPE base (`rope_theta`).
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    /// RMSNorm epsilon.
    #[serde(default = "default_eps")]
    pub norm_eps: f64,
    /// Whether the LM head is the token embedding.
    #[serde(default)]
    pub tie_embeddings: bool,
    /// Standard deviation of the normal initialisation of weight matrices.
    #[serde(default = "default_init_std")]
    pub init_std: f64,
}

fn default_theta() -> f64 {
    10_000.0
}
fn default_eps() -> f64 {
    1e-5
}
fn default_init_std() -> f64 {
    0.02
}

/// One parameter of a Llama model: growlm's path, its shape, and its transformers name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlamaParam {
    /// burn's module path (`blocks.1.attn.key.weight`).
    pub path: String,
    /// Shape as growlm stores it (`[d_in, d_out]` for a weight).
    pub shape: Vec<usize>,
    /// transformers' name (`model.layers.1.self_attn.k_proj.weight`).
    pub hf_name: String,
    /// Whether transformers stores it transposed (`torch.nn.Linear`'s `[d_out, d_in]`).
    pub transposed: bool,
}

impl LlamaConfig {
    /// Query/key/value width of one head.
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.d_model / self.n_heads.max(1))
    }

    /// Key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.n_kv_heads.unwrap_or(self.n_heads)
    }

    /// Query width, `n_heads · head_dim`.
    pub fn attn_dim(&self) -> usize {
        self.n_heads * self.head_dim()
    }

    /// Key (and value) width, `n_kv_heads · head_dim`.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads() * self.head_dim()
    }

    /// SwiGLU hidden units.
    pub fn ffn_dim(&self) -> usize {
        self.ffn_dim.unwrap_or(4 * self.d_model)
    }

    /// Checks the config; `prefix` names where it came from in error messages.
    pub fn validate(&self, prefix: &str) -> Result<(), ModelError> {
        let bad = |key: &str, reason: String| {
            Err(ModelError::InvalidConfig {
                key: format!("{prefix}.{key}"),
                reason,
            })
        };
        for (key, v, max) in [
            ("vocab_size", self.vocab_size, MAX_DIM),
            ("context_len", self.context_len, MAX_DIM),
            ("d_model", self.d_model, MAX_DIM),
            ("n_layers", self.n_layers, MAX_LAYERS),
            ("n_heads", self.n_heads, MAX_DIM),
            ("n_kv_heads", self.kv_heads(), MAX_DIM),
            ("head_dim", self.head_dim(), MAX_DIM),
            ("ffn_dim", self.ffn_dim(), MAX_DIM),
        ] {
            if v == 0 {
                return bad(key, "must be at least 1".into());
            }
            if v > max {
                return bad(key, format!("{v} is larger than growlm supports ({max})"));
            }
        }
        if self.head_dim.is_none() && !self.d_model.is_multiple_of(self.n_heads) {
            return bad(
                "d_model",
                format!("{} is not divisible by n_heads = {}; change one of them or set head_dim", self.d_model, self.n_heads),
            );
        }
        if !self.n_heads.is_multiple_of(self.kv_heads()) {
            return bad(
                "n_kv_heads",
                format!("{} does not divide n_heads = {}: each key/value head serves an equal group of query heads", self.kv_heads(), self.n_heads),
            );
        }
        if !self.head_dim().is_multiple_of(2) {
            return bad("head_dim", format!("{} is odd; RoPE rotates pairs of dims", self.head_dim()));
        }
        for (key, v) in [("rope_theta", self.rope_theta), ("norm_eps", self.norm_eps), ("init_std", self.init_std)] {
            if !(v > 0.0 && v.is_finite()) {
                return bad(key, format!("must be positive, got {v}"));
            }
        }
        if self.num_params() as f64 > MAX_PARAMS {
            return bad("d_model", format!("the model would have more than {MAX_PARAMS:.0e} parameters; shrink it"));
        }
        Ok(())
    }

    /// Every parameter: the embedding, each block's norms and projections, the final norm
    /// and (untied) the head — in transformers' order.
    pub fn param_table(&self) -> Vec<LlamaParam> {
        let (d, a, kv, f) = (self.d_model, self.attn_dim(), self.kv_dim(), self.ffn_dim());
        let p = |path: String, shape: Vec<usize>, hf_name: String, transposed| LlamaParam {
            path,
            shape,
            hf_name,
            transposed,
        };
        let mut out = vec![p("wte".into(), vec![self.vocab_size, d], "model.embed_tokens.weight".into(), false)];
        for j in 0..self.n_layers {
            let hf = |leaf: &str| format!("model.layers.{j}.{leaf}.weight");
            let at = |m: &str| format!("blocks.{j}.{m}.weight");
            out.push(p(at("norm_attn"), vec![d], hf("input_layernorm"), false));
            for (m, h, i, o) in [
                ("attn.query", "self_attn.q_proj", d, a),
                ("attn.key", "self_attn.k_proj", d, kv),
                ("attn.value", "self_attn.v_proj", d, kv),
                ("attn.out", "self_attn.o_proj", a, d),
            ] {
                out.push(p(at(m), vec![i, o], hf(h), true));
            }
            out.push(p(at("norm_mlp"), vec![d], hf("post_attention_layernorm"), false));
            for (m, h, i, o) in [("mlp.gate", "mlp.gate_proj", d, f), ("mlp.up", "mlp.up_proj", d, f), ("mlp.down", "mlp.down_proj", f, d)] {
                out.push(p(at(m), vec![i, o], hf(h), true));
            }
        }
        out.push(p("norm_f.weight".into(), vec![d], "model.norm.weight".into(), false));
        if !self.tie_embeddings {
            out.push(p("lm_head".into(), vec![self.vocab_size, d], "lm_head.weight".into(), false));
        }
        out
    }

    /// Trainable parameters, as transformers' `num_parameters()` counts them (a tied head
    /// once).
    pub fn num_params(&self) -> usize {
        self.param_table().iter().map(|p| p.shape.iter().product::<usize>()).sum()
    }

    /// Parameters in a matrix multiply for every token: the projections and the head.
    pub fn num_matmul_params(&self) -> usize {
        let (d, a, kv, f) = (self.d_model, self.attn_dim(), self.kv_dim(), self.ffn_dim());
        self.n_layers * (2 * d * a + 2 * d * kv + 3 * d * f) + d * self.vocab_size
    }

    /// Training FLOPs for one token at sequence length `seq_len`: `6·N + 12·L·T·A` as for
    /// GPT-Neo ([`crate::GptConfig::flops_per_token`]), with `A` the query width.
    pub fn flops_per_token(&self, seq_len: usize) -> f64 {
        6.0 * self.num_matmul_params() as f64 + 12.0 * (self.n_layers * seq_len * self.attn_dim()) as f64
    }

    /// Builds a freshly initialised model from a generator seeded with `seed`.
    pub fn init<B: Backend>(&self, seed: u64, device: &B::Device) -> Result<Llama<B>, ModelError> {
        self.validate("model")?;
        let mut init = Initializer::new(seed);
        let std = self.init_std;
        let out_std = std / (2.0 * self.n_layers as f64).sqrt();
        let (d, a, kv, f) = (self.d_model, self.attn_dim(), self.kv_dim(), self.ffn_dim());
        let wte = Param::from_tensor(init.normal::<B>(self.vocab_size, d, std, device));
        let mut dense = |i, o, std| Dense::init(i, o, std, false, &mut init, device);
        let blocks = (0..self.n_layers)
            .map(|_| LlamaBlock {
                norm_attn: RmsNorm::init(d, self.norm_eps, device),
                attn: LlamaAttention {
                    query: dense(d, a, std),
                    key: dense(d, kv, std),
                    value: dense(d, kv, std),
                    out: dense(a, d, out_std),
                    n_heads: self.n_heads,
                    n_kv_heads: self.kv_heads(),
                    head_dim: self.head_dim(),
                },
                norm_mlp: RmsNorm::init(d, self.norm_eps, device),
                mlp: SwiGlu {
                    gate: dense(d, f, std),
                    up: dense(d, f, std),
                    down: dense(f, d, out_std),
                },
            })
            .collect();
        let lm_head = (!self.tie_embeddings).then(|| Param::from_tensor(init.normal::<B>(self.vocab_size, d, std, device)));
        Ok(Llama {
            wte,
            blocks,
            norm_f: RmsNorm::init(d, self.norm_eps, device),
            lm_head,
        })
    }
}

/// RMSNorm: `x / √(mean(x²) + eps) · weight`, over the last dim.
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    /// Scale, `[d]`.
    pub weight: Param<Tensor<B, 1>>,
    eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    fn init(d: usize, eps: f64, device: &B::Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([d], device)),
            eps,
        }
    }

    /// `x: [batch, seq, d]` → `[batch, seq, d]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let ms = x.clone().square().mean_dim(2);
        x * (ms + self.eps).sqrt().recip() * self.weight.val().unsqueeze::<3>()
    }
}

/// Rotary position embeddings: the cosine and sine of each position and frequency,
/// `[1, seq, 1, head_dim]`, transformers' layout (the two halves of a head rotate together).
#[derive(Debug, Clone)]
pub struct Rope<B: Backend> {
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
}

impl<B: Backend> Rope<B> {
    /// The tables for `seq` positions of heads of `head_dim` with base `theta` (computed in
    /// f64, stored in f32).
    pub fn new(seq: usize, head_dim: usize, theta: f64, device: &B::Device) -> Self {
        let half = head_dim / 2;
        let (mut cos, mut sin) = (Vec::with_capacity(seq * head_dim), Vec::with_capacity(seq * head_dim));
        for pos in 0..seq {
            for i in 0..head_dim {
                // transformers computes inv_freq in f32 and the angle in f32: do the same so
                // long positions round alike.
                let inv_freq = (1.0 / theta.powf((2 * (i % half)) as f64 / head_dim as f64)) as f32;
                let angle = pos as f32 * inv_freq;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let t = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [1, seq, 1, head_dim]), device);
        Self { cos: t(cos), sin: t(sin) }
    }

    /// Rotates `x: [batch, seq, heads, head_dim]`.
    fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, _, _, hd] = x.dims();
        let half = hd / 2;
        let (x1, x2) = (x.clone().narrow(3, 0, half), x.clone().narrow(3, half, half));
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        x * self.cos.clone() + rotated * self.sin.clone()
    }
}

/// Grouped-query causal self-attention with RoPE, scores scaled by `1/√head_dim`.
#[derive(Module, Debug)]
pub struct LlamaAttention<B: Backend> {
    /// `[d_model, n_heads·head_dim]`, no bias.
    pub query: Dense<B>,
    /// `[d_model, n_kv_heads·head_dim]`, no bias.
    pub key: Dense<B>,
    /// `[d_model, n_kv_heads·head_dim]`, no bias.
    pub value: Dense<B>,
    /// `[n_heads·head_dim, d_model]`, no bias.
    pub out: Dense<B>,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
}

impl<B: Backend> LlamaAttention<B> {
    fn forward(&self, x: Tensor<B, 3>, rope: &Rope<B>) -> Tensor<B, 3> {
        let [b, t, _] = x.dims();
        let (h, kv, hd) = (self.n_heads, self.n_kv_heads, self.head_dim);
        let heads = |y: Tensor<B, 3>, n: usize| y.reshape([b, t, n, hd]);
        let q = rope.apply(heads(self.query.forward(x.clone()), h));
        let k = rope.apply(heads(self.key.forward(x.clone()), kv));
        let v = heads(self.value.forward(x), kv);
        // Query head `i` reads key/value head `i / (h / kv)` (transformers' `repeat_kv`).
        let group = |y: Tensor<B, 4>| {
            if kv == h {
                y.reshape([b, t, h * hd])
            } else {
                y.unsqueeze_dim::<5>(3).expand([b, t, kv, h / kv, hd]).reshape([b, t, h * hd])
            }
        };
        let (q, k, v) = (q.reshape([b, t, h * hd]), group(k), group(v));
        let scale = 1.0 / (hd as f32).sqrt();
        let y = match growlm_fused::attention(q, k, v, h, AttentionPattern { window: 0, scale }) {
            Ok(y) => y,
            Err((q, k, v)) => {
                let split = |y: Tensor<B, 3>| y.reshape([b, t, h, hd]).swap_dims(1, 2);
                let mask: Vec<bool> = (0..t * t).map(|n| n % t > n / t).collect();
                let mask = Tensor::<B, 2, Bool>::from_data(TensorData::new(mask, [t, t]), &q.device())
                    .reshape([1, 1, t, t])
                    .expand([b, h, t, t]);
                let scores = split(q).matmul(split(k).swap_dims(2, 3)).mul_scalar(scale);
                let p = softmax(scores.mask_fill(mask, f32::NEG_INFINITY), 3);
                p.matmul(split(v)).swap_dims(1, 2).reshape([b, t, h * hd])
            }
        };
        self.out.forward(y)
    }
}

/// The SwiGLU MLP: `down(silu(gate(x)) · up(x))`.
#[derive(Module, Debug)]
pub struct SwiGlu<B: Backend> {
    /// `[d_model, ffn_dim]`, no bias.
    pub gate: Dense<B>,
    /// `[d_model, ffn_dim]`, no bias.
    pub up: Dense<B>,
    /// `[ffn_dim, d_model]`, no bias.
    pub down: Dense<B>,
}

/// One pre-RMSNorm block.
#[derive(Module, Debug)]
pub struct LlamaBlock<B: Backend> {
    /// RMSNorm before attention (`input_layernorm`).
    pub norm_attn: RmsNorm<B>,
    /// Self-attention.
    pub attn: LlamaAttention<B>,
    /// RMSNorm before the MLP (`post_attention_layernorm`).
    pub norm_mlp: RmsNorm<B>,
    /// The MLP.
    pub mlp: SwiGlu<B>,
}

/// The Llama-family decoder.
#[derive(Module, Debug)]
pub struct Llama<B: Backend> {
    /// Token embedding `[vocab, d_model]` (also the head when tied).
    pub wte: Param<Tensor<B, 2>>,
    /// The blocks.
    pub blocks: Vec<LlamaBlock<B>>,
    /// Final RMSNorm.
    pub norm_f: RmsNorm<B>,
    /// Untied LM head `[vocab, d_model]`; `None` when tied to `wte`.
    pub lm_head: Option<Param<Tensor<B, 2>>>,
}

impl<B: Backend> Llama<B> {
    /// Next-token logits: `tokens: [batch, seq]` → `[batch, seq, vocab]`, with `rope` built
    /// for at least `seq` positions.
    pub fn forward(&self, tokens: Tensor<B, 2, Int>, rope: &Rope<B>) -> Tensor<B, 3> {
        let [b, t] = tokens.dims();
        let [vocab, d] = self.wte.dims();
        let rope = Rope {
            cos: rope.cos.clone().narrow(1, 0, t),
            sin: rope.sin.clone().narrow(1, 0, t),
        };
        let mut x = self.wte.val().select(0, tokens.reshape([b * t])).reshape([b, t, d]);
        for blk in &self.blocks {
            x = x.clone() + blk.attn.forward(blk.norm_attn.forward(x), &rope);
            let h = blk.norm_mlp.forward(x.clone());
            let m = silu(blk.mlp.gate.forward(h.clone())) * blk.mlp.up.forward(h);
            x = x + blk.mlp.down.forward(m);
        }
        let x = self.norm_f.forward(x).reshape([b * t, d]);
        let head = self.lm_head.as_ref().unwrap_or(&self.wte);
        x.matmul(head.val().transpose()).reshape([b, t, vocab])
    }

    /// Mean next-token cross-entropy of `inputs` predicting `targets`.
    pub fn loss(&self, inputs: Tensor<B, 2, Int>, targets: Tensor<B, 2, Int>, rope: &Rope<B>) -> Tensor<B, 1> {
        cross_entropy(self.forward(inputs, rope), targets)
    }
}
