//! `config.json` of a `transformers` GPT-Neo model (`GPTNeoConfig`), to and from growlm's
//! [`GptConfig`].

use std::path::Path;

use growlm_model::{AttentionLayers, GptConfig, MAX_LAYERS};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::shared::{expect_str, ConfigHead, ConfigTail};
use crate::HfError;

/// The largest `config.json` growlm reads (1 MiB; a GPT-Neo's is under 2 KB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The fields of `GPTNeoConfig` that decide the function a GPT-Neo computes, plus the
/// bookkeeping fields `transformers` reads to pick the model class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HfConfig {
    /// The class (`["GPTNeoForCausalLM"]`, `"gpt_neo"`) and the sizes.
    #[serde(flatten)]
    pub head: ConfigHead,
    /// Number of blocks.
    pub num_layers: usize,
    /// Number of attention heads.
    pub num_heads: usize,
    /// MLP width; `null` means `4 · hidden_size`.
    #[serde(default)]
    pub intermediate_size: Option<usize>,
    /// `[[["global", "local"], 6]]`: patterns, each repeated a number of times.
    pub attention_types: Vec<(Vec<String>, usize)>,
    /// Window of the local layers.
    pub window_size: usize,
    /// `"gelu_new"`, the tanh GELU growlm computes.
    pub activation_function: String,
    /// LayerNorm epsilon.
    pub layer_norm_epsilon: f64,
    /// Std of the initialisation (used by `transformers` only for fresh weights).
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    /// Dropouts: growlm trains without dropout and writes 0.
    #[serde(default)]
    pub embed_dropout: f64,
    /// Attention dropout.
    #[serde(default)]
    pub attention_dropout: f64,
    /// Residual dropout.
    #[serde(default)]
    pub resid_dropout: f64,
    /// Whether the LM head is the token embedding (growlm's head always is).
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
    /// The special tokens and the dtype.
    #[serde(flatten)]
    pub tail: ConfigTail,
}

fn default_init_range() -> f64 {
    0.02
}
fn yes() -> bool {
    true
}

/// GPT-Neo's default window, written for all-global models (where it is unused).
const DEFAULT_WINDOW: usize = 256;

impl HfConfig {
    /// The GPT-Neo config of `model`; `eos` is the tokenizer's end-of-text id, if any.
    /// Refuses what GPT-Neo cannot express: attention width other than `d_model`.
    pub fn from_gpt(model: &GptConfig, eos: Option<usize>) -> Result<Self, HfError> {
        model.validate("model")?;
        if model.attn_dim() != model.d_model {
            return Err(HfError::NotGptNeo(format!(
                "n_heads · head_dim = {} differs from d_model = {}; GPT-Neo's attention is d_model wide",
                model.attn_dim(),
                model.d_model
            )));
        }
        let g = || "global".to_string();
        let (attention_types, window_size) = match model.attention {
            AttentionLayers::Global => (vec![(vec![g()], model.n_layers)], DEFAULT_WINDOW),
            AttentionLayers::Alternating { window } => {
                let mut t = vec![(vec![g(), "local".to_string()], model.n_layers / 2)];
                if model.n_layers % 2 == 1 {
                    t.push((vec![g()], 1));
                }
                t.retain(|(_, n)| *n > 0);
                (t, window)
            }
        };
        Ok(Self {
            head: ConfigHead::of("GPTNeoForCausalLM", "gpt_neo", model),
            num_layers: model.n_layers,
            num_heads: model.n_heads,
            intermediate_size: Some(model.ffn_dim()),
            attention_types,
            window_size,
            activation_function: "gelu_new".into(),
            layer_norm_epsilon: model.layer_norm_eps,
            initializer_range: model.init_std,
            embed_dropout: 0.0,
            attention_dropout: 0.0,
            resid_dropout: 0.0,
            tie_word_embeddings: true,
            tail: ConfigTail::float32(eos),
        })
    }

    /// The per-layer attention kinds, `attention_types` expanded.
    pub fn layer_kinds(&self) -> Vec<String> {
        self.attention_types
            .iter()
            .flat_map(|(pattern, n)| std::iter::repeat_n(pattern.clone(), *n).flatten())
            .collect()
    }

    /// The growlm model config this GPT-Neo config describes; `path` names the file in
    /// errors. Refuses what growlm does not compute (another activation, an untied head,
    /// an attention pattern other than all-global or global/local alternating).
    pub fn to_gpt(&self, path: &Path) -> Result<GptConfig, HfError> {
        let bad = |reason: String| HfError::Config {
            path: path.to_path_buf(),
            reason,
        };
        self.head.expect_type("gpt_neo").map_err(bad)?;
        expect_str(
            "activation_function",
            &self.activation_function,
            "gelu_new",
            "the tanh GELU",
        )
        .map_err(bad)?;
        if !self.tie_word_embeddings {
            return Err(bad(
                "tie_word_embeddings is false; growlm's LM head is the token embedding".into(),
            ));
        }
        if self.num_heads == 0 || !self.head.hidden_size.is_multiple_of(self.num_heads) {
            return Err(bad(format!(
                "hidden_size = {} is not a multiple of num_heads = {}",
                self.head.hidden_size, self.num_heads
            )));
        }
        // The layer pattern is expanded only once it is known to cover at most MAX_LAYERS
        // layers.
        self.head
            .check_sizes(
                ("num_layers", self.num_layers),
                &[
                    ("num_heads", self.num_heads),
                    ("intermediate_size", self.intermediate_size.unwrap_or(0)),
                    ("window_size", self.window_size),
                ],
            )
            .map_err(bad)?;
        let covered = self.attention_types.iter().try_fold(0usize, |sum, (pattern, n)| {
            pattern
                .len()
                .checked_mul(*n)
                .and_then(|k| sum.checked_add(k))
                .filter(|&t| t <= MAX_LAYERS)
        });
        let Some(covered) = covered else {
            return Err(bad(format!(
                "attention_types covers more than {MAX_LAYERS} layers (growlm's limit); num_layers is {}",
                self.num_layers
            )));
        };
        if covered != self.num_layers {
            return Err(bad(format!(
                "attention_types covers {covered} layers but num_layers is {}",
                self.num_layers
            )));
        }
        let kinds = self.layer_kinds();
        if kinds.len() != self.num_layers {
            return Err(bad(format!(
                "attention_types covers {} layers but num_layers is {}",
                kinds.len(),
                self.num_layers
            )));
        }
        let global = |k: &String| k == "global";
        let attention = if kinds.iter().all(global) {
            AttentionLayers::Global
        } else if kinds.iter().enumerate().all(|(i, k)| global(k) == (i % 2 == 0))
            && kinds.iter().all(|k| global(k) || k == "local")
        {
            AttentionLayers::Alternating {
                window: self.window_size,
            }
        } else {
            return Err(bad(format!(
                "attention pattern {kinds:?} is not supported: growlm builds all-global layers or global/local alternating from layer 0"
            )));
        };
        let mut cfg = GptConfig::new(
            self.head.vocab_size,
            self.head.max_position_embeddings,
            self.head.hidden_size,
            self.num_layers,
            self.num_heads,
        );
        cfg.ffn_dim = self.intermediate_size.filter(|f| *f != 4 * self.head.hidden_size);
        cfg.attention = attention;
        cfg.layer_norm_eps = self.layer_norm_epsilon;
        cfg.init_std = self.initializer_range;
        cfg.validate("config.json").map_err(|e| bad(e.to_string()))?;
        Ok(cfg)
    }

    /// Reads `config.json`.
    pub fn read(path: &Path) -> Result<Self, HfError> {
        Self::from_value(Self::read_value(path)?, path)
    }

    /// Reads a `config.json` as JSON (at most 1 MiB).
    pub fn read_value(path: &Path) -> Result<Value, HfError> {
        let bytes =
            growlm_fs::read_limited(path, MAX_CONFIG_BYTES, "a model's config.json").map_err(HfError::io(path))?;
        let text = String::from_utf8(bytes).map_err(|e| HfError::Config {
            path: path.to_path_buf(),
            reason: format!("not UTF-8 text: {e}"),
        })?;
        serde_json::from_str(&text).map_err(|e| HfError::Config {
            path: path.to_path_buf(),
            reason: format!("not JSON: {e}"),
        })
    }

    /// A GPT-Neo config from `config.json`'s JSON.
    pub fn from_value(value: Value, path: &Path) -> Result<Self, HfError> {
        serde_json::from_value(value).map_err(|e| HfError::Config {
            path: path.to_path_buf(),
            reason: format!("not a GPT-Neo config: {e}"),
        })
    }

    /// Checks that the model this config describes is `expected`, naming the first field
    /// that differs.
    pub fn check_matches(&self, expected: &GptConfig, path: &Path) -> Result<(), HfError> {
        let got = self.to_gpt(path)?;
        if expected.attn_dim() != expected.d_model {
            return Err(HfError::NotGptNeo(format!(
                "the model config's n_heads · head_dim = {} differs from d_model = {}",
                expected.attn_dim(),
                expected.d_model
            )));
        }
        first_mismatch(
            path,
            &got,
            expected,
            &[
                ("num_layers", |c| c.n_layers.to_string()),
                ("num_heads", |c| c.n_heads.to_string()),
                ("intermediate_size", |c| c.ffn_dim().to_string()),
                ("attention_types/window_size", |c| format!("{:?}", c.attention)),
                ("layer_norm_epsilon", |c| c.layer_norm_eps.to_string()),
            ],
        )
    }
}

/// A `config.json` field and how to read its value from a model config.
pub(crate) type Field = (&'static str, fn(&GptConfig) -> String);

/// The fields every family compares first: the family, then the sizes of the shared head.
const SHARED_FIELDS: [Field; 4] = [
    ("model_type", |c| format!("{:?}", c.family)),
    ("vocab_size", |c| c.vocab_size.to_string()),
    ("max_position_embeddings", |c| c.context_len.to_string()),
    ("hidden_size", |c| c.d_model.to_string()),
];

/// The first field whose value in `got` differs from `expected`'s, as a
/// [`HfError::Mismatch`]: the shared fields, then the family's own `fields`.
pub(crate) fn first_mismatch(
    path: &Path,
    got: &GptConfig,
    expected: &GptConfig,
    fields: &[Field],
) -> Result<(), HfError> {
    match SHARED_FIELDS
        .iter()
        .chain(fields)
        .map(|(field, read)| (*field, read(got), read(expected)))
        .find(|(_, found, want)| found != want)
    {
        Some((field, found, expected)) => Err(HfError::Mismatch {
            path: path.to_path_buf(),
            field,
            found,
            expected,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_global_and_alternating_models() {
        let p = Path::new("config.json");
        let global = GptConfig::new(256, 64, 32, 3, 4);
        let mut alt = GptConfig::new(300, 64, 32, 5, 2).with_ffn_dim(100);
        alt.attention = AttentionLayers::Alternating { window: 16 };
        for m in [global, alt] {
            let hf = HfConfig::from_gpt(&m, None).unwrap();
            assert_eq!(hf.layer_kinds().len(), m.n_layers);
            let json = serde_json::to_string(&hf).unwrap();
            let back: HfConfig = serde_json::from_str(&json).unwrap();
            let mut want = m.clone();
            want.ffn_dim = m.ffn_dim.filter(|f| *f != 4 * m.d_model);
            assert_eq!(back.to_gpt(p).unwrap(), want);
            back.check_matches(&m, p).unwrap();
        }
    }

    #[test]
    fn gpt_neo_125m_config_reads() {
        // The fields of EleutherAI/gpt-neo-125m's config.json that growlm reads.
        let json = r#"{"activation_function": "gelu_new", "architectures": ["GPTNeoForCausalLM"],
          "attention_dropout": 0, "attention_layers": ["global","local"],
          "attention_types": [[["global", "local"], 6]], "bos_token_id": 50256,
          "embed_dropout": 0, "eos_token_id": 50256, "hidden_size": 768,
          "initializer_range": 0.02, "intermediate_size": null, "layer_norm_epsilon": 1e-05,
          "max_position_embeddings": 2048, "model_type": "gpt_neo", "num_heads": 12,
          "num_layers": 12, "resid_dropout": 0, "vocab_size": 50257, "window_size": 256}"#;
        let hf: HfConfig = serde_json::from_str(json).unwrap();
        let cfg = hf.to_gpt(Path::new("c.json")).unwrap();
        assert_eq!(cfg.attention, AttentionLayers::Alternating { window: 256 });
        assert_eq!(cfg.num_params(), 125_198_592);
    }

    #[test]
    fn a_differing_field_is_named() {
        let m = GptConfig::new(256, 64, 32, 2, 4);
        let hf = HfConfig::from_gpt(&GptConfig::new(256, 64, 32, 3, 4), None).unwrap();
        let e = hf
            .check_matches(&m, Path::new("x/config.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`num_layers` is 3") && e.contains("has 2"), "{e}");
        let mut other = hf.clone();
        other.activation_function = "gelu".into();
        let e = other.to_gpt(Path::new("c")).unwrap_err().to_string();
        assert!(e.contains("activation_function"), "{e}");
        other = hf;
        other.attention_types = vec![(vec!["local".into(), "global".into()], 1), (vec!["global".into()], 1)];
        let e = other.to_gpt(Path::new("c")).unwrap_err().to_string();
        assert!(e.contains("attention pattern"), "{e}");
        let wide = GptConfig::new(256, 64, 32, 2, 4).with_head_dim(16);
        assert!(matches!(HfConfig::from_gpt(&wide, None), Err(HfError::NotGptNeo(_))));
    }
}
