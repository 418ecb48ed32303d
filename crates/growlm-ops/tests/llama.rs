//! Growth operators on the Llama family: which keep the function (logits before and after
//! growth, with perturbed RMSNorm scales), which are refused, and where the gradient flows
//! in a new block right after growth for the two identity forms (zeroed norms, the paper's
//! `redundant`; zeroed output projections, LLaMA-Pro's `expand`).

use burn::optim::AdamWConfig;
use burn::tensor::{Int, Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_flex::Flex;
use growlm_model::{AttentionMasks, GptConfig};
use growlm_ops::{logit_change, perturb_norms_and_biases, Growth, GrowthConfig};

type A = Autodiff<Flex>;

fn llama(layers: usize) -> GptConfig {
    GptConfig {
        ffn_dim: Some(40),
        ..GptConfig::llama(50, 8, 16, layers, 4, 2)
    }
}

#[test]
fn depth_operators_that_keep_the_function_do_on_llama() {
    let (s, t) = (llama(2), llama(4));
    for depth in ["redundant", "identity", "expand"] {
        let op = GrowthConfig::named("pdg", depth, 0).unwrap();
        let change = logit_change::<A>(&s, &t, &op, &Default::default()).unwrap();
        assert!(change <= 1e-5, "{depth}: logits change by {change}");
    }
    let op = GrowthConfig::named("msg", "msg", 10).unwrap();
    let change = logit_change::<A>(&s, &t, &op, &Default::default()).unwrap();
    assert!(change <= 1e-5, "msg: logits change by {change}");
    // Stacking and fresh layers change the function (the check can fail).
    for depth in ["stack", "random"] {
        let op = GrowthConfig::named("pdg", depth, 0).unwrap();
        let change = logit_change::<A>(&s, &t, &op, &Default::default()).unwrap();
        assert!(change > 1e-3, "{depth}: logits change by only {change}");
    }
    // An untied head grows too.
    let untied = |l| GptConfig {
        tie_embeddings: Some(false),
        ..llama(l)
    };
    let op = GrowthConfig::named("pdg", "expand", 0).unwrap();
    assert!(logit_change::<A>(&untied(2), &untied(3), &op, &Default::default()).unwrap() <= 1e-5);
}

#[test]
fn depth_operators_keep_the_function_of_llama_with_a_part_swapped() {
    use growlm_model::{MlpKind, Norm, Positions};
    let swaps: [fn(GptConfig) -> GptConfig; 3] = [
        |c| GptConfig {
            norm: Some(Norm::LayerNorm),
            ..c
        },
        |c| GptConfig {
            mlp: Some(MlpKind::Gelu),
            ..c
        },
        |c| GptConfig {
            positions: Some(Positions::Learned),
            ..c
        },
    ];
    for swap in swaps {
        let (s, t) = (swap(llama(2)), swap(llama(4)));
        for depth in ["identity", "expand"] {
            let op = GrowthConfig::named("pdg", depth, 0).unwrap();
            let change = logit_change::<A>(&s, &t, &op, &Default::default()).unwrap();
            assert!(change <= 1e-5, "{:?} {depth}: logits change by {change}", s.swaps());
        }
        let op = GrowthConfig::named("pdg", "stack", 0).unwrap();
        let change = logit_change::<A>(&s, &t, &op, &Default::default()).unwrap();
        assert!(change > 1e-3, "{:?} stack: logits change by only {change}", s.swaps());
        // A growth between differently built stages is refused.
        let op = GrowthConfig::named("pdg", "expand", 0).unwrap();
        let e = logit_change::<A>(&s, &llama(4), &op, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("different parts"), "{e}");
    }
}

#[test]
fn llama_width_grows_by_cloning_and_by_masks() {
    // ×2 in width: hidden 16 → 32, heads 4 → 8, key/value heads 2 → 4 (2 query heads per
    // key/value head in both), SwiGLU 40 → 80. RMSNorm's mean square is unchanged when
    // every hidden unit is cloned the same number of times, so cloning stays exact.
    let wide = GptConfig {
        ffn_dim: Some(80),
        ..GptConfig::llama(50, 8, 32, 2, 8, 4)
    };
    for width in ["hypercloning", "fpi"] {
        let op = GrowthConfig::named(width, "expand", 0).unwrap();
        let change = logit_change::<A>(&llama(2), &wide, &op, &Default::default()).unwrap();
        assert!(change <= 1e-5, "{width}: logits change by {change}");
        // Width and depth at once.
        let deeper = GptConfig {
            n_layers: 3,
            ..wide.clone()
        };
        let change = logit_change::<A>(&llama(2), &deeper, &op, &Default::default()).unwrap();
        assert!(change <= 1e-5, "{width} + expand: logits change by {change}");
    }
    // A non-integer factor (16 → 24, heads 4 → 6, kv 2 → 3): fpi's uneven replication
    // changes RMSNorm's mean square, so the function moves (the check can fail).
    let uneven = GptConfig {
        ffn_dim: Some(60),
        ..GptConfig::llama(50, 8, 24, 2, 6, 3)
    };
    let op = GrowthConfig::named("fpi", "expand", 0).unwrap();
    let change = logit_change::<A>(&llama(2), &uneven, &op, &Default::default()).unwrap();
    assert!(change > 1e-4, "fpi ×1.5 changes the function, by only {change}");
    // PDG and MSG mask the new width, key/value heads included (each takes the mask of the
    // first query head it serves), so they keep the function at any factor.
    for (width, depth) in [("pdg", "expand"), ("pdg", "redundant"), ("msg", "msg")] {
        let op = GrowthConfig::named(width, depth, 10).unwrap();
        for target in [&wide, &uneven] {
            let change = logit_change::<A>(&llama(2), target, &op, &Default::default()).unwrap();
            assert!(
                change <= 1e-5,
                "{width}+{depth} to d{}: logits change by {change}",
                target.d_model
            );
        }
    }
    // The group of query heads per key/value head must stay.
    let regrouped = GptConfig {
        ffn_dim: Some(80),
        ..GptConfig::llama(50, 8, 32, 2, 8, 2)
    };
    let op = GrowthConfig::named("hypercloning", "expand", 0).unwrap();
    let e = logit_change::<A>(&llama(2), &regrouped, &op, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("n_heads / n_kv_heads changes (2 → 4)"), "{e}");
    let neo = GptConfig {
        ffn_dim: Some(40),
        ..GptConfig::new(50, 8, 16, 2, 4)
    };
    let e = logit_change::<A>(&neo, &llama(4), &op, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("different families"), "{e}");
}

/// Gradient norm of each new-block parameter (block 2 of the grown 3-layer model: source
/// layers 0 and 1 land on 0 and 1) right
/// after growing with `depth`.
fn new_block_grads(depth: &str) -> Vec<(String, f32)> {
    let (s, t) = (llama(2), llama(3));
    let dev = Default::default();
    let model = perturb_norms_and_biases(s.init::<A>(3, &dev).unwrap());
    let op = GrowthConfig::named("pdg", depth, 0).unwrap();
    let grown = Growth::new(&s, &t, &op, 4)
        .apply(&model, &AdamWConfig::new().init(), AdamWConfig::new().init())
        .unwrap();
    let ids: Vec<i64> = (0..16).map(|i| (i * 7 + 3) % 50).collect();
    let x = Tensor::<A, 2, Int>::from_data(TensorData::new(ids, [2, 8]), &dev);
    let masks = AttentionMasks::new(&t, 7, &dev);
    let loss = grown
        .model
        .loss(x.clone().narrow(1, 0, 7), x.narrow(1, 1, 7), &masks, None);
    let g = loss.backward();
    assert!(
        !matches!(grown.report.layers[2], growlm_ops::LayerOrigin::Copy(_)),
        "{:?}",
        grown.report.layers
    );
    let blk = &grown.model.blocks[2];
    let norm = |t: Tensor<Flex, 2>| t.powi_scalar(2).sum().sqrt().into_scalar();
    let norm1 = |t: Tensor<Flex, 1>| t.powi_scalar(2).sum().sqrt().into_scalar();
    let mut out = vec![
        ("ln_attn".to_string(), norm1(blk.ln_attn.gamma.grad(&g).unwrap())),
        ("ln_mlp".to_string(), norm1(blk.ln_mlp.gamma.grad(&g).unwrap())),
    ];
    let gate = blk.mlp.gate.as_ref().unwrap();
    for (name, p) in [
        ("attn.query", &blk.attn.query),
        ("attn.key", &blk.attn.key),
        ("attn.value", &blk.attn.value),
        ("attn.out", &blk.attn.out),
        ("mlp.gate", gate),
        ("mlp.up", &blk.mlp.up),
        ("mlp.down", &blk.mlp.down),
    ] {
        out.push((name.to_string(), p.weight.grad(&g).map(norm).unwrap_or(0.0)));
    }
    out
}

#[test]
fn where_the_gradient_flows_in_a_new_block_after_growth() {
    let get = |v: &[(String, f32)], k: &str| v.iter().find(|(n, _)| n == k).unwrap().1;
    // The paper's form: zero norms make the block's inputs zero. Attention still passes a
    // gradient back to its norm (softmax(0)·V's gradient reaches V), so `ln_attn` learns;
    // the SwiGLU MLP does not: with gate and up both zero, silu(g)·u has a zero gradient in
    // both factors, so `ln_mlp` and everything after it get none — and since its input
    // stays zero, never will. Every projection's gradient is zero at the first step.
    let redundant = new_block_grads("redundant");
    eprintln!("redundant: {redundant:?}");
    for k in [
        "attn.query",
        "attn.key",
        "attn.value",
        "attn.out",
        "mlp.gate",
        "mlp.up",
        "mlp.down",
        "ln_mlp",
    ] {
        assert_eq!(get(&redundant, k), 0.0, "redundant: {k}");
    }
    assert!(
        get(&redundant, "ln_attn") > 0.0,
        "redundant: the attention norm's scale learns"
    );
    // LLaMA-Pro's form: the zeroed output projections learn at once; what feeds them
    // (query/key/value, gate/up) gets no gradient through the zero weights yet, and the
    // norms none either.
    let expand = new_block_grads("expand");
    eprintln!("expand: {expand:?}");
    assert!(get(&expand, "attn.out") > 0.0 && get(&expand, "mlp.down") > 0.0);
    for k in [
        "attn.query",
        "attn.key",
        "attn.value",
        "mlp.gate",
        "mlp.up",
        "ln_attn",
        "ln_mlp",
    ] {
        assert_eq!(get(&expand, k), 0.0, "expand: {k}");
    }
}

#[test]
fn adamw_moments_follow_a_llama_growth_through_the_key_value_heads() {
    use burn::optim::{GradientsParams, Optimizer};
    use growlm_ops::{host_moments, named_params};
    let dev = Default::default();
    let (s, t) = (
        llama(2),
        GptConfig {
            ffn_dim: Some(80),
            ..GptConfig::llama(50, 8, 32, 3, 8, 4)
        },
    );
    let mut model = s.init::<A>(0, &dev).unwrap();
    let mut optim = AdamWConfig::new().init();
    let masks = AttentionMasks::new(&s, 7, &dev);
    for k in 0..2 {
        let ids: Vec<i64> = (0..16).map(|i| (i * 7 + 3 + k) % 50).collect();
        let x = Tensor::<A, 2, Int>::from_data(TensorData::new(ids, [2, 8]), &dev);
        let loss = model.loss(x.clone().narrow(1, 0, 7), x.narrow(1, 1, 7), &masks, None);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    let (src, src_rec) = (named_params::<A, _>(&model), optim.to_record());
    let op = GrowthConfig::named("fpi", "expand", 0).unwrap();
    let g = Growth {
        step: 2,
        active: None,
        ..Growth::new(&s, &t, &op, 5)
    }
    .apply(&model, &optim, AdamWConfig::new().init())
    .unwrap();
    let (dst, dst_rec) = (named_params::<A, _>(&g.model), g.optim.to_record());
    let moments = |params: &growlm_ops::NamedParams, rec: &std::collections::HashMap<_, _>, path: &str| {
        let (id, t) = &params[path];
        host_moments::<A>(rec.get(id).cloned().unwrap(), t.shape.len())
    };
    let (src_rec, dst_rec) = (src_rec.into_iter().collect(), dst_rec.into_iter().collect());
    // The key projection [16, 2·4] → [32, 4·4] (head_dim 4): hidden rows replicated
    // cyclically twice (read: first moment ÷ 2, second ÷ 4), key/value heads 0, 1 → 0, 1,
    // 0, 1 (written: copied).
    let (s1, s2) = moments(&src, &src_rec, "blocks.0.attn.key.weight");
    let (d1, d2) = moments(&dst, &dst_rec, "blocks.0.attn.key.weight");
    assert!(s1.values.iter().any(|v| *v != 0.0));
    assert_eq!((s1.shape.clone(), d1.shape.clone()), (vec![16, 8], vec![32, 16]));
    for r in 0..32 {
        for c in 0..16 {
            let (sr, sc) = (r % 16, c % 8);
            assert_eq!(d1.values[r * 16 + c], s1.values[sr * 8 + sc] / 2.0, "m1 at ({r}, {c})");
            assert_eq!(d2.values[r * 16 + c], s2.values[sr * 8 + sc] / 4.0, "m2 at ({r}, {c})");
        }
    }
    // The expanded layer's output projections are zero, with zero moments.
    let (o1, o2) = moments(&dst, &dst_rec, "blocks.2.attn.out.weight");
    assert!(o1.values.iter().chain(&o2.values).all(|v| *v == 0.0));
}
