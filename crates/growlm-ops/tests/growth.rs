//! Growth operators: strict function preservation (paper §3.3–3.5), optimizer-state
//! transfer, the PDG ramp of eq. 5–6, and refused growths.

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::{Int, Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_flex::Flex;
use growlm_model::{ActiveWidth, AttentionMasks, GptConfig, WidthMask};
use growlm_ops::RampState;
use growlm_ops::{host_moments, named_params, Growth, GrowthConfig, LayerOrigin, OpsError, Ramp};

/// The autodiff CPU backend the tests train on.
type TB = Autodiff<Flex>;

/// A [`Growth`] at step `step` from the source's full width, with a fresh optimizer for the grown model.
fn fresh_grow(
    source: &GptConfig,
    model: &growlm_model::Gpt<TB>,
    optim: &burn::optim::adaptor::OptimizerAdaptor<burn::optim::AdamW, growlm_model::Gpt<TB>, TB>,
    target: &GptConfig,
    op: &GrowthConfig,
    seed: u64,
    step: u64,
) -> growlm_ops::Grown<TB> {
    Growth {
        step,
        active: None,
        ..Growth::new(source, target, op, seed)
    }
    .apply(model, optim, AdamWConfig::new().init())
    .unwrap()
}

fn batch(b: usize, t: usize, vocab: usize, salt: usize) -> (Tensor<TB, 2, Int>, Tensor<TB, 2, Int>) {
    let v = |s: usize| -> Vec<i64> { (0..b * t).map(|i| ((i * 13 + s * 7 + i / 3) % vocab) as i64).collect() };
    let dev = Default::default();
    (
        Tensor::from_data(TensorData::new(v(salt), vec![b, t]), &dev),
        Tensor::from_data(TensorData::new(v(salt + 1), vec![b, t]), &dev),
    )
}

/// The optimizer the tests train and grow with.
type Optim = burn::optim::adaptor::OptimizerAdaptor<burn::optim::AdamW, growlm_model::Gpt<TB>, TB>;

/// `model` after `steps` AdamW steps on the test batches (context-long rows), so that its
/// parameters and moments are non-trivial, with its optimizer.
fn trained(cfg: &GptConfig, mut model: growlm_model::Gpt<TB>, steps: usize) -> (growlm_model::Gpt<TB>, Optim) {
    let dev = Default::default();
    let mut optim = AdamWConfig::new().init();
    let masks = AttentionMasks::<TB>::new(cfg, cfg.context_len, &dev);
    for s in 0..steps {
        let (x, y) = batch(2, cfg.context_len, cfg.vocab_size, s);
        let grads = GradientsParams::from_grads(model.loss(x, y, &masks, None).backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    (model, optim)
}

/// Trains `cfg` for a few steps so parameters and moments are non-trivial, grows it into
/// `target`, and returns (max |Δlogit|, |Δloss|) between the small model and the grown one
/// with the mask as it stands at Gb, plus the grown pieces for further checks.
fn grow_and_compare(small: &GptConfig, target: &GptConfig, op: GrowthConfig) -> (f32, f32) {
    let dev = Default::default();
    let fresh = growlm_ops::perturb_norms_and_biases(small.init::<TB>(1, &dev).unwrap());
    let (model, optim) = trained(small, fresh, 3);
    let masks = AttentionMasks::<TB>::new(small, small.context_len, &dev);
    let grown = fresh_grow(small, &model, &optim, target, &op, 99, 3);
    // The ramp records the width operator whose schedule it is.
    assert_eq!(
        Ramp {
            msg: None,
            ..grown.ramp
        },
        Ramp {
            op: Some(op.width),
            ..Ramp::new(small, target, 3, op.effective_ramp())
        }
    );
    let width = grown.ramp.width_mask::<TB>(target, 3, &dev).unwrap();
    let inner = grown.ramp.width_mask::<Flex>(target, 3, &dev).unwrap();
    let tmasks = AttentionMasks::<TB>::new(target, small.context_len, &dev);
    let (x, y) = batch(3, small.context_len, small.vocab_size, 9);
    let before = model.valid().forward(
        x.clone().inner(),
        &AttentionMasks::new(small, small.context_len, &dev),
        None,
    );
    let after = grown.model.valid().forward(
        x.clone().inner(),
        &AttentionMasks::new(target, small.context_len, &dev),
        inner.as_ref(),
    );
    let dl: f32 = (model.loss(x.clone(), y.clone(), &masks, None) - grown.model.loss(x, y, &tmasks, width.as_ref()))
        .abs()
        .into_scalar();
    ((before - after).abs().max().into_scalar(), dl)
}

#[test]
fn growth_preserves_the_function_in_width_depth_and_both() {
    let cases = [
        // width only (PDG): ×1.5 width, heads, FFN
        (GptConfig::new(64, 12, 16, 2, 2), GptConfig::new(64, 12, 24, 2, 3)),
        // depth only (redundant layers): 2 → 4
        (GptConfig::new(64, 12, 16, 2, 2), GptConfig::new(64, 12, 16, 4, 2)),
        // both, uneven: 3 → 5 layers, 96 → 128 width (GPT-Neo-like head_dim 32)
        (GptConfig::new(80, 10, 96, 3, 3), GptConfig::new(80, 10, 128, 5, 4)),
        // both, mirroring 125M → 355M: depth ×2, width ×4/3, heads ×4/3, uneven FFN
        (
            GptConfig::new(50, 8, 24, 2, 3).with_ffn_dim(40),
            GptConfig::new(50, 8, 32, 4, 4).with_ffn_dim(100),
        ),
    ];
    for (i, (s, t)) in cases.iter().enumerate() {
        let (dlogit, dloss) = grow_and_compare(
            s,
            t,
            GrowthConfig {
                ramp_steps: 10,
                ..Default::default()
            },
        );
        assert!(dlogit <= 1e-5, "case {i}: max |Δlogit| {dlogit}");
        assert!(dloss <= 1e-5, "case {i}: |Δloss| {dloss}");
    }
}

#[test]
fn ablations_are_not_function_preserving() {
    let (s, t) = (GptConfig::new(64, 12, 16, 2, 2), GptConfig::new(64, 12, 24, 4, 3));
    let (d, _) = grow_and_compare(&s, &t, GrowthConfig::named("pdg", "random", 10).unwrap());
    assert!(d > 1e-3, "random layers change the function");
    let (d, _) = grow_and_compare(
        &s,
        &t,
        GrowthConfig {
            ramp_steps: 0,
            ..Default::default()
        },
    );
    assert!(d > 1e-3, "switching all width on at once changes the function");
}

#[test]
fn optimizer_moments_follow_the_parameters() {
    let (small, target) = (GptConfig::new(40, 8, 16, 2, 2), GptConfig::new(40, 8, 24, 3, 3));
    let (model, optim) = trained(&small, small.init::<TB>(0, &Default::default()).unwrap(), 2);
    let src_params = named_params::<TB, _>(&model);
    let src_rec = optim.to_record();
    let g = fresh_grow(&small, &model, &optim, &target, &GrowthConfig::default(), 5, 2);
    assert_eq!(
        g.report.layers,
        vec![LayerOrigin::Copy(0), LayerOrigin::Copy(1), LayerOrigin::Redundant(1)]
    );
    let dst_params = named_params::<TB, _>(&g.model);
    let dst_rec = g.optim.to_record();
    let moments = |params: &growlm_ops::NamedParams, rec: &_, path: &str| {
        let (id, t) = &params[path];
        let rec: &std::collections::HashMap<_, _> = rec;
        host_moments::<TB>(rec.get(id).cloned().unwrap(), t.shape.len())
    };
    // wte [40, 16] → [40, 24]: leading block copied, new columns zero.
    let (sm1, sm2) = moments(&src_params, &src_rec.clone().into_iter().collect(), "wte");
    let (dm1, dm2) = moments(&dst_params, &dst_rec.clone().into_iter().collect(), "wte");
    for r in 0..40 {
        assert_eq!(dm1.values[r * 24..r * 24 + 16], sm1.values[r * 16..r * 16 + 16]);
        assert_eq!(dm2.values[r * 24..r * 24 + 16], sm2.values[r * 16..r * 16 + 16]);
        assert!(dm1.values[r * 24 + 16..r * 24 + 24].iter().all(|v| *v == 0.0));
    }
    assert!(sm1.values.iter().any(|v| *v != 0.0));
    // The redundant layer 2 copies layer 1's weights and their moments; its biases and
    // LayerNorm are zero, with zero moments.
    let (s_up, _) = moments(
        &src_params,
        &src_rec.clone().into_iter().collect(),
        "blocks.1.mlp.up.weight",
    );
    let (d_up, _) = moments(
        &dst_params,
        &dst_rec.clone().into_iter().collect(),
        "blocks.2.mlp.up.weight",
    );
    assert_eq!(d_up.values[..64], s_up.values[..64]);
    let (d_b, _) = moments(
        &dst_params,
        &dst_rec.clone().into_iter().collect(),
        "blocks.2.mlp.up.bias",
    );
    assert!(d_b.values.iter().all(|v| *v == 0.0));
    for p in [
        "blocks.2.ln_attn.gamma",
        "blocks.2.ln_mlp.beta",
        "blocks.2.attn.out.bias",
    ] {
        assert!(dst_params[p].1.values.iter().all(|v| *v == 0.0), "{p} must be zero");
    }
    assert_eq!(
        dst_params["blocks.2.attn.query.weight"].1.values[..16],
        src_params["blocks.1.attn.query.weight"].1.values[..16]
    );
}

#[test]
fn the_ramp_activates_exactly_what_eq_6_and_7_give() {
    let (s, t) = (GptConfig::new(10, 4, 96, 1, 3), GptConfig::new(10, 4, 128, 1, 4));
    let ramp = Ramp::new(&s, &t, 100, 10);
    // r = ceil((128 − 96)/10) = 4 dims per step; Q/K/V dims (96 → 128, the fourth head
    // dim by dim) and FFN units (384 → 512) follow with the same fraction (eq. 7).
    for n in 100..=120u64 {
        let hidden = (96 + 4 * (n - 100) as usize).min(128);
        let a = ramp.active_at(n);
        assert_eq!(a.hidden, hidden, "step {n}");
        assert_eq!(a.attn, hidden, "step {n}: attention dims follow the hidden dims");
        assert_eq!(a.ffn, 384 + 128 * (hidden - 96) / 32, "step {n}: FFN in step");
    }
    assert_eq!(
        ramp.active_at(100),
        ActiveWidth {
            hidden: 96,
            attn: 96,
            ffn: 384
        }
    );
    assert_eq!(
        ramp.active_at(101),
        ActiveWidth {
            hidden: 100,
            attn: 100,
            ffn: 400
        }
    );
    // Everything is on at step 108 (8 · 4 = 32 new dims); from then on the mask is gone.
    assert!(ramp.mask_at(107).is_some());
    assert_eq!(ramp.mask_at(108), None);
    assert_eq!(ramp.end_step(), 110);
    assert_eq!(ramp.mask_at(500), None);
    assert_eq!(
        Ramp::new(&s, &t, 100, 0).mask_at(100),
        None,
        "ramp 0 switches everything on at once"
    );
    // Uneven factors: hidden 24 → 32 over 3 steps (r = 3), FFN 72 → 100 follows the
    // fraction rounded down: 3/8 of 28 → 10, 6/8 → 21.
    let (s, t) = (
        GptConfig {
            ffn_dim: Some(72),
            ..GptConfig::new(10, 4, 24, 1, 3)
        },
        GptConfig {
            ffn_dim: Some(100),
            ..GptConfig::new(10, 4, 32, 1, 4)
        },
    );
    let ramp = Ramp::new(&s, &t, 0, 3);
    let ffn: Vec<usize> = (0..4).map(|n| ramp.active_at(n).ffn).collect();
    assert_eq!(ffn, [72, 82, 93, 100]);
    // Depth-only growth: no hidden dims to follow, so time sets the fraction.
    let deeper = GptConfig::new(10, 4, 24, 2, 3);
    let s1 = GptConfig::new(10, 4, 24, 1, 3);
    assert_eq!(Ramp::new(&s1, &deeper, 5, 4).mask_at(5), None);
    // A ramp from a partly active source starts where that source stood.
    let start = ActiveWidth {
        hidden: 100,
        attn: 100,
        ffn: 400,
    };
    let big = GptConfig::new(10, 4, 160, 1, 5);
    let r = Ramp::from_active(start, &big, 7, 3);
    assert_eq!(r.active_at(7), start);
    assert_eq!(r.active_at(8).hidden, 120);
}

#[test]
fn impossible_growths_are_refused() {
    let dev = Default::default();
    let s = GptConfig::new(32, 8, 24, 2, 3);
    let model = s.init::<TB>(0, &dev).unwrap();
    let o = || AdamWConfig::new().init();
    let try_grow = |t: GptConfig| {
        Growth::new(&s, &t, &GrowthConfig::default(), 0)
            .apply(&model, &o(), o())
            .err()
            .unwrap()
    };
    assert!(matches!(
        try_grow(GptConfig::new(32, 8, 16, 2, 2)),
        OpsError::Shrink { what: "d_model", .. }
    ));
    assert!(matches!(
        try_grow(GptConfig::new(32, 8, 24, 1, 3)),
        OpsError::Shrink { what: "n_layers", .. }
    ));
    // 24/3 = 8 per head → 48/4 = 12 per head: the head layout cannot be preserved.
    let e = try_grow(GptConfig::new(32, 8, 48, 2, 4));
    assert!(e.to_string().contains("head_dim"), "{e}");
    let e = try_grow(GptConfig::new(64, 8, 24, 2, 3));
    assert!(e.to_string().contains("vocab_size"), "{e}");
}

fn op(width: &str, depth: &str, ramp_steps: u64) -> GrowthConfig {
    GrowthConfig::named(width, depth, ramp_steps).unwrap()
}

fn alternating(c: GptConfig) -> GptConfig {
    GptConfig {
        attention: growlm_model::AttentionLayers::Alternating { window: 3 },
        ..c
    }
}

#[test]
fn every_function_preserving_combination_preserves_the_function() {
    // A small model and its target, both of 50 tokens and context 8; the last three
    // numbers of `GptConfig::new` for each.
    let pair = |s: [usize; 3], t: [usize; 3]| {
        (
            GptConfig::new(50, 8, s[0], s[1], s[2]),
            GptConfig::new(50, 8, t[0], t[1], t[2]),
        )
    };
    let alt = |(s, t): (GptConfig, GptConfig)| (alternating(s), alternating(t));
    let wider = pair([16, 2, 2], [24, 4, 3]);
    let deeper = pair([16, 3, 2], [16, 6, 2]);
    let x2 = (
        GptConfig::new(50, 8, 16, 2, 2).with_ffn_dim(40),
        GptConfig::new(50, 8, 32, 3, 4).with_ffn_dim(100),
    );
    let clone2 = pair([16, 2, 2], [32, 4, 4]);
    let cases = [
        ("pdg", "redundant", wider.clone()),
        ("pdg", "identity", wider.clone()),
        ("pdg", "redundant", alt(wider.clone())),
        ("pdg", "redundant", alt(deeper.clone())),
        // fpi: an integer hidden factor, uneven head and FFN factors.
        ("fpi", "redundant", x2.clone()),
        ("fpi", "identity", x2),
        ("hypercloning", "redundant", clone2.clone()),
        ("hypercloning", "identity", alt(clone2)),
        ("fpi", "redundant", alt(pair([16, 3, 2], [32, 6, 4]))),
        // MSG: whatever the new values, masks at 0 and gated new layers.
        ("msg", "msg", wider.clone()),
        ("msg", "redundant", wider),
        ("msg", "msg", alt(deeper)),
    ];
    for (w, d, (s, t)) in cases {
        let (dlogit, dloss) = grow_and_compare(&s, &t, op(w, d, 10));
        assert!(
            dlogit <= 1e-5 && dloss <= 1e-5,
            "{w}+{d} {}→{} layers: max |Δlogit| {dlogit}, |Δloss| {dloss}",
            s.n_layers,
            t.n_layers
        );
    }
}

#[test]
fn non_preserving_operators_measurably_change_the_function() {
    let (s, t) = (GptConfig::new(50, 8, 16, 2, 2), GptConfig::new(50, 8, 24, 4, 3));
    for (w, d, s, t) in [
        ("direct-copy", "redundant", &s, &t),
        ("pdg", "random", &s, &t),
        ("pdg", "stack", &s, &t),
        // fpi with an uneven hidden factor: LayerNorm statistics change.
        ("fpi", "redundant", &s, &t),
    ] {
        let (dlogit, _) = grow_and_compare(s, t, op(w, d, 10));
        assert!(
            dlogit > 1e-3,
            "{w}+{d} should change the function, max |Δlogit| {dlogit}"
        );
    }
}

#[test]
fn operators_are_chosen_by_name_and_refuse_what_they_cannot_do() {
    let (s, t) = (GptConfig::new(50, 8, 16, 2, 2), GptConfig::new(50, 8, 24, 2, 3));
    let e = growlm_ops::check_growth(&s, &t, &op("hypercloning", "redundant", 0)).unwrap_err();
    assert!(
        e.to_string().contains("integer multiples") && e.to_string().contains("16 → 24"),
        "{e}"
    );
    // An unknown name is refused when the operator is named (when a config is read).
    let e = GrowthConfig::named("net3net", "redundant", 0).unwrap_err();
    assert!(
        e.to_string().contains("unknown width operator `net3net`") && e.to_string().contains("fpi"),
        "{e}"
    );
    let e = GrowthConfig::named("pdg", "deeper", 0).unwrap_err();
    assert!(
        e.to_string().contains("unknown depth operator") && e.to_string().contains("stack"),
        "{e}"
    );
    // Stacking an alternating 3-layer stack to 4 would put a local layer in a global slot.
    let e = growlm_ops::check_growth(
        &alternating(GptConfig::new(50, 8, 16, 3, 2)),
        &alternating(GptConfig::new(50, 8, 16, 4, 2)),
        &op("pdg", "stack", 0),
    )
    .unwrap_err();
    assert!(e.to_string().contains("attention pattern"), "{e}");
    // Only ramping width operators use ramp_steps.
    assert_eq!(op("pdg", "redundant", 7).effective_ramp(), 7);
    assert_eq!(op("fpi", "redundant", 7).effective_ramp(), 0);
    assert_eq!(op("pdg", "redundant", 7).describe(), "pdg(ramp=7)+redundant");
    assert_eq!(op("fpi", "stack", 7).describe(), "fpi+stack");
}

#[test]
fn depth_operators_place_layers_as_documented() {
    use growlm_ops::depth::find;
    use LayerOrigin::*;
    let (s, t) = (GptConfig::new(50, 8, 16, 3, 2), GptConfig::new(50, 8, 16, 5, 2));
    assert_eq!(
        find("redundant").unwrap().op.layers(&s, &t).unwrap(),
        [Copy(0), Copy(1), Redundant(1), Copy(2), Redundant(2)]
    );
    assert_eq!(
        find("identity").unwrap().op.layers(&s, &t).unwrap(),
        [Copy(0), Copy(1), Identity, Copy(2), Identity]
    );
    assert_eq!(
        find("random").unwrap().op.layers(&s, &t).unwrap(),
        [Copy(0), Copy(1), Random, Copy(2), Random]
    );
    assert_eq!(
        find("stack").unwrap().op.layers(&s, &t).unwrap(),
        [Copy(0), Copy(1), Copy(2), Copy(0), Copy(1)]
    );
    // Alternating global/local ×2 (GPT-Neo 12 → 24 in miniature): copies keep their kind.
    let (s, t) = (
        alternating(GptConfig::new(50, 8, 16, 3, 2)),
        alternating(GptConfig::new(50, 8, 16, 6, 2)),
    );
    assert_eq!(
        find("redundant").unwrap().op.layers(&s, &t).unwrap(),
        [Copy(0), Redundant(0), Redundant(0), Copy(1), Copy(2), Redundant(2)]
    );
}

#[test]
fn replicated_readers_scale_their_moments() {
    // fpi ×2: every hidden dim is read twice, so a query weight entry (rows read hidden
    // dims) is halved, its first moment halved and its second quartered.
    let (small, target) = (GptConfig::new(40, 8, 16, 2, 2), GptConfig::new(40, 8, 32, 2, 4));
    let (model, optim) = trained(&small, small.init::<TB>(0, &Default::default()).unwrap(), 2);
    let g = fresh_grow(&small, &model, &optim, &target, &op("fpi", "redundant", 0), 5, 2);
    let moments = |m: &growlm_model::Gpt<TB>, rec: std::collections::HashMap<_, _>, path: &str| {
        let (id, t) = &named_params::<TB, _>(m)[path];
        let (m1, m2) = host_moments::<TB>(rec.get(id).cloned().unwrap(), t.shape.len());
        (t.values.clone(), m1.values, m2.values)
    };
    let path = "blocks.1.attn.query.weight";
    let (sp, s1, s2) = moments(&model, optim.to_record().into_iter().collect(), path);
    let (dp, d1, d2) = moments(&g.model, g.optim.to_record().into_iter().collect(), path);
    assert!(s1.iter().any(|v| *v != 0.0));
    for r in 0..32 {
        for c in 0..32 {
            let (i, j) = (r * 32 + c, (r % 16) * 16 + c % 16);
            assert_eq!(dp[i], sp[j] * 0.5, "weight [{r}, {c}]");
            assert_eq!(d1[i], s1[j] * 0.5, "first moment [{r}, {c}]");
            assert_eq!(d2[i], s2[j] * 0.25, "second moment [{r}, {c}]");
        }
    }
    // A writer's entries (the MLP's input bias, per FFN unit) are copied unscaled.
    let (sb, _, _) = moments(&model, optim.to_record().into_iter().collect(), "blocks.1.mlp.up.bias");
    let (db, _, _) = moments(
        &g.model,
        g.optim.to_record().into_iter().collect(),
        "blocks.1.mlp.up.bias",
    );
    assert!(sb.iter().any(|v| *v != 0.0));
    assert_eq!(db[..64], sb[..]);
    assert_eq!(db[64..], sb[..]);
}

#[test]
fn aki_takes_new_units_from_the_layer_above() {
    let (small, target) = (GptConfig::new(40, 8, 16, 2, 2), GptConfig::new(40, 8, 32, 2, 4));
    let dev = Default::default();
    let model = growlm_ops::perturb_norms_and_biases(small.init::<TB>(3, &dev).unwrap());
    let optim = AdamWConfig::new().init();
    let g = fresh_grow(&small, &model, &optim, &target, &op("aki", "redundant", 0), 5, 0);
    let (src, dst) = (named_params::<TB, _>(&model), named_params::<TB, _>(&g.model));
    let v = |m: &growlm_ops::NamedParams, p: &str| m[p].1.values.clone();
    // up [16, 64] → [32, 128]; rows read hidden dims (each read twice: ×½).
    let (l0, l1, d0, d1) = (
        v(&src, "blocks.0.mlp.up.weight"),
        v(&src, "blocks.1.mlp.up.weight"),
        v(&dst, "blocks.0.mlp.up.weight"),
        v(&dst, "blocks.1.mlp.up.weight"),
    );
    for r in 0..32 {
        for c in 0..128 {
            let j = (r % 16) * 64 + c % 64;
            let new = r >= 16 || c >= 64;
            let want0 = if new { l1[j] } else { l0[j] } * 0.5;
            assert_eq!(d0[r * 128 + c], want0, "layer 0 [{r}, {c}]");
            assert_eq!(d1[r * 128 + c], l1[j] * 0.5, "the top layer reads itself [{r}, {c}]");
        }
    }
    // A writer: the bias of new FFN units comes from the layer above, unscaled.
    let (b0, b1, db) = (
        v(&src, "blocks.0.mlp.up.bias"),
        v(&src, "blocks.1.mlp.up.bias"),
        v(&dst, "blocks.0.mlp.up.bias"),
    );
    assert_eq!(db[..64], b0[..]);
    assert_eq!(db[64..], b1[..]);
    let (d, _) = grow_and_compare(&small, &target, op("aki", "redundant", 0));
    assert!(d > 1e-3, "aki is not function-preserving: {d}");
}

#[test]
fn msg_scales_new_width_by_phase_and_gates_new_layers() {
    let (s, t) = (GptConfig::new(50, 8, 16, 2, 2), GptConfig::new(50, 8, 24, 4, 3));
    let grown = |w: &str, d: &str, s: &GptConfig, t: &GptConfig| {
        let dev = Default::default();
        let model = s.init::<TB>(1, &dev).unwrap();
        let optim = AdamWConfig::new().init();
        fresh_grow(s, &model, &optim, t, &op(w, d, 10), 5, 100).ramp
    };
    let ramp = grown("msg", "msg", &s, &t);
    // Redundant placement of 2 → 4 layers: the new ones are 1 and 3.
    assert_eq!(ramp.msg, Some(growlm_ops::MsgRamp { new_layers: 0b1010 }));
    assert_eq!(ramp.end_step(), 130);
    // [hidden, attn, ffn] and the gate: FFN and gates over steps 100..110, hidden over
    // 110..120, attention over 120..130.
    for (step, scale, gate) in [
        (100, [0.0, 0.0, 0.0], 0.0),
        (104, [0.0, 0.0, 0.4], 0.4),
        (115, [0.5, 0.0, 1.0], 1.0),
        (127, [1.0, 0.7, 1.0], 1.0),
    ] {
        assert_eq!(ramp.state_at(step), RampState::Scaled { scale, gate }, "step {step}");
    }
    assert_eq!(ramp.state_at(130), RampState::Done);
    // Nothing is held: MSG trains its new entries.
    assert_eq!(ramp.mask_at(104), None);
    let dev = Default::default();
    let m = ramp.width_mask::<Flex>(&t, 115, &dev).unwrap().unwrap();
    assert!((m.hidden_fraction() - (16.0 + 0.5 * 8.0) / 24.0).abs() < 1e-12);
    assert!(ramp.width_mask::<Flex>(&t, 130, &dev).unwrap().is_none());
    // Depth only: one phase, the gate alone.
    let deeper = GptConfig::new(50, 8, 16, 4, 2);
    let ramp = grown("msg", "msg", &s, &deeper);
    assert_eq!(ramp.end_step(), 110);
    assert_eq!(
        ramp.state_at(103),
        RampState::Scaled {
            scale: [1.0; 3],
            gate: 0.3
        }
    );
    // With width `msg` and depth `redundant`, no layer is gated.
    assert_eq!(
        grown("msg", "redundant", &s, &t).msg,
        Some(growlm_ops::MsgRamp { new_layers: 0 })
    );
    // Depth `msg` needs width `msg`.
    let e = growlm_ops::check_growth(&s, &t, &op("pdg", "msg", 10)).unwrap_err();
    assert!(e.to_string().contains("use it with width `msg`"), "{e}");
}

#[test]
fn a_fully_scaled_msg_mask_is_the_unmasked_model_and_a_zero_one_the_small_model() {
    // All factors 1 and gates 1: the same logits as no mask (LayerNorm weighted by ones).
    let t = GptConfig::new(50, 8, 24, 4, 3);
    let dev = Default::default();
    let model = growlm_ops::perturb_norms_and_biases(t.init::<TB>(3, &dev).unwrap()).valid();
    let (x, _) = batch(2, 8, 50, 4);
    let masks = AttentionMasks::new(&t, 8, &dev);
    let plain = model.forward(x.clone().inner(), &masks, None);
    let old = ActiveWidth {
        hidden: 16,
        attn: 16,
        ffn: 64,
    };
    let ones = WidthMask::scaled(&t, old, [1.0; 3], vec![1.0; 4], &dev).unwrap();
    let full = model.forward(x.clone().inner(), &masks, Some(&ones));
    let d: f32 = (plain - full).abs().max().into_scalar();
    assert!(d <= 1e-5, "max |Δlogit| {d}");
    // Factors 0 give the 0/1 mask of the old width exactly.
    let zero = WidthMask::scaled(&t, old, [0.0; 3], vec![], &dev).unwrap();
    let binary = WidthMask::new(&t, old, &dev).unwrap();
    let a = model.forward(x.clone().inner(), &masks, Some(&zero));
    let b = model.forward(x.inner(), &masks, Some(&binary));
    assert_eq!(a.into_data(), b.into_data());
}

/// The ramp's behaviour is its operator's: a growth during MSG's ramp is refused by the
/// ramp (MSG's masks do not compose), during PDG's it is not; a ramp read from a
/// checkpoint written before ramps recorded their operator takes MSG's schedule when it
/// gates blocks, else PDG's.
#[test]
fn the_ramp_asks_its_operator() {
    let (s, t) = (GptConfig::new(50, 8, 16, 2, 2), GptConfig::new(50, 8, 24, 4, 3));
    let grown = |w: &str, d: &str| {
        let model = s.init::<TB>(0, &Default::default()).unwrap();
        let optim = AdamWConfig::new().init::<TB, growlm_model::Gpt<TB>>();
        fresh_grow(&s, &model, &optim, &t, &op(w, d, 10), 5, 100).ramp
    };
    let msg = grown("msg", "msg");
    assert_eq!(msg.schedule().name(), "msg");
    let e = msg.check_growth_at(115).unwrap_err().to_string();
    assert!(e.contains("msg ramp") && e.contains("until step 130"), "{e}");
    msg.check_growth_at(130).unwrap();
    let pdg = grown("pdg", "redundant");
    assert!(pdg.in_progress(105) && pdg.mask_at(105).is_some());
    pdg.check_growth_at(105).unwrap();
    // Written before `op` was recorded.
    let mut old = serde_json::to_value(msg).unwrap();
    old.as_object_mut().unwrap().remove("op");
    let old: Ramp = serde_json::from_value(old).unwrap();
    assert_eq!((old.schedule().name(), old.end_step()), ("msg", 130));
    let mut old = serde_json::to_value(pdg).unwrap();
    old.as_object_mut().unwrap().remove("op");
    let old: Ramp = serde_json::from_value(old).unwrap();
    assert_eq!((old.schedule().name(), old.end_step()), ("pdg", 110));
}
