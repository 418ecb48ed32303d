//! The parts of `config.json` that GPT-Neo's and Llama's share, read and written by both
//! families' configs (flattened into them, so the JSON keeps its keys and their order).

use growlm_model::GptConfig;
use serde::{Deserialize, Serialize};

/// The fields a GPT-Neo and a Llama `config.json` share at their start: the model class
/// `transformers` picks and the sizes. (The position count is GPT-Neo's learned positions
/// and Llama's longest sequence: growlm's `context_len` either way.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigHead {
    /// `["GPTNeoForCausalLM"]` or `["LlamaForCausalLM"]`.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// `"gpt_neo"` or `"llama"`.
    pub model_type: String,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Number of positions (growlm's `context_len`).
    pub max_position_embeddings: usize,
    /// Residual width.
    pub hidden_size: usize,
}

impl ConfigHead {
    /// The head growlm writes for `architecture` of `model`.
    pub fn of(architecture: &str, model_type: &str, model: &GptConfig) -> Self {
        Self {
            architectures: vec![architecture.into()],
            model_type: model_type.into(),
            vocab_size: model.vocab_size,
            max_position_embeddings: model.context_len,
            hidden_size: model.d_model,
        }
    }
}

/// The fields a GPT-Neo and a Llama `config.json` share at their end: the special tokens
/// and the dtype of the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigTail {
    /// Beginning-of-sequence token, if the tokenizer has one.
    #[serde(default)]
    pub bos_token_id: Option<usize>,
    /// End-of-sequence token, if the tokenizer has one.
    #[serde(default)]
    pub eos_token_id: Option<usize>,
    /// `"float32"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torch_dtype: Option<String>,
}

impl ConfigTail {
    /// What growlm writes: `eos` as both special tokens, float32 weights.
    pub fn float32(eos: Option<usize>) -> Self {
        Self {
            bos_token_id: eos,
            eos_token_id: eos,
            torch_dtype: Some("float32".into()),
        }
    }
}
