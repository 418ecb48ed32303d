//! Qwen2, the family added as one description (growlm-model's `family/qwen2.rs`), against
//! transformers' `Qwen2ForCausalLM` on the committed tiny fixture (made by
//! `tests/fixtures/make_tiny_qwen2.py`): imported as transformers saved it, its logits to
//! 1e-5 on the fused and the decomposed path, its loss, and an export that reads back the
//! same.

use std::path::Path;

use burn::tensor::{Int, Tensor, TensorData};
use burn_flex::Flex;
use growlm_model::{AttentionMasks, Family, GptConfig};
use safetensors::SafeTensors;

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("tiny-qwen2-logits.json")).unwrap()).unwrap()
}

fn input() -> (Vec<i64>, [usize; 2]) {
    let ids: Vec<Vec<i64>> = serde_json::from_value(reference()["input_ids"].clone()).unwrap();
    let shape = [ids.len(), ids[0].len()];
    (ids.concat(), shape)
}

/// The largest difference of the imported fixture's logits from transformers'.
fn logit_error() -> f32 {
    let dev = Default::default();
    let m = growlm_hf::import_model::<Flex>(&fixtures().join("tiny-qwen2"), None, &dev).unwrap();
    let (ids, [b, t]) = input();
    let x = Tensor::<Flex, 2, Int>::from_data(TensorData::new(ids, [b, t]), &dev);
    let masks = AttentionMasks::new(&m.config, t, &dev);
    let got: Vec<f32> = m.model.forward(x, &masks, None).into_data().to_vec().unwrap();
    let want: Vec<f32> = serde_json::from_value(reference()["logits"].clone()).unwrap();
    assert_eq!(got.len(), want.len());
    got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

#[test]
fn qwen2_imports_as_transformers_saved_it_and_its_logits_match_to_1e_5() {
    let (_, cfg) = growlm_hf::read_dir(&fixtures().join("tiny-qwen2")).unwrap();
    assert_eq!(cfg.family, Family::Qwen2);
    assert!(cfg.components().qkv_biases && !cfg.components().biases);
    assert_eq!((cfg.kv_heads(), cfg.theta(), cfg.tied()), (2, 1_000_000.0, true));
    // transformers' own parameter count (a tied head once).
    assert_eq!(cfg.num_params() as u64, reference()["params"].as_u64().unwrap());
    let fused = logit_error();
    assert!(fused <= 1e-5, "fused: logits differ from transformers by {fused}");
    let plain = growlm_fused::decomposed(logit_error);
    assert!(plain <= 1e-5, "decomposed: logits differ from transformers by {plain}");
}

#[test]
fn qwen2_loss_matches_transformers() {
    let dev = Default::default();
    let m = growlm_hf::import_model::<Flex>(&fixtures().join("tiny-qwen2"), None, &dev).unwrap();
    let (ids, [b, t]) = input();
    let x = Tensor::<Flex, 2, Int>::from_data(TensorData::new(ids, [b, t]), &dev);
    let masks = AttentionMasks::new(&m.config, t - 1, &dev);
    let loss: f32 = m
        .model
        .loss(x.clone().narrow(1, 0, t - 1), x.narrow(1, 1, t - 1), &masks, None)
        .into_scalar();
    let want = reference()["loss"].as_f64().unwrap() as f32;
    assert!((loss - want).abs() <= 1e-5, "loss {loss}, transformers {want}");
}

#[test]
fn a_qwen2_model_exports_with_qwen2s_keys_and_reads_back_the_same() {
    let dev = Default::default();
    let (_, fixture) = growlm_hf::read_dir(&fixtures().join("tiny-qwen2")).unwrap();
    for tied in [true, false] {
        let cfg = GptConfig {
            tie_embeddings: Some(tied),
            ..fixture.clone()
        };
        let model = cfg.init::<Flex>(3, &dev).unwrap();
        let dir = tempfile::tempdir().unwrap();
        growlm_hf::export_model(&model, &cfg, dir.path(), None, &[]).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap()).unwrap();
        assert_eq!(json["model_type"], "qwen2");
        assert_eq!(json["architectures"][0], "Qwen2ForCausalLM");
        assert_eq!(json["use_sliding_window"], false);
        assert!(json.get("attention_bias").is_none(), "{json}");
        let bytes = std::fs::read(dir.path().join("model.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        for name in ["q_proj", "k_proj", "v_proj"] {
            assert!(st.names().contains(&&*format!("model.layers.1.self_attn.{name}.bias")));
        }
        assert!(!st.names().contains(&"model.layers.0.self_attn.o_proj.bias"));
        assert_eq!(st.names().contains(&"lm_head.weight"), !tied);
        let back = growlm_hf::import_model::<Flex>(dir.path(), Some(&cfg), &dev).unwrap();
        assert_eq!(back.config, cfg);
        assert_eq!(
            growlm_model::param_values(&model),
            growlm_model::param_values(&back.model)
        );
    }
}

#[test]
fn qwen2_fields_growlm_does_not_compute_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("tiny-qwen2/config.json")).unwrap()).unwrap();
    let refused = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = base.clone();
        edit(&mut v);
        std::fs::write(dir.path().join("config.json"), v.to_string()).unwrap();
        match growlm_hf::read_dir(dir.path()) {
            Ok(_) => panic!("accepted {v}"),
            Err(e) => e.to_string(),
        }
    };
    let e = refused(&|v| v["use_sliding_window"] = true.into());
    assert!(e.contains("use_sliding_window is true"), "{e}");
    let e = refused(&|v| v["model_type"] = "mistral".into());
    assert!(e.contains("\"mistral\"") && e.contains("Qwen2 (\"qwen2\")"), "{e}");
}
