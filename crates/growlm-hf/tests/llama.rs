//! The Llama-family model against transformers' `LlamaForCausalLM` on the committed tiny
//! fixture (made by `tests/fixtures/make_tiny_llama.py`): logits to 1e-4, the loss, and
//! parameter counts of tied and untied configs.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::{Int, Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_flex::Flex;
use growlm_hf::hf_name;
use growlm_model::{assign_params, param_shapes, AttentionMasks, Family, Gpt, GptConfig, HostTensor};
use safetensors::SafeTensors;

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("tiny-llama-logits.json")).unwrap()).unwrap()
}

/// A growlm config from transformers' `LlamaConfig` keys.
fn from_hf(v: &serde_json::Value) -> GptConfig {
    let n = |k: &str| v[k].as_u64().unwrap() as usize;
    GptConfig {
        family: Family::Llama,
        n_kv_heads: Some(n("num_key_value_heads")),
        head_dim: v.get("head_dim").and_then(|h| h.as_u64()).map(|h| h as usize),
        ffn_dim: Some(n("intermediate_size")),
        rope_theta: v.get("rope_parameters").map(|r| r["rope_theta"].as_f64().unwrap()),
        layer_norm_eps: v.get("rms_norm_eps").and_then(|e| e.as_f64()).unwrap_or(1e-6),
        tie_embeddings: Some(v["tie_word_embeddings"].as_bool().unwrap()),
        ..GptConfig::new(
            n("vocab_size"),
            n("max_position_embeddings"),
            n("hidden_size"),
            n("num_hidden_layers"),
            n("num_attention_heads"),
        )
    }
}

/// The fixture's config.json as a growlm config.
fn config() -> GptConfig {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("tiny-llama/config.json")).unwrap()).unwrap();
    from_hf(&v)
}

/// The fixture's weights, by growlm path, through the parameter table.
fn weights(cfg: &GptConfig) -> HashMap<String, HostTensor> {
    let bytes = std::fs::read(fixtures().join("tiny-llama/model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let table = cfg.param_specs();
    assert_eq!(
        st.len(),
        table.len(),
        "the fixture has a tensor the table does not name, or the reverse"
    );
    table
        .into_iter()
        .map(|p| {
            let (hf_name, transposed) = hf_name(Family::Llama, &p).unwrap();
            let shape = p.shape(cfg);
            let t = st.tensor(&hf_name).unwrap();
            let v: Vec<f32> = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let values = if transposed {
                // transformers stores [d_out, d_in]; growlm [d_in, d_out].
                let (i, o) = (shape[0], shape[1]);
                assert_eq!(t.shape(), [o, i], "{hf_name}");
                (0..i * o).map(|n| v[(n % o) * i + n / o]).collect()
            } else {
                assert_eq!(t.shape(), shape.as_slice(), "{hf_name}");
                v
            };
            (p.path, HostTensor { shape, values })
        })
        .collect()
}

fn check_logits<B: burn::tensor::backend::Backend>() -> f32 {
    let cfg = config();
    let model: Gpt<B> = assign_params(cfg.init::<B>(0, &Default::default()).unwrap(), &weights(&cfg));
    let r = reference();
    let ids: Vec<Vec<i64>> = serde_json::from_value(r["input_ids"].clone()).unwrap();
    let want: Vec<f32> = serde_json::from_value(r["logits"].clone()).unwrap();
    let (b, t) = (ids.len(), ids[0].len());
    let x = Tensor::<B, 2, Int>::from_data(TensorData::new(ids.concat(), [b, t]), &Default::default());
    let masks = AttentionMasks::new(&cfg, t, &Default::default());
    let got: Vec<f32> = model
        .forward(x, &masks, None)
        .into_data()
        .convert::<f32>()
        .to_vec()
        .unwrap();
    assert_eq!(got.len(), want.len());
    got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

#[test]
fn llama_logits_match_transformers_to_1e_4() {
    // The fused attention (burn-flex), and the decomposed path on the same backend.
    let fused = check_logits::<Flex>();
    assert!(fused <= 1e-4, "fused: logits differ from transformers by {fused}");
    let plain = growlm_fused::decomposed(check_logits::<Flex>);
    assert!(plain <= 1e-4, "decomposed: logits differ from transformers by {plain}");
}

#[test]
fn llama_loss_matches_transformers_and_trains() {
    type A = Autodiff<Flex>;
    let cfg = config();
    let model: Gpt<A> = assign_params(cfg.init::<A>(0, &Default::default()).unwrap(), &weights(&cfg));
    let r = reference();
    let ids: Vec<Vec<i64>> = serde_json::from_value(r["input_ids"].clone()).unwrap();
    let (b, t) = (ids.len(), ids[0].len());
    let x = Tensor::<A, 2, Int>::from_data(TensorData::new(ids.concat(), [b, t]), &Default::default());
    let masks = AttentionMasks::new(&cfg, t - 1, &Default::default());
    // transformers' loss shifts the labels: positions 0..t-1 predict 1..t.
    let loss = model.loss(x.clone().narrow(1, 0, t - 1), x.narrow(1, 1, t - 1), &masks, None);
    let value = loss.clone().into_scalar();
    assert!(
        (value as f64 - r["loss"].as_f64().unwrap()).abs() < 1e-4,
        "loss {value} vs {}",
        r["loss"]
    );
    // Every parameter gets a finite, non-zero gradient.
    let grads = loss.backward();
    let mut seen = 0;
    for blk in &model.blocks {
        let gate = blk.mlp.gate.as_ref().unwrap();
        for p in [
            &blk.attn.query,
            &blk.attn.key,
            &blk.attn.value,
            &blk.attn.out,
            gate,
            &blk.mlp.up,
            &blk.mlp.down,
        ] {
            let g: Vec<f32> = p.weight.grad(&grads).unwrap().into_data().to_vec().unwrap();
            assert!(g.iter().all(|x| x.is_finite()) && g.iter().any(|x| *x != 0.0));
            seen += 1;
        }
    }
    assert_eq!(seen, 7 * cfg.n_layers);
}

#[test]
fn llama_parameter_counts_match_transformers() {
    let r = reference();
    for c in r["param_counts"].as_array().unwrap() {
        let k = &c["config"];
        let cfg = from_hf(k);
        assert_eq!(cfg.num_params() as u64, c["params"].as_u64().unwrap(), "{k}");
        // FLOPs: transformers' estimate is 6 × tokens × its non-embedding parameters
        // (Kaplan's 6N, `floating_point_ops` up to transformers 4). growlm's N counts the
        // matmuls a token costs: the same, less the norm scales (no matmul), plus the head
        // when it is tied (transformers counts it as the embedding; it still costs a matmul).
        let (d, l, v) = (cfg.d_model, cfg.n_layers, cfg.vocab_size);
        let norms = (2 * l + 1) * d;
        let head = if cfg.tied() { d * v } else { 0 };
        let tf = c["non_embedding_params"].as_u64().unwrap() as usize;
        assert_eq!(cfg.num_matmul_params(), tf - norms + head, "{k}");
        let t = 64;
        let attention = 12.0 * (l * t * cfg.attn_dim()) as f64;
        assert_eq!(
            cfg.flops_per_token(t),
            6.0 * (tf - norms + head) as f64 + attention,
            "{k}"
        );
        // The model built from the config has exactly the table's parameters.
        let model = cfg.init::<Flex>(0, &Default::default()).unwrap();
        let mut shapes = param_shapes(&model);
        shapes.sort();
        let mut table: Vec<(String, Vec<usize>)> = cfg
            .param_specs()
            .into_iter()
            .map(|p| {
                let s = p.shape(&cfg);
                (p.path, s)
            })
            .collect();
        table.sort();
        assert_eq!(shapes, table, "{k}");
    }
}

#[test]
fn llama_configs_are_refused_by_name() {
    let mut cfg = config();
    cfg.n_kv_heads = Some(3);
    let e = cfg.validate("stages[1].model").unwrap_err().to_string();
    assert!(
        e.contains("stages[1].model.n_kv_heads") && e.contains("does not divide n_heads = 4"),
        "{e}"
    );
    let mut cfg = config();
    cfg.head_dim = Some(7);
    assert!(cfg.validate("m").unwrap_err().to_string().contains("m.head_dim"));
    // A Llama key on a GPT-Neo model is refused by name.
    let mut cfg = GptConfig::new(40, 16, 32, 2, 4);
    cfg.rope_theta = Some(1e4);
    let e = cfg.validate("m").unwrap_err().to_string();
    assert!(e.contains("m.rope_theta") && e.contains("family = \"llama\""), "{e}");
}

#[test]
fn a_llama_directory_imports_exports_and_round_trips() {
    // Import: the fixture directory as transformers wrote it, and the logits it gives.
    let dev = Default::default();
    let m = growlm_hf::import_model::<Flex>(&fixtures().join("tiny-llama"), None, &dev).unwrap();
    assert_eq!(m.config, config());
    let r = reference();
    let ids: Vec<Vec<i64>> = serde_json::from_value(r["input_ids"].clone()).unwrap();
    let want: Vec<f32> = serde_json::from_value(r["logits"].clone()).unwrap();
    let x = Tensor::<Flex, 2, Int>::from_data(TensorData::new(ids.concat(), [2, 16]), &dev);
    let masks = AttentionMasks::new(&m.config, 16, &dev);
    let got: Vec<f32> = m.model.forward(x, &masks, None).into_data().to_vec().unwrap();
    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst <= 1e-4, "imported: logits differ by {worst}");
    // Export, untied and tied, and read back: the same config and the same values; a tied
    // head is not written (as transformers saves it).
    for tied in [false, true] {
        let cfg = GptConfig {
            tie_embeddings: Some(tied),
            ..m.config.clone()
        };
        let model = cfg.init::<Flex>(5, &dev).unwrap();
        let dir = tempfile::tempdir().unwrap();
        growlm_hf::export_model(&model, &cfg, dir.path(), None, &[]).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap()).unwrap();
        assert_eq!(json["model_type"], "llama");
        assert_eq!(json["architectures"][0], "LlamaForCausalLM");
        assert_eq!(json["tie_word_embeddings"], tied);
        assert_eq!(json["num_key_value_heads"], 2);
        let bytes = std::fs::read(dir.path().join("model.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.names().contains(&"lm_head.weight"), !tied);
        let back = growlm_hf::import_model::<Flex>(dir.path(), Some(&cfg), &dev).unwrap();
        assert_eq!(back.config, cfg);
        let (a, b) = (
            growlm_model::param_values(&model),
            growlm_model::param_values(&back.model),
        );
        assert_eq!(a, b);
    }
}

#[test]
fn llama_fields_growlm_does_not_compute_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("tiny-llama/config.json")).unwrap()).unwrap();
    let refused = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = base.clone();
        edit(&mut v);
        std::fs::write(dir.path().join("config.json"), v.to_string()).unwrap();
        match growlm_hf::read_dir(dir.path()) {
            Ok(_) => panic!("accepted {v}"),
            Err(e) => e.to_string(),
        }
    };
    let e = refused(&|v| v["model_type"] = "gemma".into());
    assert!(e.contains("\"gemma\"") && e.contains("Llama (\"llama\")"), "{e}");
    let e = refused(&|v| v["attention_bias"] = true.into());
    assert!(e.contains("attention_bias is true"), "{e}");
    let e = refused(&|v| v["rope_scaling"] = serde_json::json!({"rope_type": "llama3", "factor": 8.0}));
    assert!(e.contains("rope_scaling"), "{e}");
    let e = refused(&|v| v["num_key_value_heads"] = 3.into());
    assert!(e.contains("n_kv_heads"), "{e}");
}

#[test]
fn a_model_with_a_part_swapped_is_not_exported() {
    let swapped = GptConfig {
        tie_embeddings: Some(true),
        mlp: Some(growlm_model::MlpKind::Gelu),
        ..GptConfig::llama(64, 8, 16, 2, 4, 2)
    };
    let e = growlm_hf::HfFile::from_gpt(&swapped, None).unwrap_err().to_string();
    assert!(e.contains("mlp = \"gelu\"") && e.contains("remove the swap"), "{e}");
    let model = swapped.init::<Flex>(0, &Default::default()).unwrap();
    let e = growlm_hf::to_hf_tensors(&swapped, &growlm_model::param_values::<Flex, _>(&model))
        .unwrap_err()
        .to_string();
    assert!(e.contains("mlp = \"gelu\""), "{e}");
}
