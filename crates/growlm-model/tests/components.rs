//! A family's parts swapped one at a time ([`growlm_model::Components`]), for the ablation
//! that asks which part of Llama carries a result: the swapped model is built from the parts
//! it names (checked against GPT-Neo itself, whose logits equal transformers'), its
//! parameter and FLOP counts follow its parts, and bad swaps are refused by key.

use std::collections::HashMap;

use burn::tensor::{Int, Tensor, TensorData};
use burn_flex::Flex;
use growlm_model::{
    assign_params, param_shapes, param_values, AttentionMasks, Components, Family, GptConfig, HostTensor, MlpKind,
    Norm, Positions,
};

type B = Flex;

fn logits(cfg: &GptConfig, model: &growlm_model::Gpt<B>) -> Vec<f32> {
    let dev = Default::default();
    let ids: Vec<i64> = (0..16).map(|i| (i * 7 + 3) % 50).collect();
    let x = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [2, 8]), &dev);
    let masks = AttentionMasks::new(cfg, 8, &dev);
    model.forward(x, &masks, None).into_data().to_vec::<f32>().unwrap()
}

/// Every value of `t` moved off its initial value, deterministically (norm scales off 1,
/// shifts off 0), so that a part read from the wrong place shows.
fn perturb(t: &mut HostTensor, salt: usize) {
    for (i, v) in t.values.iter_mut().enumerate() {
        *v += 0.1 * ((i * 31 + salt * 17) as f32).sin();
    }
}

#[test]
fn llama_with_gpt_neo_parts_is_gpt_neo_without_biases() {
    // head_dim 1: Llama's 1/√head_dim scale is 1, as GPT-Neo's unscaled scores; one query
    // head per key/value head and a tied head, as GPT-Neo. What is left between the two is
    // the three parts swapped, and GPT-Neo's biases.
    let neo = GptConfig {
        ffn_dim: Some(24),
        ..GptConfig::new(50, 8, 6, 2, 6)
    };
    let swapped = GptConfig {
        family: Family::Llama,
        n_kv_heads: Some(6),
        tie_embeddings: Some(true),
        norm: Some(Norm::LayerNorm),
        mlp: Some(MlpKind::Gelu),
        positions: Some(Positions::Learned),
        ..neo.clone()
    };
    swapped.validate("model").unwrap();
    assert_eq!(
        swapped.components(),
        Components {
            biases: false,
            scaled_scores: true,
            ..Family::GptNeo.components()
        }
    );
    assert!(swapped.is_variant() && !neo.is_variant());
    assert_eq!(
        swapped.swaps(),
        ["norm = \"layer_norm\"", "mlp = \"gelu\"", "positions = \"learned\""]
    );
    let dev = Default::default();
    let m = neo.init::<B>(1, &dev).unwrap();
    let mut values: HashMap<String, HostTensor> = param_values::<B, _>(&m);
    let mut keys: Vec<String> = values.keys().cloned().collect();
    keys.sort();
    for (i, k) in keys.iter().enumerate() {
        let t = values.get_mut(k).unwrap();
        if k.ends_with(".bias") {
            t.values.iter_mut().for_each(|v| *v = 0.0);
        } else {
            perturb(t, i);
        }
    }
    let neo_model = assign_params(m, &values);
    values.retain(|k, _| !k.ends_with(".bias"));
    let v = assign_params(swapped.init::<B>(2, &dev).unwrap(), &values);
    // The same parameters but GPT-Neo's biases: every one of them was assigned.
    let mut shapes = param_shapes::<B, _>(&v);
    let mut expected: Vec<_> = param_shapes::<B, _>(&neo_model)
        .into_iter()
        .filter(|(k, _)| !k.ends_with(".bias"))
        .collect();
    shapes.sort();
    expected.sort();
    assert_eq!(shapes, expected);
    let (a, b) = (logits(&neo, &neo_model), logits(&swapped, &v));
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    assert!(worst <= 1e-6, "logits differ by {worst}");
    // And the check can fail: with Llama's own norm (RMSNorm, no shift) it differs.
    let plain = GptConfig {
        norm: None,
        ..swapped.clone()
    };
    values.retain(|k, _| !k.ends_with(".beta"));
    let p = assign_params(plain.init::<B>(2, &dev).unwrap(), &values);
    let worst = a
        .iter()
        .zip(&logits(&plain, &p))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(worst > 1e-3, "{worst}");
}

#[test]
fn each_swap_brings_its_parameters_and_flops() {
    let llama = GptConfig {
        ffn_dim: Some(40),
        tie_embeddings: Some(true),
        ..GptConfig::llama(50, 8, 16, 2, 4, 2)
    };
    let neo = GptConfig {
        ffn_dim: Some(40),
        ..GptConfig::new(50, 8, 16, 2, 4)
    };
    let (d, f, l, ctx) = (16i64, 40i64, 2i64, 8i64);
    let dev = Default::default();
    for (base, swap, params_change, matmul_change) in [
        // LayerNorm adds a shift to each of the 2·L + 1 norms.
        (
            &llama,
            GptConfig {
                norm: Some(Norm::LayerNorm),
                ..llama.clone()
            },
            (2 * l + 1) * d,
            0,
        ),
        // A GELU MLP has no gate.
        (
            &llama,
            GptConfig {
                mlp: Some(MlpKind::Gelu),
                ..llama.clone()
            },
            -(l * d * f),
            -(l * d * f),
        ),
        // Learned positions add a table.
        (
            &llama,
            GptConfig {
                positions: Some(Positions::Learned),
                ..llama.clone()
            },
            ctx * d,
            0,
        ),
        // GPT-Neo's swaps the other way: RMSNorm drops the shifts; SwiGLU adds a gate with
        // GPT-Neo's bias; rotary positions drop the table.
        (
            &neo,
            GptConfig {
                norm: Some(Norm::RmsNorm),
                ..neo.clone()
            },
            -((2 * l + 1) * d),
            0,
        ),
        (
            &neo,
            GptConfig {
                mlp: Some(MlpKind::Swiglu),
                ..neo.clone()
            },
            l * (d * f + f),
            l * d * f,
        ),
        (
            &neo,
            GptConfig {
                positions: Some(Positions::Rotary),
                ..neo.clone()
            },
            -(ctx * d),
            0,
        ),
    ] {
        swap.validate("model").unwrap();
        assert!(swap.is_variant(), "{swap:?}");
        assert_eq!(
            swap.num_params() as i64,
            base.num_params() as i64 + params_change,
            "{:?}",
            swap.swaps()
        );
        assert_eq!(
            swap.num_matmul_params() as i64,
            base.num_matmul_params() as i64 + matmul_change,
            "{:?}",
            swap.swaps()
        );
        // The model built has exactly the parameters its specs list, and runs.
        let m = swap.init::<B>(0, &dev).unwrap();
        let built: usize = param_shapes::<B, _>(&m)
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        assert_eq!(built, swap.num_params(), "{:?}", swap.swaps());
        assert!(logits(&swap, &m).iter().all(|x| x.is_finite()));
    }
}

#[test]
fn bad_swaps_are_refused_by_key() {
    // Rotary positions need an even head width, in either family.
    let odd = GptConfig {
        positions: Some(Positions::Rotary),
        ..GptConfig::new(50, 8, 12, 2, 4)
    };
    let e = odd.validate("model").unwrap_err().to_string();
    assert!(e.contains("head_dim") && e.contains("odd"), "{e}");
    // An unknown part names the choices.
    let e =
        toml::from_str::<GptConfig>("context_len = 8\nd_model = 16\nn_layers = 2\nn_heads = 4\nnorm = \"batch_norm\"")
            .unwrap_err()
            .to_string();
    assert!(
        e.contains("batch_norm") && e.contains("layer_norm") && e.contains("rms_norm"),
        "{e}"
    );
    let ok: GptConfig =
        toml::from_str("family = \"llama\"\ncontext_len = 8\nd_model = 16\nn_layers = 2\nn_heads = 4\nmlp = \"gelu\"")
            .unwrap();
    assert_eq!(ok.components().mlp, MlpKind::Gelu);
}
