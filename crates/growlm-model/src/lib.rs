//! The decoder for growlm (docs/design.md §Model), GPT-Neo, Llama or Qwen2 family ([`Family`]),
//! generic over any burn backend.
//!
//! The forward pass takes an optional [`WidthMask`]: with the extra hidden dims, heads and
//! FFN units of a wide model masked, the model computes exactly the function of the small
//! model held in its leading blocks. This is what progressive dimensionality growth
//! (paper §3.3, eq. 5–7) stands on. [`GptConfig::flops_per_step`] gives the per-step
//! training FLOPs `Fs`, `Ft` of eq. 3.

mod attention_masks;
mod components;
mod config;
mod eval;
mod family;
mod host;
mod layers;
mod loss;
mod mask;
pub mod memory;
mod mlp;
mod model;
mod spec;

pub use attention_masks::{AttentionMasks, Rope};
pub use components::{Components, MlpKind, Norm, Positions};
pub use config::{AttentionLayers, GptConfig, MAX_DIM, MAX_LAYERS, MAX_PARAMS, STATE_BYTES_PER_PARAM};
pub use eval::{score, EvalResult};
pub use family::{Family, FamilyDesc, HfConfigStyle, HfDesc, HfRow, FAMILIES};
pub use host::{assign_params, named_params, param_shapes, param_values, to_host, HostTensor, NamedParams};
pub use layers::{gelu_new, Dense, Initializer, LayerNorm};
pub use loss::cross_entropy;
pub use mask::{ActiveWidth, WidthMask};
pub use model::{Attention, Block, Gpt, Mlp};
pub use spec::{Axis, ParamSpec, Role};

/// Errors of the model crate.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum ModelError {
    /// The job would allocate more memory than this machine has for it.
    #[error("{what} needs about {need_gib:.2} GiB (weights, gradients, AdamW state, activations and a growth's two models, as `cargo xtask info` estimates), but {available_gib:.2} GiB is available ({from}); lower {lower}, or set GROWLM_MEMORY=off (or a size such as 64GiB) to try anyway")]
    OutOfMemory {
        /// The job (`stage \`target\``).
        what: String,
        /// Estimated need in GiB.
        need_gib: f64,
        /// Available in GiB.
        available_gib: f64,
        /// Where the available figure comes from.
        from: String,
        /// What to lower.
        lower: String,
    },
    /// A config value is invalid.
    #[error("invalid model config `{key}`: {reason}")]
    InvalidConfig {
        /// The offending key, with its path (`stages[0].model.d_model`).
        key: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A width mask asks for more (or fewer) active units than the model has.
    #[error("width mask: {active} active {what} out of {total}; must be between 1 and {total}")]
    InvalidMask {
        /// `hidden`, `heads` or `ffn`.
        what: &'static str,
        /// Requested active count.
        active: usize,
        /// Available count.
        total: usize,
    },
    /// A tensor does not have the shape its config gives.
    #[error("tensor `{what}` has shape {got:?}, expected {expected:?}")]
    ShapeMismatch {
        /// Which tensor.
        what: String,
        /// Shape the config gives.
        expected: Vec<usize>,
        /// Shape found.
        got: Vec<usize>,
    },
    /// A text too short to score.
    #[error("the text has {tokens} tokens, fewer than one chunk of context_len = {context_len}; give a longer text")]
    TooShort {
        /// Tokens in the text.
        tokens: usize,
        /// The model's context length.
        context_len: usize,
    },
}
