//! Hugging Face interop for growlm (docs/design.md §Interop, §Model): a growlm model written
//! as, and read from, a `transformers` directory of its family — `config.json` in the
//! family's config keys, `model.safetensors` with its class's tensor names and layouts, and
//! the tokenizer's files. What each family is called there comes from its description
//! ([`growlm_model::FamilyDesc::hf`]): `GPTNeoForCausalLM`, `LlamaForCausalLM`,
//! `Qwen2ForCausalLM`.
//!
//! growlm's decoder computes what the family's class computes for the same weights (see
//! `growlm_model`), so a model moves across unchanged: the paper notes that public
//! checkpoints can be the source model of a growth (§1, §6), and grown models are evaluated
//! with the ecosystem's harnesses.
//!
//! The crate works on host tensors named by growlm's module paths (`blocks.3.attn.query.weight`,
//! as [`growlm_ops::named_params`] reads them), so it is independent of the backend.

mod config;
mod dir;
mod llama;
mod shared;
mod weights;

pub use config::HfConfig;
pub use dir::{export_model, import_model, read_dir, write_dir, HfFile, HfModel};
pub use llama::LlamaHf;
pub use shared::{ConfigHead, ConfigTail};
pub use weights::{from_hf_tensors, hf_name, read_safetensors, to_hf_tensors, write_safetensors};

use std::path::PathBuf;

/// Errors of Hugging Face import and export; each names the file, the field or the tensor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HfError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `config.json` is not a GPT-Neo config growlm can build.
    #[error("{path}: {reason}")]
    Config {
        /// The `config.json`.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The Hugging Face config and growlm's model config disagree on a field.
    #[error("{path}: `{field}` is {found} but the model config has {expected}; make them agree (edit the TOML's model or pick a matching checkpoint)")]
    Mismatch {
        /// The `config.json`.
        path: PathBuf,
        /// The GPT-Neo field (`hidden_size`, `num_layers`, …).
        field: &'static str,
        /// Value in `config.json`.
        found: String,
        /// Value growlm's config gives.
        expected: String,
    },
    /// The safetensors file cannot be parsed (truncated, garbage).
    #[error("{path}: not a readable safetensors file ({reason}); re-export or re-download it")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// A tensor growlm needs is absent.
    #[error("{path}: tensor `{tensor}` is missing")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// Its Hugging Face name.
        tensor: String,
    },
    /// A tensor has the wrong shape or dtype, or is not one growlm knows.
    #[error("{path}: tensor `{tensor}`: {reason}")]
    BadTensor {
        /// The file.
        path: PathBuf,
        /// Its Hugging Face name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// A model config growlm can train but GPT-Neo cannot express.
    #[error("this model cannot be written as GPT-Neo: {0}")]
    NotGptNeo(String),
    /// A model with a part swapped away from its family's (an ablation) has no Hugging
    /// Face architecture.
    #[error("this model swaps a part of its family ({0}), an ablation no Hugging Face architecture describes; export a model with its family's parts (remove the swap)")]
    Variant(String),
    /// The model config is invalid.
    #[error(transparent)]
    Model(#[from] growlm_model::ModelError),
}

impl HfError {
    fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
