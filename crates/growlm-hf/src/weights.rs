//! Tensor names and layouts: growlm's module paths ↔ `GPTNeoForCausalLM`'s state dict, and
//! `model.safetensors` read and written.
//!
//! growlm stores linear weights `[d_in, d_out]`; `torch.nn.Linear` stores `[d_out, d_in]`,
//! so every linear weight is transposed on the way across. The LM head is tied to the token
//! embedding and is not written (as `transformers` does for tied weights); on import an
//! `lm_head.weight` equal to the embedding is accepted.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use growlm_model::{GptConfig, HostTensor, ParamSpec, Role};
use safetensors::{Dtype, SafeTensors};

use crate::HfError;

/// The Hugging Face name of the parameter `spec` describes, and whether its layout is
/// transposed there (linear weights). `None` for a parameter GPT-Neo has no tensor for.
pub fn hf_name(spec: &ParamSpec) -> Option<(String, bool)> {
    gpt_neo_name(spec)
}

/// `LlamaForCausalLM`'s name of the parameter `spec` describes, and whether its layout is
/// transposed there (linear weights). `None` for a parameter Llama has no tensor for.
pub fn llama_name(spec: &ParamSpec) -> Option<(String, bool)> {
    let Some(layer) = spec.layer else {
        let name = match (spec.module, spec.leaf) {
            ("wte", _) => "model.embed_tokens.weight",
            ("ln_f", "gamma") => "model.norm.weight",
            ("lm_head", _) => "lm_head.weight",
            _ => return None,
        };
        return Some((name.to_string(), false));
    };
    let (module, transposed) = match (spec.module, spec.leaf) {
        ("ln_attn", "gamma") => ("input_layernorm", false),
        ("ln_mlp", "gamma") => ("post_attention_layernorm", false),
        ("attn.query", "weight") => ("self_attn.q_proj", true),
        ("attn.key", "weight") => ("self_attn.k_proj", true),
        ("attn.value", "weight") => ("self_attn.v_proj", true),
        ("attn.out", "weight") => ("self_attn.o_proj", true),
        ("mlp.gate", "weight") => ("mlp.gate_proj", true),
        ("mlp.up", "weight") => ("mlp.up_proj", true),
        ("mlp.down", "weight") => ("mlp.down_proj", true),
        _ => return None,
    };
    Some((format!("model.layers.{layer}.{module}.weight"), transposed))
}

fn gpt_neo_name(spec: &ParamSpec) -> Option<(String, bool)> {
    let Some(layer) = spec.layer else {
        let name = match (spec.module, spec.leaf) {
            ("wte", _) => "transformer.wte.weight",
            ("wpe", _) => "transformer.wpe.weight",
            ("ln_f", "gamma") => "transformer.ln_f.weight",
            ("ln_f", "beta") => "transformer.ln_f.bias",
            _ => return None,
        };
        return Some((name.to_string(), false));
    };
    let module = match spec.module {
        "ln_attn" => "ln_1",
        "ln_mlp" => "ln_2",
        "attn.query" => "attn.attention.q_proj",
        "attn.key" => "attn.attention.k_proj",
        "attn.value" => "attn.attention.v_proj",
        "attn.out" => "attn.attention.out_proj",
        "mlp.up" => "mlp.c_fc",
        "mlp.down" => "mlp.c_proj",
        _ => return None,
    };
    let (leaf, transposed) = match spec.role {
        Role::Norm if spec.leaf == "gamma" => ("weight", false),
        Role::Norm | Role::Bias => ("bias", false),
        Role::Weight => ("weight", true),
        Role::Embedding => return None,
    };
    Some((format!("transformer.h.{layer}.{module}.{leaf}"), transposed))
}

/// Every parameter of a model of `config` with its Hugging Face name and whether it is
/// transposed there; an error for one GPT-Neo has no tensor for.
fn named(config: &GptConfig) -> Result<Vec<(ParamSpec, String, bool)>, HfError> {
    if config.is_variant() {
        return Err(HfError::Variant(config.swaps().join(", ")));
    }
    config
        .param_specs()
        .into_iter()
        .map(|spec| {
            let name = if config.is_llama() {
                llama_name(&spec)
            } else {
                hf_name(&spec)
            };
            let (name, t) =
                name.ok_or_else(|| HfError::NotGptNeo(format!("parameter `{}` has no GPT-Neo tensor", spec.path)))?;
            Ok((spec, name, t))
        })
        .collect()
}

fn transpose(t: &HostTensor) -> HostTensor {
    let [r, c] = [t.shape[0], t.shape[1]];
    let mut values = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            values[j * r + i] = t.values[i * c + j];
        }
    }
    HostTensor {
        shape: vec![c, r],
        values,
    }
}

/// The parameters of a model of `config` (by module path) as GPT-Neo's state dict (by
/// Hugging Face name), linear weights transposed. Refuses a missing parameter, and one the
/// config's parameter table does not name.
pub fn to_hf_tensors(
    config: &GptConfig,
    params: &HashMap<String, HostTensor>,
) -> Result<BTreeMap<String, HostTensor>, HfError> {
    let specs = named(config)?;
    if let Some(extra) = params.keys().find(|p| !specs.iter().any(|(s, _, _)| &s.path == *p)) {
        return Err(HfError::NotGptNeo(format!("parameter `{extra}` has no GPT-Neo tensor")));
    }
    specs
        .into_iter()
        .map(|(spec, name, transposed)| {
            let t = params
                .get(&spec.path)
                .ok_or_else(|| HfError::NotGptNeo(format!("parameter `{}` is missing", spec.path)))?;
            Ok((name, if transposed { transpose(t) } else { t.clone() }))
        })
        .collect()
}

/// Buffers `transformers` may have saved that carry no weights (older GPT-Neo checkpoints
/// kept the attention masks in the state dict).
fn is_buffer(name: &str) -> bool {
    name.ends_with(".attn.attention.bias")
        || name.ends_with(".attn.attention.masked_bias")
        || name.ends_with(".rotary_emb.inv_freq")
}

/// Reads the parameters of a model of `config` out of a GPT-Neo state dict: each must be
/// present with the shape GPT-Neo gives it (linear weights transposed back);
/// F32, F16 and BF16 are read as f32. `lm_head.weight` must equal the embedding; any other
/// extra tensor is refused. `path` names the file in errors.
pub fn from_hf_tensors(
    st: &SafeTensors<'_>,
    config: &GptConfig,
    path: &Path,
) -> Result<HashMap<String, HostTensor>, HfError> {
    let bad = |tensor: &str, reason: String| HfError::BadTensor {
        path: path.to_path_buf(),
        tensor: tensor.to_string(),
        reason,
    };
    let mut known: HashMap<String, (String, bool, Vec<usize>)> = HashMap::new();
    for (spec, name, t) in named(config)? {
        let shape = spec.shape(config);
        known.insert(name, (spec.path, t, shape));
    }
    for name in st.names() {
        if !known.contains_key(name) && name != "lm_head.weight" && !is_buffer(name) {
            return Err(bad(
                name,
                format!(
                    "not a tensor of the {} model config.json describes; is config.json right?",
                    if config.is_llama() { "Llama" } else { "GPT-Neo" }
                ),
            ));
        }
    }
    let mut out = HashMap::new();
    let mut sorted: Vec<_> = known.into_iter().collect();
    sorted.sort();
    for (name, (growlm_path, transposed, want)) in sorted {
        let view = st.tensor(&name).map_err(|_| HfError::MissingTensor {
            path: path.to_path_buf(),
            tensor: name.clone(),
        })?;
        let hf_shape: Vec<usize> = if transposed {
            want.iter().rev().copied().collect()
        } else {
            want.clone()
        };
        if view.shape() != hf_shape.as_slice() {
            return Err(bad(
                &name,
                format!(
                    "shape {:?}, expected {:?} by the model config.json describes",
                    view.shape(),
                    hf_shape
                ),
            ));
        }
        let values = to_f32(view.dtype(), view.data()).map_err(|r| bad(&name, r))?;
        if let Some(v) = values.iter().position(|v| !v.is_finite()) {
            return Err(bad(&name, format!("entry {v} is {}", values[v])));
        }
        let t = HostTensor {
            shape: hf_shape,
            values,
        };
        out.insert(growlm_path, if transposed { transpose(&t) } else { t });
    }
    if let (true, Ok(head)) = (config.tied(), st.tensor("lm_head.weight")) {
        let wte = out.get("wte").expect("the embedding is always expected");
        let head = to_f32(head.dtype(), head.data()).map_err(|r| bad("lm_head.weight", r))?;
        if head != wte.values {
            return Err(bad(
                "lm_head.weight",
                "differs from transformer.wte.weight; growlm's LM head is tied to the embedding".into(),
            ));
        }
    }
    Ok(out)
}

fn to_f32(dtype: Dtype, data: &[u8]) -> Result<Vec<f32>, String> {
    let pairs = || data.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    Ok(match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => pairs().map(|b| half::f16::from_bits(b).to_f32()).collect(),
        Dtype::BF16 => pairs().map(|b| half::bf16::from_bits(b).to_f32()).collect(),
        other => return Err(format!("dtype {other:?}; growlm reads F32, F16 and BF16")),
    })
}

/// Writes GPT-Neo tensors as `model.safetensors` (F32, metadata `format = pt`, which
/// `transformers` requires) at `path`, atomically.
pub fn write_safetensors(tensors: &BTreeMap<String, HostTensor>, path: &Path) -> Result<(), HfError> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| {
            let b = t.values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (n.clone(), t.shape.clone(), b)
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(n, s, b)| {
            let v = safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b)
                .expect("the byte length follows the shape");
            (n.as_str(), v)
        })
        .collect::<Vec<_>>();
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let out = safetensors::serialize(views, Some(meta)).map_err(|e| HfError::Safetensors {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    // Atomic, so that a reader never sees half a file.
    growlm_fs::write_atomic(path, &out).map_err(HfError::io(path))
}

/// The largest safetensors header (the `safetensors` crate's own limit, 100 MB).
pub const SAFETENSORS_HEADER_LIMIT: u64 = 100_000_000;

/// Reads `model.safetensors` at `path` into the parameters of a model of `config` (see
/// [`from_hf_tensors`]).
pub fn read_safetensors(path: &Path, config: &GptConfig) -> Result<HashMap<String, HostTensor>, HfError> {
    // Bounded before it is read: the model's parameters in f32, GPT-Neo's saved causal-mask
    // buffers (a byte per position pair per layer, in older exports) and the largest header
    // the safetensors crate accepts. The crate checks the rest: the header's own length
    // against the file, every tensor's byte range inside the data and matching its shape
    // and dtype (`SafeTensors::deserialize`).
    let ctx = config.context_len as u64;
    let limit = config.num_params() as u64 * 4 + config.n_layers as u64 * ctx * ctx + SAFETENSORS_HEADER_LIMIT;
    let bytes = growlm_fs::read_limited(path, limit, "the weights of the model its config.json describes")
        .map_err(HfError::io(path))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| HfError::Safetensors {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    from_hf_tensors(&st, config, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_gpt_neo() {
        let cfg = GptConfig::new(64, 16, 16, 12, 2);
        let specs = cfg.param_specs();
        let name = |path: &str| hf_name(specs.iter().find(|s| s.path == path).unwrap());
        assert_eq!(
            name("blocks.11.attn.query.weight"),
            Some(("transformer.h.11.attn.attention.q_proj.weight".into(), true))
        );
        assert_eq!(
            name("blocks.0.ln_mlp.gamma"),
            Some(("transformer.h.0.ln_2.weight".into(), false))
        );
        assert_eq!(
            name("blocks.2.mlp.down.bias"),
            Some(("transformer.h.2.mlp.c_proj.bias".into(), false))
        );
        assert_eq!(name("wte"), Some(("transformer.wte.weight".into(), false)));
        assert_eq!(name("ln_f.beta"), Some(("transformer.ln_f.bias".into(), false)));
        // Every parameter has a name, and no two share one.
        let names: std::collections::BTreeSet<String> = specs.iter().map(|s| hf_name(s).unwrap().0).collect();
        assert_eq!(names.len(), specs.len());
        let gate = ParamSpec {
            module: "mlp.gate",
            ..specs[specs.len() - 1].clone()
        };
        assert_eq!(hf_name(&gate), None);
    }

    #[test]
    fn transpose_moves_entries() {
        let t = HostTensor {
            shape: vec![2, 3],
            values: vec![1., 2., 3., 4., 5., 6.],
        };
        let tt = transpose(&t);
        assert_eq!(tt.shape, vec![3, 2]);
        assert_eq!(tt.values, vec![1., 4., 2., 5., 3., 6.]);
        assert_eq!(transpose(&tt), t);
    }

    #[test]
    fn half_precision_is_widened() {
        let h: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_bits().to_le_bytes())
            .collect();
        assert_eq!(to_f32(Dtype::F16, &h).unwrap(), vec![1.5, -2.0]);
        let b: Vec<u8> = [0.25f32, 3.0]
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_bits().to_le_bytes())
            .collect();
        assert_eq!(to_f32(Dtype::BF16, &b).unwrap(), vec![0.25, 3.0]);
        assert!(to_f32(Dtype::I64, &[0; 8]).unwrap_err().contains("I64"));
    }
}
