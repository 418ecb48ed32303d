//! The parts of `config.json` that GPT-Neo's and Llama's share, read and written by both
//! families' configs (flattened into them, so the JSON keeps its keys and their order).

use growlm_model::{GptConfig, MAX_DIM, MAX_LAYERS};
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

    /// Refuses a config of another model type than `want`.
    pub(crate) fn expect_type(&self, want: &str) -> Result<(), String> {
        if self.model_type == want {
            Ok(())
        } else {
            Err(format!(
                "model_type is \"{}\"; this reader takes \"{want}\" models",
                self.model_type
            ))
        }
    }

    /// Refuses sizes beyond growlm's limits, naming the first: `layers` (the family's
    /// key and count) at most [`MAX_LAYERS`], then the head's sizes and `dims` (the
    /// family's other widths) at most [`MAX_DIM`]. Every count is bounded before it sizes
    /// or expands anything.
    pub(crate) fn check_sizes(&self, layers: (&str, usize), dims: &[(&str, usize)]) -> Result<(), String> {
        let head = [
            ("vocab_size", self.vocab_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("hidden_size", self.hidden_size),
        ];
        let counts = std::iter::once((layers, MAX_LAYERS)).chain(head.iter().chain(dims).map(|&d| (d, MAX_DIM)));
        for ((key, v), max) in counts {
            if v > max {
                return Err(format!("{key} = {v} is larger than growlm supports ({max})"));
            }
        }
        Ok(())
    }
}

/// Refuses a string field `key` whose value `got` is not `want`, the one value growlm
/// computes (`what` says what it is).
pub(crate) fn expect_str(key: &str, got: &str, want: &str, what: &str) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{key} is \"{got}\"; growlm computes \"{want}\" ({what})"))
    }
}

/// The fields a GPT-Neo and a Llama `config.json` share at their end: the special tokens
/// and the dtype of the weights.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigTail {
    /// Beginning-of-sequence token, if the tokenizer has one.
    #[serialize_always]
    pub bos_token_id: Option<usize>,
    /// End-of-sequence token, if the tokenizer has one.
    #[serialize_always]
    pub eos_token_id: Option<usize>,
    /// `"float32"`.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> ConfigHead {
        ConfigHead::of("LlamaForCausalLM", "llama", &GptConfig::new(40, 16, 32, 2, 4))
    }

    #[test]
    fn the_shared_checks_name_the_field_and_the_fix() {
        assert_eq!(head().expect_type("llama"), Ok(()));
        assert_eq!(
            head().expect_type("gpt_neo").unwrap_err(),
            "model_type is \"llama\"; this reader takes \"gpt_neo\" models"
        );
        assert_eq!(expect_str("hidden_act", "silu", "silu", "SwiGLU's gate"), Ok(()));
        assert_eq!(
            expect_str("hidden_act", "gelu", "silu", "SwiGLU's gate").unwrap_err(),
            "hidden_act is \"gelu\"; growlm computes \"silu\" (SwiGLU's gate)"
        );
    }

    #[test]
    fn sizes_are_bounded_layers_first_then_the_head_then_the_family() {
        let h = head();
        assert_eq!(h.check_sizes(("n", MAX_LAYERS), &[("w", MAX_DIM)]), Ok(()));
        // Every count over its limit: the layers are named first.
        let big = ConfigHead {
            vocab_size: MAX_DIM + 1,
            ..head()
        };
        let e = big.check_sizes(("num_layers", MAX_LAYERS + 1), &[("w", MAX_DIM + 1)]);
        assert_eq!(
            e.unwrap_err(),
            format!(
                "num_layers = {} is larger than growlm supports ({MAX_LAYERS})",
                MAX_LAYERS + 1
            )
        );
        // Then the head's sizes, before the family's own.
        let e = big.check_sizes(("num_layers", 1), &[("w", MAX_DIM + 1)]);
        assert!(e.unwrap_err().starts_with("vocab_size = "));
        let e = h.check_sizes(("num_layers", 1), &[("w", 3), ("intermediate_size", MAX_DIM + 1)]);
        assert!(e.unwrap_err().starts_with("intermediate_size = "));
    }
}
