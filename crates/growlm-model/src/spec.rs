//! One description of the model's parameters (docs/design.md §Model): every parameter's path,
//! its axes and what each axis reads. The growth plan (paper §3.3–3.5: which units each
//! axis copies, which axes divide by the replication count) and the Hugging Face names both
//! iterate over [`GptConfig::param_specs`], so a parameter is described once.

use serde::Serialize;

use crate::GptConfig;

/// The kind of a tensor axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Axis {
    /// Token ids (embedding rows); never grown.
    Vocab,
    /// Positions; the leading ones copied.
    Context,
    /// Hidden (residual-stream) dims.
    Hidden,
    /// Query dims (head-major); also key and value dims for GPT-Neo.
    Attn,
    /// MLP hidden units.
    Ffn,
    /// Llama's key and value dims (key/value-head-major).
    KvAttn,
}

impl Axis {
    /// This axis' length in a model of `config`.
    pub fn len(self, config: &GptConfig) -> usize {
        match self {
            Axis::Vocab => config.vocab_size,
            Axis::Context => config.context_len,
            Axis::Hidden => config.d_model,
            Axis::Attn => config.attn_dim(),
            Axis::Ffn => config.ffn_dim(),
            Axis::KvAttn => config.kv_dim(),
        }
    }
}

/// What a parameter is to the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Role {
    /// A token or position embedding table.
    Embedding,
    /// A LayerNorm's weight (`gamma`) or bias (`beta`); an RMSNorm's weight (`gamma`).
    Norm,
    /// A linear layer's weight, stored `[d_in, d_out]`.
    Weight,
    /// A linear layer's bias.
    Bias,
}

/// One parameter of the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParamSpec {
    /// Its module path (`blocks.3.attn.query.weight`), as burn names it.
    pub path: String,
    /// Its block, for a per-layer parameter.
    pub layer: Option<usize>,
    /// Its module within the block or the model (`attn.query`, `ln_mlp`, `wte`, `ln_f`).
    pub module: &'static str,
    /// Its leaf (`weight`, `bias`, `gamma`, `beta`; the module itself for an embedding).
    pub leaf: &'static str,
    /// What it is.
    pub role: Role,
    /// The kind of each axis (`[rows, cols]`, or `[n]`).
    pub axes: Vec<Axis>,
    /// Which axes the tensor reads rather than writes: the input rows of a weight, and
    /// `ln_f`, which the tied LM head reads. A growth that replicates a unit divides what
    /// such an axis reads from it by the number of copies.
    pub reads: Vec<bool>,
}

impl ParamSpec {
    /// Its shape in a model of `config`.
    pub fn shape(&self, config: &GptConfig) -> Vec<usize> {
        self.axes.iter().map(|a| a.len(config)).collect()
    }
}

/// One entry of a parameter table, its path built from where it sits.
fn spec(
    layer: Option<usize>,
    module: &'static str,
    leaf: &'static str,
    role: Role,
    axes: Vec<Axis>,
    reads: Vec<bool>,
) -> ParamSpec {
    let path = match (layer, role) {
        (None, Role::Embedding) => module.to_string(),
        (None, _) => format!("{module}.{leaf}"),
        (Some(j), _) => format!("blocks.{j}.{module}.{leaf}"),
    };
    ParamSpec {
        path,
        layer,
        module,
        leaf,
        role,
        axes,
        reads,
    }
}

impl GptConfig {
    /// Every parameter of the model: the embeddings and the final norm, then each block's
    /// norms and linear layers, then (an untied head) the LM head. GPT-Neo has learned
    /// positions, LayerNorm shifts (`beta`) and output biases; Llama has none of them;
    /// Qwen2 has biases on the query, key and value. A swapped
    /// part ([`crate::Components`]) brings its own: a position table, `beta`s, a gate.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        use Axis::*;
        let parts = self.components();
        let norm_leaves: &[&str] = match parts.norm {
            crate::Norm::LayerNorm => &["gamma", "beta"],
            crate::Norm::RmsNorm => &["gamma"],
        };
        // A block's linear layers: (module, input axis, output axis, has a bias). Key and
        // value are `n_kv_heads` wide where the family groups them; a SwiGLU MLP has a gate
        // before `mlp.up`.
        let kv = if self.describe().grouped_kv { KvAttn } else { Attn };
        let (qkv, b) = (parts.qkv_biases, parts.biases);
        let swiglu = parts.mlp == crate::MlpKind::Swiglu;
        let mut linear = vec![
            ("attn.query", Hidden, Attn, qkv),
            ("attn.key", Hidden, kv, qkv),
            ("attn.value", Hidden, kv, qkv),
            ("attn.out", Attn, Hidden, b),
        ];
        if swiglu {
            linear.push(("mlp.gate", Hidden, Ffn, b));
        }
        linear.extend([("mlp.up", Hidden, Ffn, b), ("mlp.down", Ffn, Hidden, b)]);
        let mut out = vec![spec(
            None,
            "wte",
            "wte",
            Role::Embedding,
            vec![Vocab, Hidden],
            vec![false, false],
        )];
        if parts.positions == crate::Positions::Learned {
            out.push(spec(
                None,
                "wpe",
                "wpe",
                Role::Embedding,
                vec![Context, Hidden],
                vec![false, false],
            ));
        }
        // A tied head reads `ln_f`'s output through the embedding, which cannot be scaled;
        // an untied head scales its own hidden axis.
        for leaf in norm_leaves {
            out.push(spec(None, "ln_f", leaf, Role::Norm, vec![Hidden], vec![self.tied()]));
        }
        for j in 0..self.n_layers {
            for ln in ["ln_attn", "ln_mlp"] {
                for leaf in norm_leaves {
                    out.push(spec(Some(j), ln, leaf, Role::Norm, vec![Hidden], vec![false]));
                }
            }
            for &(module, rows, cols, bias) in &linear {
                out.push(spec(
                    Some(j),
                    module,
                    "weight",
                    Role::Weight,
                    vec![rows, cols],
                    vec![true, false],
                ));
                if bias {
                    out.push(spec(Some(j), module, "bias", Role::Bias, vec![cols], vec![false]));
                }
            }
        }
        if !self.tied() {
            out.push(spec(
                None,
                "lm_head",
                "lm_head",
                Role::Embedding,
                vec![Vocab, Hidden],
                vec![false, true],
            ));
        }
        out
    }
}
