//! Model families as descriptions the code asks (docs/design.md §Model; paper eq. 4 is the
//! block every family shares). A [`FamilyDesc`] says, in one place, what a family's models
//! are built from (norms, MLP, positions, biases), which config keys it takes, its Hugging
//! Face class, config style and tensor names, and which depth operators keep its function.
//! The model, its parameter table, FLOP counts, the growth operators' checks and the
//! Hugging Face import and export read it instead of branching on a name.
//!
//! Adding a family is one file in this folder (its `FamilyDesc`), one variant of
//! [`Family`] with its line in [`Family::describe`] and [`FAMILIES`], and its parity test
//! against transformers.

mod gpt_neo;
mod llama;
mod qwen2;

use serde::{Deserialize, Serialize};

use crate::{Components, ParamSpec, Role};

/// The model family: which decoder a config describes (`family = "…"` in a config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// GPT-Neo, the paper's model ([`gpt_neo`]'s description).
    #[default]
    GptNeo,
    /// Llama, also SmolLM ([`llama`]'s description).
    Llama,
    /// Qwen2: Llama with biases on the query, key and value projections ([`qwen2`]'s).
    Qwen2,
}

/// Every family's description, the default first.
pub static FAMILIES: &[&FamilyDesc] = &[&gpt_neo::GPT_NEO, &llama::LLAMA, &qwen2::QWEN2];

impl Family {
    /// What this family is.
    pub fn describe(self) -> &'static FamilyDesc {
        match self {
            Family::GptNeo => &gpt_neo::GPT_NEO,
            Family::Llama => &llama::LLAMA,
            Family::Qwen2 => &qwen2::QWEN2,
        }
    }

    /// The family whose config spelling is `key` (`"llama"`).
    pub fn from_key(key: &str) -> Option<Family> {
        FAMILIES.iter().find(|d| d.key == key).map(|d| d.family)
    }

    /// The family whose Hugging Face `model_type` is `model_type` (`"qwen2"`).
    pub fn from_model_type(model_type: &str) -> Option<Family> {
        FAMILIES
            .iter()
            .find(|d| d.hf.model_type == model_type)
            .map(|d| d.family)
    }

    /// Whether this is the default family (GPT-Neo), left out of a written config.
    pub(crate) fn is_default(&self) -> bool {
        *self == Family::GptNeo
    }

    /// The parts of this family's models as it defines them.
    pub fn components(self) -> Components {
        self.describe().parts
    }
}

/// Everything the code asks about a family.
#[derive(Debug)]
pub struct FamilyDesc {
    /// The family it describes.
    pub family: Family,
    /// Its config spelling (`family = "llama"`).
    pub key: &'static str,
    /// Its name in messages (`Llama`).
    pub name: &'static str,
    /// The prefix of its size names and legend entries (`L` in `L64x4`).
    pub short: &'static str,
    /// What its models are built from.
    pub parts: Components,
    /// Whether key/value heads may be fewer than query heads (`n_kv_heads`), each serving
    /// an equal group; otherwise `n_kv_heads` is refused.
    pub grouped_kv: bool,
    /// Whether its head may be untied from the token embedding (`tie_embeddings`, untied
    /// when absent); otherwise the head is always the embedding and the key is refused.
    pub untied_head: bool,
    /// Whether its layers may alternate global and local attention (`attention`).
    pub windowed_layers: bool,
    /// The depth operator a growth uses when a config names none.
    pub default_depth: &'static str,
    /// The depth operators that keep this family's function exactly at growth (tested
    /// against every registered operator in growlm-ops' `tests/families.rs`).
    pub preserving_depth: &'static [&'static str],
    /// How Hugging Face names it.
    pub hf: HfDesc,
}

/// The keys a family's `config.json` is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HfConfigStyle {
    /// `GPTNeoConfig`'s (`n_embd`-free: `hidden_size`, `attention_types`, …).
    GptNeo,
    /// `LlamaConfig`'s (`intermediate_size`, `num_key_value_heads`, `rope_parameters`, …),
    /// which Qwen2's config shares.
    Llama,
}

/// One tensor name: growlm's module and leaf, and the Hugging Face name (for a block's
/// tensor, after `layer_prefix` and the block index).
pub type HfRow = (&'static str, &'static str, &'static str);

/// A family's Hugging Face class, config style and tensor names.
#[derive(Debug)]
pub struct HfDesc {
    /// The model class (`LlamaForCausalLM`).
    pub architecture: &'static str,
    /// `config.json`'s `model_type` (`llama`).
    pub model_type: &'static str,
    /// Which keys its `config.json` has.
    pub config: HfConfigStyle,
    /// Llama style: whether it writes `attention_bias` and `mlp_bias` (Llama's, false;
    /// Qwen2's config has no such keys).
    pub bias_keys: bool,
    /// Llama style: whether it writes `use_sliding_window` (Qwen2's, false).
    pub sliding_window_key: bool,
    /// Tensors outside the blocks.
    pub globals: &'static [HfRow],
    /// What a block's tensor names start with (`model.layers.`).
    pub layer_prefix: &'static str,
    /// Tensors of a block.
    pub layer: &'static [HfRow],
}

impl HfDesc {
    /// The Hugging Face name of the parameter `spec` describes, and whether its layout is
    /// transposed there (linear weights: `torch.nn.Linear` stores `[d_out, d_in]`). `None`
    /// for a parameter the family has no tensor for.
    pub fn name(&self, spec: &ParamSpec) -> Option<(String, bool)> {
        let find = |rows: &[HfRow]| {
            rows.iter()
                .find(|(m, l, _)| *m == spec.module && *l == spec.leaf)
                .map(|r| r.2)
        };
        let name = match spec.layer {
            None => find(self.globals)?.to_string(),
            Some(j) => format!("{}{j}.{}", self.layer_prefix, find(self.layer)?),
        };
        Some((name, spec.role == Role::Weight))
    }
}
