//! The Llama-family model against transformers' `LlamaForCausalLM` on the committed tiny
//! fixture (made by `tests/fixtures/make_tiny_llama.py`): logits to 1e-4, the loss, and
//! parameter counts of tied and untied configs.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::{Int, Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_flex::Flex;
use growlm_model::{assign_params, param_shapes, HostTensor, Llama, LlamaConfig, Rope};
use safetensors::SafeTensors;

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("tiny-llama-logits.json")).unwrap()).unwrap()
}

/// The fixture's config.json as a growlm config.
fn config() -> LlamaConfig {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("tiny-llama/config.json")).unwrap()).unwrap();
    let n = |k: &str| v[k].as_u64().unwrap() as usize;
    LlamaConfig {
        vocab_size: n("vocab_size"),
        context_len: n("max_position_embeddings"),
        d_model: n("hidden_size"),
        n_layers: n("num_hidden_layers"),
        n_heads: n("num_attention_heads"),
        n_kv_heads: Some(n("num_key_value_heads")),
        head_dim: Some(n("head_dim")),
        ffn_dim: Some(n("intermediate_size")),
        rope_theta: v["rope_parameters"]["rope_theta"].as_f64().unwrap(),
        norm_eps: v["rms_norm_eps"].as_f64().unwrap(),
        tie_embeddings: v["tie_word_embeddings"].as_bool().unwrap(),
        init_std: 0.02,
    }
}

/// The fixture's weights, by growlm path, through the parameter table.
fn weights(cfg: &LlamaConfig) -> HashMap<String, HostTensor> {
    let bytes = std::fs::read(fixtures().join("tiny-llama/model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let table = cfg.param_table();
    assert_eq!(st.len(), table.len(), "the fixture has a tensor the table does not name, or the reverse");
    table
        .into_iter()
        .map(|p| {
            let t = st.tensor(&p.hf_name).unwrap();
            let v: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            let values = if p.transposed {
                // transformers stores [d_out, d_in]; growlm [d_in, d_out].
                let (i, o) = (p.shape[0], p.shape[1]);
                assert_eq!(t.shape(), [o, i], "{}", p.hf_name);
                (0..i * o).map(|n| v[(n % o) * i + n / o]).collect()
            } else {
                assert_eq!(t.shape(), p.shape.as_slice(), "{}", p.hf_name);
                v
            };
            (p.path, HostTensor { shape: p.shape, values })
        })
        .collect()
}

fn check_logits<B: burn::tensor::backend::Backend>() -> f32 {
    let cfg = config();
    let model: Llama<B> = assign_params(cfg.init::<B>(0, &Default::default()).unwrap(), &weights(&cfg));
    let r = reference();
    let ids: Vec<Vec<i64>> = serde_json::from_value(r["input_ids"].clone()).unwrap();
    let want: Vec<f32> = serde_json::from_value(r["logits"].clone()).unwrap();
    let (b, t) = (ids.len(), ids[0].len());
    let x = Tensor::<B, 2, Int>::from_data(TensorData::new(ids.concat(), [b, t]), &Default::default());
    let rope = Rope::new(cfg.context_len, cfg.head_dim(), cfg.rope_theta, &Default::default());
    let got: Vec<f32> = model.forward(x, &rope).into_data().convert::<f32>().to_vec().unwrap();
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
    let model: Llama<A> = assign_params(cfg.init::<A>(0, &Default::default()).unwrap(), &weights(&cfg));
    let r = reference();
    let ids: Vec<Vec<i64>> = serde_json::from_value(r["input_ids"].clone()).unwrap();
    let (b, t) = (ids.len(), ids[0].len());
    let x = Tensor::<A, 2, Int>::from_data(TensorData::new(ids.concat(), [b, t]), &Default::default());
    let rope = Rope::new(t, cfg.head_dim(), cfg.rope_theta, &Default::default());
    // transformers' loss shifts the labels: positions 0..t-1 predict 1..t.
    let loss = model.loss(x.clone().narrow(1, 0, t - 1), x.narrow(1, 1, t - 1), &rope);
    let value = loss.clone().into_scalar();
    assert!((value as f64 - r["loss"].as_f64().unwrap()).abs() < 1e-4, "loss {value} vs {}", r["loss"]);
    // Every parameter gets a finite, non-zero gradient.
    let grads = loss.backward();
    let mut seen = 0;
    for blk in &model.blocks {
        for p in [&blk.attn.query, &blk.attn.key, &blk.attn.value, &blk.attn.out, &blk.mlp.gate, &blk.mlp.up, &blk.mlp.down] {
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
        let n = |key: &str| k[key].as_u64().unwrap() as usize;
        let cfg = LlamaConfig {
            vocab_size: n("vocab_size"),
            context_len: n("max_position_embeddings"),
            d_model: n("hidden_size"),
            n_layers: n("num_hidden_layers"),
            n_heads: n("num_attention_heads"),
            n_kv_heads: Some(n("num_key_value_heads")),
            head_dim: k.get("head_dim").and_then(|v| v.as_u64()).map(|v| v as usize),
            ffn_dim: Some(n("intermediate_size")),
            rope_theta: 10_000.0,
            norm_eps: 1e-6,
            tie_embeddings: k["tie_word_embeddings"].as_bool().unwrap(),
            init_std: 0.02,
        };
        assert_eq!(cfg.num_params() as u64, c["params"].as_u64().unwrap(), "{k}");
        // The model built from the config has exactly the table's parameters.
        let model = cfg.init::<Flex>(0, &Default::default()).unwrap();
        let mut shapes = param_shapes(&model);
        shapes.sort();
        let mut table: Vec<(String, Vec<usize>)> = cfg.param_table().into_iter().map(|p| (p.path, p.shape)).collect();
        table.sort();
        assert_eq!(shapes, table, "{k}");
    }
}

#[test]
fn llama_configs_are_refused_by_name() {
    let mut cfg = config();
    cfg.n_kv_heads = Some(3);
    let e = cfg.validate("stages[1].model").unwrap_err().to_string();
    assert!(e.contains("stages[1].model.n_kv_heads") && e.contains("does not divide n_heads = 4"), "{e}");
    let mut cfg = config();
    cfg.head_dim = Some(7);
    assert!(cfg.validate("m").unwrap_err().to_string().contains("m.head_dim"));
}
