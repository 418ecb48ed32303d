//! `config.json` in `LlamaConfig`'s keys, to and from growlm's [`GptConfig`], for every
//! family whose description has that config style ([`HfConfigStyle::Llama`]): Llama
//! (`family = "llama"`) and Qwen2 (`family = "qwen2"`, the same keys without
//! `attention_bias`/`mlp_bias`, with `use_sliding_window`). The `model_type` picks the
//! family; a field growlm does not compute is refused by name.

use std::path::Path;

use growlm_model::{Family, GptConfig, HfConfigStyle};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::first_mismatch;
use crate::shared::{expect_str, ConfigHead, ConfigTail};
use crate::HfError;

/// The fields of `LlamaConfig` that decide the function, plus the bookkeeping fields
/// `transformers` reads to pick the model class.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaHf {
    /// The class (`["LlamaForCausalLM"]`, `"llama"`) and the sizes.
    #[serde(flatten)]
    pub head: ConfigHead,
    /// SwiGLU width.
    pub intermediate_size: usize,
    /// Number of blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (absent: as many as query heads).
    #[serialize_always]
    pub num_key_value_heads: Option<usize>,
    /// Width of a head (absent: `hidden_size / num_attention_heads`).
    pub head_dim: Option<usize>,
    /// `"silu"`.
    #[serde(default = "silu")]
    pub hidden_act: String,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// The RoPE base, as transformers up to 4.x writes it.
    pub rope_theta: Option<f64>,
    /// The RoPE settings, as transformers 5 writes them (`rope_theta`, `rope_type`).
    pub rope_parameters: Option<Value>,
    /// RoPE scaling (Llama 3.1's long-context rule); growlm computes none.
    pub rope_scaling: Option<Value>,
    /// Llama: biases on q/k/v/o; growlm's Llama computes none (Qwen2 has no such key: its
    /// q/k/v biases are always there).
    pub attention_bias: Option<bool>,
    /// Llama: biases in the MLP; growlm computes none.
    pub mlp_bias: Option<bool>,
    /// Qwen2: sliding-window attention in the upper layers; growlm computes full attention
    /// only.
    pub use_sliding_window: Option<bool>,
    /// Whether the LM head is the token embedding.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Std of the initialisation.
    #[serde(default = "init_range")]
    pub initializer_range: f64,
    /// Attention dropout: growlm writes 0.
    #[serde(default)]
    pub attention_dropout: f64,
    /// The special tokens and the dtype.
    #[serde(flatten)]
    pub tail: ConfigTail,
}

fn silu() -> String {
    "silu".into()
}
fn init_range() -> f64 {
    0.02
}

impl LlamaHf {
    /// The config of `model`, of a family with Llama's config keys (`eos`: the
    /// tokenizer's end-of-text id, if any).
    pub fn from_gpt(model: &GptConfig, eos: Option<usize>) -> Result<Self, HfError> {
        model.validate("model")?;
        let family = model.describe();
        if family.hf.config != HfConfigStyle::Llama {
            return Err(HfError::NotGptNeo(format!(
                "a {} model is not written with Llama's config keys",
                family.name
            )));
        }
        let keys = &family.hf;
        Ok(Self {
            head: ConfigHead::of(family.hf.architecture, family.hf.model_type, model),
            intermediate_size: model.ffn_dim(),
            num_hidden_layers: model.n_layers,
            num_attention_heads: model.n_heads,
            num_key_value_heads: Some(model.kv_heads()),
            head_dim: Some(model.head_dim()),
            hidden_act: silu(),
            rms_norm_eps: model.layer_norm_eps,
            // Both spellings, so transformers 4 and 5 read the same base.
            rope_theta: Some(model.theta()),
            rope_parameters: Some(serde_json::json!({"rope_theta": model.theta(), "rope_type": "default"})),
            rope_scaling: None,
            attention_bias: keys.bias_keys.then_some(false),
            mlp_bias: keys.bias_keys.then_some(false),
            use_sliding_window: keys.sliding_window_key.then_some(false),
            tie_word_embeddings: model.tied(),
            initializer_range: model.init_std,
            attention_dropout: 0.0,
            tail: ConfigTail::float32(eos),
        })
    }

    /// The RoPE base: `rope_parameters.rope_theta`, else `rope_theta`, else 10,000.
    fn theta(&self) -> Result<f64, String> {
        if let Some(p) = &self.rope_parameters {
            if let Some(kind) = p.get("rope_type").and_then(|t| t.as_str()) {
                if kind != "default" {
                    return Err(format!(
                        "rope_parameters.rope_type is \"{kind}\"; growlm computes the default RoPE only"
                    ));
                }
            }
            if let Some(t) = p.get("rope_theta").and_then(|t| t.as_f64()) {
                return Ok(t);
            }
        }
        Ok(self.rope_theta.unwrap_or(10_000.0))
    }

    /// The growlm model config this config describes, its family named by `model_type`;
    /// `path` names the file in errors. Refuses, naming the field, what growlm does not
    /// compute.
    pub fn to_gpt(&self, path: &Path) -> Result<GptConfig, HfError> {
        let bad = |reason: String| HfError::Config {
            path: path.to_path_buf(),
            reason,
        };
        let family = Family::from_model_type(&self.head.model_type)
            .filter(|f| f.describe().hf.config == HfConfigStyle::Llama)
            .ok_or_else(|| {
                bad(format!(
                    "model_type is \"{}\"; this reader takes {}",
                    self.head.model_type,
                    llama_types()
                ))
            })?;
        expect_str("hidden_act", &self.hidden_act, "silu", "SwiGLU's gate").map_err(bad)?;
        for (field, on) in [("attention_bias", self.attention_bias), ("mlp_bias", self.mlp_bias)] {
            if on == Some(true) {
                return Err(bad(format!(
                    "{field} is true; growlm's {} has no biases there",
                    family.describe().name
                )));
            }
        }
        if self.use_sliding_window == Some(true) {
            return Err(bad(
                "use_sliding_window is true; growlm computes full attention in every layer".into(),
            ));
        }
        if self.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(bad("rope_scaling is set; growlm computes unscaled RoPE only".into()));
        }
        self.head
            .check_sizes(
                ("num_hidden_layers", self.num_hidden_layers),
                &[
                    ("intermediate_size", self.intermediate_size),
                    ("num_attention_heads", self.num_attention_heads),
                ],
            )
            .map_err(bad)?;
        let theta = self.theta().map_err(bad)?;
        let cfg = GptConfig {
            family,
            head_dim: self.head_dim,
            ffn_dim: Some(self.intermediate_size),
            layer_norm_eps: self.rms_norm_eps,
            init_std: self.initializer_range,
            n_kv_heads: Some(self.num_key_value_heads.unwrap_or(self.num_attention_heads)),
            rope_theta: Some(theta),
            tie_embeddings: Some(self.tie_word_embeddings),
            ..GptConfig::new(
                self.head.vocab_size,
                self.head.max_position_embeddings,
                self.head.hidden_size,
                self.num_hidden_layers,
                self.num_attention_heads,
            )
        };
        cfg.validate("config.json").map_err(|e| bad(e.to_string()))?;
        Ok(cfg)
    }
}

impl LlamaHf {
    /// Checks that the model this config describes is `expected`, naming the first field
    /// that differs.
    pub fn check_matches(&self, expected: &GptConfig, path: &Path) -> Result<(), HfError> {
        let got = self.to_gpt(path)?;
        first_mismatch(
            path,
            &got,
            expected,
            &[
                ("num_hidden_layers", |c| c.n_layers.to_string()),
                ("num_attention_heads", |c| c.n_heads.to_string()),
                ("num_key_value_heads", |c| c.kv_heads().to_string()),
                ("intermediate_size", |c| c.ffn_dim().to_string()),
                ("rope_theta", |c| c.theta().to_string()),
                ("tie_word_embeddings", |c| c.tied().to_string()),
            ],
        )
    }
}

/// The `model_type`s of the families with Llama's config keys, for messages.
fn llama_types() -> String {
    growlm_model::FAMILIES
        .iter()
        .filter(|d| d.hf.config == HfConfigStyle::Llama)
        .map(|d| format!("\"{}\"", d.hf.model_type))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The family `config.json`'s `model_type` says the directory holds, or a refusal naming
/// the type and the ones growlm reads.
pub(crate) fn model_type(value: &Value, path: &Path) -> Result<Family, HfError> {
    let kind = value.get("model_type").and_then(|t| t.as_str()).unwrap_or("");
    Family::from_model_type(kind).ok_or_else(|| HfError::Config {
        path: path.to_path_buf(),
        reason: format!(
            "model_type is \"{kind}\"; growlm reads {}",
            growlm_model::FAMILIES
                .iter()
                .map(|d| format!("{} (\"{}\")", d.name, d.hf.model_type))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}
