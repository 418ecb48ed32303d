//! A Hugging Face model directory: `config.json`, `model.safetensors` and the tokenizer's
//! files, written atomically file by file and read back with every problem named.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::backend::Backend;
use growlm_model::{Gpt, GptConfig, HfConfigStyle};
use growlm_ops::{assign_params, param_values, HostTensor};

use crate::llama::{model_type, LlamaHf};
use crate::weights::{read_safetensors, to_hf_tensors, write_safetensors};
use crate::{HfConfig, HfError};

/// Writes `bytes` to `path` atomically ([`growlm_fs::write_atomic`]), so that a reader
/// never sees half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HfError> {
    growlm_fs::write_atomic(path, bytes).map_err(HfError::io(path))
}

/// Writes a GPT-Neo directory into `dir`: `config.json` for `config` (`eos`: the
/// tokenizer's end-of-text id, if any), `model.safetensors` from `params` (growlm paths),
/// and each `(file name, contents)` of `extra` (the tokenizer's files).
pub fn write_dir(
    dir: &Path,
    config: &GptConfig,
    params: &HashMap<String, HostTensor>,
    eos: Option<usize>,
    extra: &[(&str, Vec<u8>)],
) -> Result<(), HfError> {
    let hf = HfFile::from_gpt(config, eos)?;
    let tensors = to_hf_tensors(config, params)?;
    std::fs::create_dir_all(dir).map_err(HfError::io(dir))?;
    write_safetensors(&tensors, &dir.join("model.safetensors"))?;
    for (name, bytes) in extra {
        write_atomic(&dir.join(name), bytes)?;
    }
    // config.json last: a directory with a config.json is complete.
    let json = match &hf {
        HfFile::GptNeo(c) => serde_json::to_vec_pretty(c),
        HfFile::Llama(c) => serde_json::to_vec_pretty(c),
    }
    .expect("the config serialises");
    write_atomic(&dir.join("config.json"), &json)
}

/// Writes `model` (config `config`) as a GPT-Neo directory (see [`write_dir`]).
pub fn export_model<B: Backend>(
    model: &Gpt<B>,
    config: &GptConfig,
    dir: &Path,
    eos: Option<usize>,
    extra: &[(&str, Vec<u8>)],
) -> Result<(), HfError> {
    write_dir(dir, config, &param_values::<B, _>(model), eos, extra)
}

/// A `config.json` of any family, in its description's config style.
#[derive(Debug, Clone, PartialEq)]
pub enum HfFile {
    /// `GPTNeoConfig`.
    GptNeo(HfConfig),
    /// `LlamaConfig`'s keys (Llama, Qwen2).
    Llama(LlamaHf),
}

impl HfFile {
    /// The `config.json` of `config`'s family.
    pub fn from_gpt(config: &GptConfig, eos: Option<usize>) -> Result<Self, HfError> {
        if config.is_variant() {
            return Err(HfError::Variant(config.swaps().join(", ")));
        }
        match config.describe().hf.config {
            HfConfigStyle::Llama => LlamaHf::from_gpt(config, eos).map(Self::Llama),
            HfConfigStyle::GptNeo => HfConfig::from_gpt(config, eos).map(Self::GptNeo),
        }
    }

    /// The growlm model config it describes.
    pub fn to_gpt(&self, path: &Path) -> Result<GptConfig, HfError> {
        match self {
            Self::GptNeo(c) => c.to_gpt(path),
            Self::Llama(c) => c.to_gpt(path),
        }
    }

    /// The end-of-text id it names, if any.
    pub fn eos_token_id(&self) -> Option<usize> {
        match self {
            Self::GptNeo(c) => c.tail.eos_token_id,
            Self::Llama(c) => c.tail.eos_token_id,
        }
    }

    /// Checks that it describes `expected`, naming the first field that differs.
    pub fn check_matches(&self, expected: &GptConfig, path: &Path) -> Result<(), HfError> {
        match self {
            Self::GptNeo(c) => c.check_matches(expected, path),
            Self::Llama(c) => c.check_matches(expected, path),
        }
    }
}

/// A model read from a Hugging Face directory.
pub struct HfModel<B: Backend> {
    /// The model config `config.json` describes.
    pub config: GptConfig,
    /// `config.json` as read.
    pub hf: HfFile,
    /// The model with the directory's weights.
    pub model: Gpt<B>,
}

/// Reads the GPT-Neo, Llama or Qwen2 directory `dir`'s `config.json` and the model config it
/// describes.
pub fn read_dir(dir: &Path) -> Result<(HfFile, GptConfig), HfError> {
    let path = dir.join("config.json");
    if !path.is_file() {
        return Err(HfError::Config {
            path,
            reason: "missing; a Hugging Face model directory has config.json and model.safetensors".into(),
        });
    }
    let value = HfConfig::read_value(&path)?;
    let family = model_type(&value, &path)?.describe();
    let hf = match family.hf.config {
        HfConfigStyle::Llama => HfFile::Llama(serde_json::from_value(value).map_err(|e| HfError::Config {
            path: path.clone(),
            reason: format!("not a {} config: {e}", family.name),
        })?),
        HfConfigStyle::GptNeo => HfFile::GptNeo(HfConfig::from_value(value, &path)?),
    };
    let cfg = hf.to_gpt(&path)?;
    Ok((hf, cfg))
}

/// Loads the GPT-Neo, Llama or Qwen2 model in `dir` onto `device`. With `expected`, `config.json` must
/// describe that model, or the error names the first field that differs.
pub fn import_model<B: Backend>(
    dir: &Path,
    expected: Option<&GptConfig>,
    device: &B::Device,
) -> Result<HfModel<B>, HfError> {
    let (hf, mut config) = read_dir(dir)?;
    if let Some(want) = expected {
        hf.check_matches(want, &dir.join("config.json"))?;
        config = want.clone();
    }
    let weights = dir.join("model.safetensors");
    if !weights.is_file() {
        let hint = if dir.join("pytorch_model.bin").is_file() {
            "; the directory has pytorch_model.bin only: save it again with safe_serialization=True"
        } else {
            ""
        };
        return Err(HfError::MissingTensor {
            path: weights,
            tensor: format!("(the whole file is missing{hint})"),
        });
    }
    // Before the model is allocated: the file must hold the parameters config.json
    // describes (16-bit at the least), and the file, its values in f32 and the model must
    // fit in memory.
    let size = std::fs::metadata(&weights).map_err(HfError::io(&weights))?.len();
    let params = config.num_params() as u64;
    if size < params * 2 {
        return Err(HfError::Safetensors {
            path: weights,
            reason: format!(
                "{size} bytes, fewer than the {} that the {params} parameters of config.json take even in \
                 16 bits: truncated, or config.json is another model's",
                params * 2
            ),
        });
    }
    growlm_model::memory::check_fits(
        &format!("loading {}", dir.display()),
        size as f64 + params as f64 * 8.0,
        "nothing (the model is this large); free memory",
    )?;
    let model = config.init::<B>(0, device)?;
    let values = read_safetensors(&weights, &config)?;
    let model = assign_params::<B, _>(model, &values);
    Ok(HfModel { config, hf, model })
}
