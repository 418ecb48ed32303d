//! Tensor names and layouts: growlm's module paths ↔ the family's Hugging Face state dict
//! (`GPTNeoForCausalLM`, `LlamaForCausalLM`, `Qwen2ForCausalLM`: the names are in each
//! family's description), and `model.safetensors` read and written.
//!
//! growlm stores linear weights `[d_in, d_out]`; `torch.nn.Linear` stores `[d_out, d_in]`,
//! so every linear weight is transposed on the way across. The LM head is tied to the token
//! embedding and is not written (as `transformers` does for tied weights); on import an
//! `lm_head.weight` equal to the embedding is accepted.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use growlm_model::{Family, GptConfig, HostTensor, ParamSpec};
use safetensors::{Dtype, SafeTensors};

use crate::HfError;

/// The Hugging Face name, in `family`'s model class, of the parameter `spec` describes, and
/// whether its layout is transposed there (linear weights): the family's description says
/// ([`growlm_model::HfDesc::name`]). `None` for a parameter the family has no tensor for.
pub fn hf_name(family: Family, spec: &ParamSpec) -> Option<(String, bool)> {
    family.describe().hf.name(spec)
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
            let family = config.describe();
            let (name, t) = hf_name(config.family, &spec).ok_or_else(|| {
                HfError::NotGptNeo(format!("parameter `{}` has no {} tensor", spec.path, family.name))
            })?;
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
                    config.describe().name
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
        let name = |path: &str| hf_name(Family::GptNeo, specs.iter().find(|s| s.path == path).unwrap());
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
        let names: std::collections::BTreeSet<String> =
            specs.iter().map(|s| hf_name(Family::GptNeo, s).unwrap().0).collect();
        assert_eq!(names.len(), specs.len());
        let gate = ParamSpec {
            module: "mlp.gate",
            ..specs[specs.len() - 1].clone()
        };
        assert_eq!(hf_name(Family::GptNeo, &gate), None);
    }

    #[test]
    fn every_family_names_every_parameter_once() {
        for family in growlm_model::FAMILIES {
            let cfg = GptConfig {
                family: family.family,
                ..GptConfig::new(64, 16, 16, 3, 2)
            };
            let specs = cfg.param_specs();
            let names: std::collections::BTreeSet<String> = specs
                .iter()
                .map(|s| {
                    hf_name(family.family, s)
                        .unwrap_or_else(|| panic!("{}: {}", family.name, s.path))
                        .0
                })
                .collect();
            assert_eq!(names.len(), specs.len(), "{}", family.name);
            // A weight is transposed, nothing else is.
            for s in &specs {
                let t = hf_name(family.family, s).unwrap().1;
                assert_eq!(t, s.role == growlm_model::Role::Weight, "{}: {}", family.name, s.path);
            }
        }
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
