//! Model configuration (docs/design.md §Model): a GPT-Neo-style decoder described by its
//! vocabulary, context, width, depth, heads and FFN size.

use serde::{Deserialize, Serialize};

use crate::{Family, ModelError};

/// Which attention pattern each layer uses.
///
/// GPT-Neo alternates global and local (sliding-window) attention layers; `Global` gives
/// every layer full causal attention as in GPT-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AttentionLayers {
    /// Every layer attends to all earlier positions.
    #[default]
    Global,
    /// Even layers are global, odd layers attend only to the last `window` positions.
    Alternating {
        /// Local-attention window (number of positions, including the current one).
        window: usize,
    },
}

/// Configuration of a decoder of any [`Family`].
///
/// `head_dim` defaults to `d_model / n_heads` and `ffn_dim` to `4 · d_model`. The Llama
/// family's keys (`n_kv_heads`, `rope_theta`, `tie_embeddings`) are refused for GPT-Neo;
/// for Llama, `layer_norm_eps` is the RMSNorm epsilon.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GptConfig {
    /// The model family (`"gpt-neo"` when absent).
    #[serde(default, skip_serializing_if = "Family::is_default")]
    pub family: Family,
    /// Vocabulary size (256 for the byte-level tokenizer).
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    /// Maximum sequence length (number of learned position embeddings).
    pub context_len: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Number of attention heads.
    pub n_heads: usize,
    /// Width of one attention head; `d_model / n_heads` when absent.
    pub head_dim: Option<usize>,
    /// Hidden units of the MLP; `4 · d_model` when absent.
    pub ffn_dim: Option<usize>,
    /// Attention pattern of the layers.
    #[serde(default)]
    pub attention: AttentionLayers,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Standard deviation of the normal initialisation of weight matrices.
    #[serde(default = "default_init_std")]
    pub init_std: f64,
    /// Llama: key/value heads, each serving `n_heads / n_kv_heads` query heads; `n_heads`
    /// when absent.
    pub n_kv_heads: Option<usize>,
    /// Llama: the RoPE base; 10,000 when absent.
    pub rope_theta: Option<f64>,
    /// Llama: whether the LM head is the token embedding; false (untied) when absent, as
    /// transformers' `LlamaConfig`.
    pub tie_embeddings: Option<bool>,
    /// Ablations ([`crate::Components`]): the family's norm swapped (`"layer_norm"`, `"rms_norm"`).
    pub norm: Option<crate::Norm>,
    /// The family's MLP swapped (`"gelu"`, `"swiglu"`).
    pub mlp: Option<crate::MlpKind>,
    /// The family's positions swapped (`"learned"`, `"rotary"`).
    pub positions: Option<crate::Positions>,
}

fn default_vocab() -> usize {
    256
}
fn default_eps() -> f64 {
    1e-5
}
fn default_init_std() -> f64 {
    0.02
}

/// Largest width, vocabulary, context or head count a config may give (2²⁰).
pub const MAX_DIM: usize = 1 << 20;
/// Largest depth a config may give.
pub const MAX_LAYERS: usize = 4096;
/// Largest parameter count a config may give (10¹²).
pub const MAX_PARAMS: f64 = 1e12;

impl GptConfig {
    /// A config with the given shape and defaults for everything else.
    pub fn new(vocab_size: usize, context_len: usize, d_model: usize, n_layers: usize, n_heads: usize) -> Self {
        Self {
            family: Family::GptNeo,
            vocab_size,
            context_len,
            d_model,
            n_layers,
            n_heads,
            head_dim: None,
            ffn_dim: None,
            attention: AttentionLayers::Global,
            layer_norm_eps: default_eps(),
            init_std: default_init_std(),
            n_kv_heads: None,
            rope_theta: None,
            tie_embeddings: None,
            norm: None,
            mlp: None,
            positions: None,
        }
    }

    /// A Llama-family config with the given shape, `n_kv_heads` key/value heads, an
    /// untied head and defaults for everything else.
    pub fn llama(
        vocab_size: usize,
        context_len: usize,
        d_model: usize,
        n_layers: usize,
        n_heads: usize,
        n_kv_heads: usize,
    ) -> Self {
        Self {
            family: Family::Llama,
            n_kv_heads: Some(n_kv_heads),
            ..Self::new(vocab_size, context_len, d_model, n_layers, n_heads)
        }
    }

    /// What this model's family is ([`Family::describe`]).
    pub fn describe(&self) -> &'static crate::FamilyDesc {
        self.family.describe()
    }

    /// Key/value heads (`n_heads` for GPT-Neo).
    pub fn kv_heads(&self) -> usize {
        self.n_kv_heads.unwrap_or(self.n_heads)
    }

    /// Key (and value) width, `kv_heads · head_dim`.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads() * self.head_dim()
    }

    /// The RoPE base (Llama).
    pub fn theta(&self) -> f64 {
        self.rope_theta.unwrap_or(10_000.0)
    }

    /// Whether the LM head is the token embedding (always for a family without an untied
    /// head, such as GPT-Neo).
    pub fn tied(&self) -> bool {
        !self.describe().untied_head || self.tie_embeddings.unwrap_or(false)
    }

    /// Sets the head width.
    pub fn with_head_dim(mut self, head_dim: usize) -> Self {
        self.head_dim = Some(head_dim);
        self
    }

    /// Sets the MLP width.
    pub fn with_ffn_dim(mut self, ffn_dim: usize) -> Self {
        self.ffn_dim = Some(ffn_dim);
        self
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.d_model / self.n_heads.max(1))
    }

    /// Width of all heads together (`n_heads · head_dim`).
    pub fn attn_dim(&self) -> usize {
        self.n_heads * self.head_dim()
    }

    /// Hidden units of the MLP.
    pub fn ffn_dim(&self) -> usize {
        self.ffn_dim.unwrap_or(4 * self.d_model)
    }

    /// Local-attention window of layer `layer`, `None` for a global layer.
    pub fn window(&self, layer: usize) -> Option<usize> {
        match self.attention {
            AttentionLayers::Global => None,
            AttentionLayers::Alternating { window } => (layer % 2 == 1).then_some(window),
        }
    }

    /// Checks the config; `prefix` names where it came from in error messages
    /// (for example `stages[0].model`).
    pub fn validate(&self, prefix: &str) -> Result<(), ModelError> {
        let bad = |key: &str, reason: String| {
            Err(ModelError::InvalidConfig {
                key: format!("{prefix}.{key}"),
                reason,
            })
        };
        for (key, v) in [
            ("vocab_size", self.vocab_size),
            ("context_len", self.context_len),
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
        ] {
            if v == 0 {
                return bad(key, "must be at least 1".into());
            }
        }
        // Sizes beyond any trainable model would overflow the parameter count and the
        // allocations built from them; refuse them by name instead.
        for (key, v, max) in [
            ("vocab_size", self.vocab_size, MAX_DIM),
            ("context_len", self.context_len, MAX_DIM),
            ("d_model", self.d_model, MAX_DIM),
            ("n_layers", self.n_layers, MAX_LAYERS),
            ("n_heads", self.n_heads, MAX_DIM),
            ("head_dim", self.head_dim.unwrap_or(0), MAX_DIM),
            ("ffn_dim", self.ffn_dim.unwrap_or(0), MAX_DIM),
        ] {
            if v > max {
                return bad(key, format!("{v} is larger than growlm supports ({max})"));
            }
        }
        match self.head_dim {
            Some(0) => return bad("head_dim", "must be at least 1".into()),
            None if !self.d_model.is_multiple_of(self.n_heads) => {
                return bad(
                    "d_model",
                    format!(
                        "d_model = {} is not divisible by n_heads = {}; change one of them or set head_dim",
                        self.d_model, self.n_heads
                    ),
                )
            }
            _ => {}
        }
        if self.ffn_dim == Some(0) {
            return bad("ffn_dim", "must be at least 1".into());
        }
        if let AttentionLayers::Alternating { window } = self.attention {
            if window == 0 {
                return bad("attention.window", "must be at least 1".into());
            }
        }
        let family = self.describe();
        for (key, set, allowed) in [
            ("n_kv_heads", self.n_kv_heads.is_some(), family.grouped_kv),
            (
                "rope_theta",
                self.rope_theta.is_some(),
                family.parts.positions == crate::Positions::Rotary,
            ),
            ("tie_embeddings", self.tie_embeddings.is_some(), family.untied_head),
        ] {
            if set && !allowed {
                return bad(
                    key,
                    format!(
                        "is not a {} key (a Llama-family key); set family = \"llama\" or remove it",
                        family.name
                    ),
                );
            }
        }
        if family.grouped_kv {
            let kv = self.kv_heads();
            if kv == 0 || kv > MAX_DIM || !self.n_heads.is_multiple_of(kv) {
                return bad(
                    "n_kv_heads",
                    format!(
                        "{kv} does not divide n_heads = {}: each key/value head serves an equal group of query heads",
                        self.n_heads
                    ),
                );
            }
        }
        if !family.windowed_layers && self.attention != AttentionLayers::Global {
            return bad(
                "attention",
                format!("{} models attend globally; remove `attention`", family.name),
            );
        }
        if family.parts.positions == crate::Positions::Rotary {
            let theta = self.theta();
            if !(theta > 1.0 && theta.is_finite()) {
                return bad("rope_theta", format!("must be a finite base above 1, got {theta}"));
            }
        }
        if self.components().positions == crate::Positions::Rotary && !self.head_dim().is_multiple_of(2) {
            return bad(
                "head_dim",
                format!("{} is odd; RoPE rotates pairs of dims", self.head_dim()),
            );
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            return bad(
                "layer_norm_eps",
                format!("must be positive, got {}", self.layer_norm_eps),
            );
        }
        if !(self.init_std > 0.0 && self.init_std.is_finite()) {
            return bad("init_std", format!("must be positive, got {}", self.init_std));
        }
        // The parameter count, in floating point so that it cannot overflow.
        let (d, a, f) = (self.d_model as f64, self.attn_dim() as f64, self.ffn_dim() as f64);
        let mlp = if self.components().mlp == crate::MlpKind::Swiglu {
            3.0
        } else {
            2.0
        };
        let heads = if self.tied() { 1 } else { 2 };
        let per_layer = 4.0 * d * a + mlp * d * f;
        let params = (heads * self.vocab_size + self.context_len) as f64 * d + self.n_layers as f64 * per_layer;
        if params > MAX_PARAMS {
            return bad(
                "d_model",
                format!("the model would have about {params:.3e} parameters, more than growlm supports ({MAX_PARAMS:.0e}); shrink its width or depth"),
            );
        }
        Ok(())
    }

    /// Number of trainable parameters, as transformers counts them (a tied head once).
    /// GPT-Neo: the query, key and value projections have no bias; GPT-Neo 125M has
    /// 125,198,592. Llama: no biases, RMSNorm scales only, no position table.
    pub fn num_params(&self) -> usize {
        self.param_specs()
            .iter()
            .map(|s| s.shape(self).iter().product::<usize>())
            .sum()
    }

    /// Parameters that take part in a matrix multiply for every token: all linear layers
    /// plus the LM head. Embedding look-ups, biases and norms are left out, as in Kaplan et
    /// al.'s `6·N` rule.
    pub fn num_matmul_params(&self) -> usize {
        let (d, a, kv, f) = (self.d_model, self.attn_dim(), self.kv_dim(), self.ffn_dim());
        let mlp = if self.components().mlp == crate::MlpKind::Swiglu {
            3 * d * f
        } else {
            2 * d * f
        };
        self.n_layers * (2 * d * a + 2 * d * kv + mlp) + d * self.vocab_size
    }

    /// Training FLOPs for one token at sequence length `seq_len` (forward + backward).
    ///
    /// `6·N + 12·L·T·A`: each matmul parameter costs 2 FLOPs forward and 4 backward
    /// (6·N), and attention adds `Q·Kᵀ` and `softmax·V`, each `2·T·A` FLOPs per token and
    /// layer forward (`4·L·T·A`), times 3 with the backward pass. `T` is the attended
    /// length (the window for local layers); the causal half is not subtracted.
    pub fn flops_per_token(&self, seq_len: usize) -> f64 {
        let n = self.num_matmul_params() as f64;
        let a = self.attn_dim() as f64;
        let attn: f64 = (0..self.n_layers)
            .map(|l| {
                let t = self.window(l).map_or(seq_len, |w| w.min(seq_len));
                12.0 * t as f64 * a
            })
            .sum();
        6.0 * n + attn
    }

    /// Training FLOPs of one optimizer step on `batch_size` sequences of `seq_len` tokens.
    pub fn flops_per_step(&self, batch_size: usize, seq_len: usize) -> f64 {
        self.flops_per_token(seq_len) * (batch_size * seq_len) as f64
    }

    /// Bytes of f32 training state: weights, gradients and AdamW's two moments
    /// ([`STATE_BYTES_PER_PARAM`] per parameter).
    pub fn train_state_bytes(&self) -> f64 {
        (self.num_params() * STATE_BYTES_PER_PARAM) as f64
    }

    /// Activation memory of one training step in f32 (bytes): Korthikanti et al. (2022)'s
    /// count for a transformer layer without recomputation, `s·b·h·(34 + 5·a·s/h)` bytes
    /// in 16-bit precision, doubled for f32, times the layers; plus the logits and their
    /// gradient.
    pub fn activation_bytes(&self, batch: usize, seq: usize) -> f64 {
        let (s, b, h, a) = (seq as f64, batch as f64, self.d_model as f64, self.n_heads as f64);
        let layer = s * b * h * (34.0 + 5.0 * a * s / h) * 2.0;
        let logits = 2.0 * s * b * self.vocab_size as f64 * 4.0;
        layer * self.n_layers as f64 + logits
    }
}

/// Bytes of training state per parameter in f32: weight, gradient, AdamW's two moments.
pub const STATE_BYTES_PER_PARAM: usize = 16;
