//! What a decoder is built from (docs/design.md §Model; paper eq. 4): its norm, its MLP, how it
//! knows positions, whether its output projections carry biases and whether attention
//! scores are scaled. A [`crate::Family`] names one set of them; a config may swap the first three
//! one at a time (`norm`, `mlp`, `positions`), for the ablations that ask which part of a
//! family carries a result (issue "growth across scale", item 4). The model, its parameter
//! list and its FLOP count ask [`GptConfig::components`]; a swapped model has no Hugging
//! Face equivalent and is not exported.

use serde::{Deserialize, Serialize};

use crate::GptConfig;

/// The norm before attention, before the MLP and at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// LayerNorm: centred, scaled and shifted (`gamma`, `beta`). GPT-Neo's.
    LayerNorm,
    /// RMSNorm: scaled only (`gamma`). Llama's.
    RmsNorm,
}

/// The MLP of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MlpKind {
    /// `down(gelu_new(up(x)))`. GPT-Neo's.
    Gelu,
    /// `down(silu(gate(x)) · up(x))`. Llama's.
    Swiglu,
}

/// How the model knows where a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Positions {
    /// A learned table `[context_len, d_model]` added to the token embedding. GPT-Neo's.
    Learned,
    /// Rotary positions applied to queries and keys (RoPE). Llama's.
    Rotary,
}

/// The parts a decoder is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Components {
    /// The norms.
    pub norm: Norm,
    /// The MLP.
    pub mlp: MlpKind,
    /// The positions.
    pub positions: Positions,
    /// Biases on the attention output and MLP projections (GPT-Neo's; Llama has none).
    pub biases: bool,
    /// Biases on the query, key and value projections (Qwen2's).
    pub qkv_biases: bool,
    /// Attention scores divided by `√head_dim` (Llama's; GPT-Neo's are not).
    pub scaled_scores: bool,
}

impl GptConfig {
    /// The parts of this model: its family's, with the config's swaps (`norm`, `mlp`,
    /// `positions`) applied.
    pub fn components(&self) -> Components {
        let f = self.family.components();
        Components {
            norm: self.norm.unwrap_or(f.norm),
            mlp: self.mlp.unwrap_or(f.mlp),
            positions: self.positions.unwrap_or(f.positions),
            ..f
        }
    }

    /// Whether a part is swapped away from the family's (such a model is an ablation, with
    /// no Hugging Face equivalent).
    pub fn is_variant(&self) -> bool {
        self.components() != self.family.components()
    }

    /// The swaps, as config keys (`norm = "layer_norm"`, …), for messages and names.
    pub fn swaps(&self) -> Vec<String> {
        let (c, f) = (self.components(), self.family.components());
        let mut out = Vec::new();
        if c.norm != f.norm {
            out.push(format!("norm = \"{}\"", c.norm.key()));
        }
        if c.mlp != f.mlp {
            out.push(format!("mlp = \"{}\"", c.mlp.key()));
        }
        if c.positions != f.positions {
            out.push(format!("positions = \"{}\"", c.positions.key()));
        }
        out
    }
}

impl Norm {
    /// The config spelling.
    pub fn key(self) -> &'static str {
        match self {
            Norm::LayerNorm => "layer_norm",
            Norm::RmsNorm => "rms_norm",
        }
    }
}

impl MlpKind {
    /// The config spelling.
    pub fn key(self) -> &'static str {
        match self {
            MlpKind::Gelu => "gelu",
            MlpKind::Swiglu => "swiglu",
        }
    }
}

impl Positions {
    /// The config spelling.
    pub fn key(self) -> &'static str {
        match self {
            Positions::Learned => "learned",
            Positions::Rotary => "rotary",
        }
    }
}
