//! Qwen2 (transformers' `Qwen2ForCausalLM`): Llama with biases on the query, key and value
//! projections (none on the output projection or the MLP), written with Qwen2's config keys
//! (`use_sliding_window`, no `attention_bias`).

use super::{Family, FamilyDesc, HfConfigStyle, HfDesc};
use crate::{Components, MlpKind, Norm, Positions};

/// Qwen2.
pub(super) static QWEN2: FamilyDesc = FamilyDesc {
    family: Family::Qwen2,
    key: "qwen2",
    name: "Qwen2",
    short: "Q",
    parts: Components {
        norm: Norm::RmsNorm,
        mlp: MlpKind::Swiglu,
        positions: Positions::Rotary,
        biases: false,
        qkv_biases: true,
        scaled_scores: true,
    },
    grouped_kv: true,
    untied_head: true,
    windowed_layers: false,
    // As Llama: a SwiGLU MLP behind a zeroed norm never learns.
    default_depth: "expand",
    preserving_depth: &["redundant", "identity", "msg", "expand"],
    hf: HfDesc {
        architecture: "Qwen2ForCausalLM",
        model_type: "qwen2",
        config: HfConfigStyle::Llama,
        bias_keys: false,
        sliding_window_key: true,
        globals: super::llama::GLOBALS,
        layer_prefix: "model.layers.",
        layer: &[
            ("ln_attn", "gamma", "input_layernorm.weight"),
            ("attn.query", "weight", "self_attn.q_proj.weight"),
            ("attn.query", "bias", "self_attn.q_proj.bias"),
            ("attn.key", "weight", "self_attn.k_proj.weight"),
            ("attn.key", "bias", "self_attn.k_proj.bias"),
            ("attn.value", "weight", "self_attn.v_proj.weight"),
            ("attn.value", "bias", "self_attn.v_proj.bias"),
            ("attn.out", "weight", "self_attn.o_proj.weight"),
            ("ln_mlp", "gamma", "post_attention_layernorm.weight"),
            ("mlp.gate", "weight", "mlp.gate_proj.weight"),
            ("mlp.up", "weight", "mlp.up_proj.weight"),
            ("mlp.down", "weight", "mlp.down_proj.weight"),
        ],
    },
};
