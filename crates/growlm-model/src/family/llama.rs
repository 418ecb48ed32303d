//! Llama (transformers' `LlamaForCausalLM`; also SmolLM): RMSNorm, a SwiGLU MLP, rotary
//! positions, grouped-query attention scaled by `1/√head_dim`, no biases, a tied or untied
//! head.

use super::{Family, FamilyDesc, HfConfigStyle, HfDesc, HfRow};
use crate::{Components, MlpKind, Norm, Positions};

/// Tensors outside Llama's blocks (Qwen2 names them the same).
pub(super) const GLOBALS: &[HfRow] = &[
    ("wte", "wte", "model.embed_tokens.weight"),
    ("ln_f", "gamma", "model.norm.weight"),
    ("lm_head", "lm_head", "lm_head.weight"),
];

/// Llama.
pub(super) static LLAMA: FamilyDesc = FamilyDesc {
    family: Family::Llama,
    key: "llama",
    name: "Llama",
    short: "L",
    parts: Components {
        norm: Norm::RmsNorm,
        mlp: MlpKind::Swiglu,
        positions: Positions::Rotary,
        biases: false,
        qkv_biases: false,
        scaled_scores: true,
    },
    grouped_kv: true,
    untied_head: true,
    windowed_layers: false,
    // `redundant` zeroes the new block's norms, and a SwiGLU MLP behind a zero RMSNorm gets
    // no gradient at all, ever (growlm-ops' tests/llama.rs; docs/operators.md): block
    // expansion (LLaMA-Pro) zeroes the output projections instead.
    default_depth: "expand",
    preserving_depth: &["redundant", "identity", "msg", "expand"],
    hf: HfDesc {
        architecture: "LlamaForCausalLM",
        model_type: "llama",
        config: HfConfigStyle::Llama,
        bias_keys: true,
        sliding_window_key: false,
        globals: GLOBALS,
        layer_prefix: "model.layers.",
        layer: &[
            ("ln_attn", "gamma", "input_layernorm.weight"),
            ("attn.query", "weight", "self_attn.q_proj.weight"),
            ("attn.key", "weight", "self_attn.k_proj.weight"),
            ("attn.value", "weight", "self_attn.v_proj.weight"),
            ("attn.out", "weight", "self_attn.o_proj.weight"),
            ("ln_mlp", "gamma", "post_attention_layernorm.weight"),
            ("mlp.gate", "weight", "mlp.gate_proj.weight"),
            ("mlp.up", "weight", "mlp.up_proj.weight"),
            ("mlp.down", "weight", "mlp.down_proj.weight"),
        ],
    },
};
