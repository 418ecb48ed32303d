//! Import, export and parity against `transformers` on the committed tiny GPT-Neo fixture
//! (made by `tests/fixtures/make_tiny_gpt_neo.py`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData};
use burn_flex::Flex;
use growlm_hf::{export_model, import_model, read_dir, HfError};
use growlm_model::{AttentionMasks, Gpt, GptConfig};
use growlm_ops::{named_params, HostTensor};
use safetensors::SafeTensors;

type B = Flex;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-gpt-neo")
}

struct Reference {
    ids: Vec<Vec<i64>>,
    logits: Vec<f32>,
    loss: f64,
}

fn reference() -> Reference {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-gpt-neo-logits.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    Reference {
        ids: serde_json::from_value(v["input_ids"].clone()).unwrap(),
        logits: serde_json::from_value(v["logits"].clone()).unwrap(),
        loss: v["loss"].as_f64().unwrap(),
    }
}

fn logits(model: &Gpt<B>, cfg: &GptConfig, ids: &[Vec<i64>]) -> Vec<f32> {
    let (b, t) = (ids.len(), ids[0].len());
    let flat: Vec<i64> = ids.concat();
    let x = Tensor::<B, 2, Int>::from_data(TensorData::new(flat, vec![b, t]), &Default::default());
    let masks = AttentionMasks::new(cfg, t, &Default::default());
    model.forward(x, &masks, None).into_data().to_vec::<f32>().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn imported_logits_match_transformers() {
    let r = reference();
    let m = import_model::<B>(&fixture(), None, &Default::default()).unwrap();
    assert_eq!(m.config.n_layers, 3);
    assert_eq!(m.config.ffn_dim(), 40);
    let got = logits(&m.model, &m.config, &r.ids);
    let d = max_abs_diff(&got, &r.logits);
    eprintln!("max |Δlogit| vs transformers: {d:.3e}");
    assert!(d <= 1e-4, "max |Δlogit| = {d}");
    // The loss on the same tokens (transformers shifts the labels by one).
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(r.ids.concat(), vec![2, 16]), &Default::default());
    let masks = AttentionMasks::new(&m.config, 15, &Default::default());
    let loss = m
        .model
        .loss(ids.clone().narrow(1, 0, 15), ids.narrow(1, 1, 15), &masks, None)
        .into_scalar() as f64;
    assert!((loss - r.loss).abs() <= 1e-5, "loss {loss} vs {}", r.loss);
}

#[test]
fn the_local_layer_matters() {
    // A guard on the fixture: with the window ignored the logits differ, so the parity
    // test above checks GPT-Neo's local attention.
    let r = reference();
    let m = import_model::<B>(&fixture(), None, &Default::default()).unwrap();
    let mut global = m.config.clone();
    global.attention = growlm_model::AttentionLayers::Global;
    let mut model = m.model.clone();
    for b in model.blocks.iter_mut() {
        b.set_window(0);
    }
    let d = max_abs_diff(&logits(&model, &global, &r.ids), &r.logits);
    assert!(d > 1e-2, "{d}");
}

#[test]
fn export_round_trips_bit_for_bit() {
    let m = import_model::<B>(&fixture(), None, &Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export");
    let tok = growlm_data::Tokenizer::byte().hf_files(m.config.context_len);
    export_model(&m.model, &m.config, &out, None, &tok).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let (_, cfg) = read_dir(&out).unwrap();
    assert_eq!(cfg, m.config);
    let back = import_model::<B>(&out, Some(&m.config), &Default::default()).unwrap();
    let a = named_params::<B, _>(&m.model);
    let b = named_params::<B, _>(&back.model);
    assert_eq!(a.len(), b.len());
    for (k, (_, t)) in &a {
        assert_eq!(t, &b[k].1, "{k}");
    }
    // The same tensor names and shapes as transformers wrote, less the buffers.
    let names = |p: &Path| -> BTreeMap<String, Vec<usize>> {
        let bytes = std::fs::read(p.join("model.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        st.tensors().into_iter().map(|(n, v)| (n, v.shape().to_vec())).collect()
    };
    let theirs: BTreeMap<_, _> = names(&fixture())
        .into_iter()
        .filter(|(n, _)| n != "lm_head.weight")
        .collect();
    assert_eq!(names(&out), theirs);
}

/// The fixture copied into a temporary directory, with `model.safetensors` replaced by
/// `edit` of its tensors.
fn edited(edit: impl FnOnce(&mut BTreeMap<String, HostTensor>)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture().join("config.json"), dir.path().join("config.json")).unwrap();
    let bytes = std::fs::read(fixture().join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: BTreeMap<String, HostTensor> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            let values = v
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (
                n,
                HostTensor {
                    shape: v.shape().to_vec(),
                    values,
                },
            )
        })
        .collect();
    edit(&mut tensors);
    growlm_hf::write_safetensors(&tensors, &dir.path().join("model.safetensors")).unwrap();
    dir
}

fn import_err(dir: &Path) -> String {
    match import_model::<B>(dir, None, &Default::default()) {
        Ok(_) => panic!("{} imported", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_checkpoints_are_refused_naming_the_tensor() {
    let missing = edited(|t| {
        t.remove("transformer.h.1.mlp.c_fc.bias");
    });
    let e = import_err(missing.path());
    assert!(e.contains("`transformer.h.1.mlp.c_fc.bias` is missing"), "{e}");

    let reshaped = edited(|t| {
        let w = t.get_mut("transformer.h.2.attn.attention.q_proj.weight").unwrap();
        w.shape = vec![8, 32];
    });
    let e = import_err(reshaped.path());
    assert!(
        e.contains("q_proj.weight") && e.contains("[8, 32]") && e.contains("[16, 16]"),
        "{e}"
    );

    let extra = edited(|t| {
        t.insert(
            "transformer.h.0.attn.attention.q_proj.bias".into(),
            HostTensor::zeros(vec![16]),
        );
    });
    let e = import_err(extra.path());
    assert!(
        e.contains("q_proj.bias") && e.contains("not a tensor of the GPT-Neo model config.json describes"),
        "{e}"
    );

    let untied = edited(|t| {
        let mut head = t["transformer.wte.weight"].clone();
        head.values[0] += 1.0;
        t.insert("lm_head.weight".into(), head);
    });
    let e = import_err(untied.path());
    assert!(e.contains("lm_head.weight") && e.contains("tied"), "{e}");

    let nan = edited(|t| {
        t.get_mut("transformer.ln_f.bias").unwrap().values[3] = f32::NAN;
    });
    let e = import_err(nan.path());
    assert!(e.contains("transformer.ln_f.bias") && e.contains("entry 3"), "{e}");

    // Truncated and garbage files.
    let cut = edited(|_| {});
    let f = cut.path().join("model.safetensors");
    let len = std::fs::metadata(&f).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let e = import_err(cut.path());
    assert!(
        e.contains("model.safetensors") && e.contains("not a readable safetensors file"),
        "{e}"
    );
    std::fs::write(&f, b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage").unwrap();
    assert!(import_err(cut.path()).contains("not a readable safetensors file"));
    std::fs::remove_file(&f).unwrap();
    assert!(import_err(cut.path()).contains("the whole file is missing"));

    std::fs::write(cut.path().join("config.json"), b"{\"model_type\": \"gpt_neo\"").unwrap();
    let e = import_err(cut.path());
    assert!(e.contains("config.json") && e.contains("not JSON"), "{e}");
    std::fs::write(cut.path().join("config.json"), b"{\"model_type\": \"gpt2\"}").unwrap();
    let e = import_err(cut.path());
    assert!(
        e.contains("model_type is \"gpt2\"") && e.contains("GPT-Neo (\"gpt_neo\"), Llama"),
        "{e}"
    );
    std::fs::write(cut.path().join("config.json"), b"{\"model_type\": \"gpt_neo\"}").unwrap();
    assert!(import_err(cut.path()).contains("not a GPT-Neo config"));
}

#[test]
fn a_config_that_differs_from_the_expected_model_is_named() {
    let mut want = read_dir(&fixture()).unwrap().1;
    want.d_model = 32;
    let e = match import_model::<B>(&fixture(), Some(&want), &Default::default()) {
        Err(e @ HfError::Mismatch { .. }) => e.to_string(),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("imported"),
    };
    assert!(e.contains("`hidden_size` is 16") && e.contains("has 32"), "{e}");
}
