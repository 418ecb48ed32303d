//! GPT-Neo, the paper's model (paper §4.1; transformers' `GPTNeoForCausalLM`): LayerNorm,
//! a GELU MLP, learned positions, biases on the attention output and the MLP, a head tied
//! to the embedding, unscaled attention scores, and layers that may alternate global and
//! local attention.

use super::{Family, FamilyDesc, HfConfigStyle, HfDesc};
use crate::{Components, MlpKind, Norm, Positions};

/// GPT-Neo.
pub(super) static GPT_NEO: FamilyDesc = FamilyDesc {
    family: Family::GptNeo,
    key: "gpt-neo",
    name: "GPT-Neo",
    short: "d",
    parts: Components {
        norm: Norm::LayerNorm,
        mlp: MlpKind::Gelu,
        positions: Positions::Learned,
        biases: true,
        qkv_biases: false,
        scaled_scores: false,
    },
    grouped_kv: false,
    untied_head: false,
    windowed_layers: true,
    // The paper's operator: copies with zero norms and biases.
    default_depth: "redundant",
    preserving_depth: &["redundant", "identity", "msg", "expand"],
    hf: HfDesc {
        architecture: "GPTNeoForCausalLM",
        model_type: "gpt_neo",
        config: HfConfigStyle::GptNeo,
        bias_keys: false,
        sliding_window_key: false,
        globals: &[
            ("wte", "wte", "transformer.wte.weight"),
            ("wpe", "wpe", "transformer.wpe.weight"),
            ("ln_f", "gamma", "transformer.ln_f.weight"),
            ("ln_f", "beta", "transformer.ln_f.bias"),
        ],
        layer_prefix: "transformer.h.",
        layer: &[
            ("ln_attn", "gamma", "ln_1.weight"),
            ("ln_attn", "beta", "ln_1.bias"),
            ("attn.query", "weight", "attn.attention.q_proj.weight"),
            ("attn.key", "weight", "attn.attention.k_proj.weight"),
            ("attn.value", "weight", "attn.attention.v_proj.weight"),
            ("attn.out", "weight", "attn.attention.out_proj.weight"),
            ("attn.out", "bias", "attn.attention.out_proj.bias"),
            ("ln_mlp", "gamma", "ln_2.weight"),
            ("ln_mlp", "beta", "ln_2.bias"),
            ("mlp.up", "weight", "mlp.c_fc.weight"),
            ("mlp.up", "bias", "mlp.c_fc.bias"),
            ("mlp.down", "weight", "mlp.c_proj.weight"),
            ("mlp.down", "bias", "mlp.c_proj.bias"),
        ],
    },
};
