//! Model tests: shapes, causality, parameter/FLOP counts, and the property strict function
//! preservation stands on: a wide model holding a small model in its leading blocks, with
//! the rest masked, gives the small model's logits.

use burn::module::{Module, Param};
use burn::tensor::{Int, Tensor, TensorData};
use burn_flex::Flex;
use growlm_model::*;

type B = Flex;

fn tokens(b: usize, t: usize, vocab: usize, salt: usize) -> Tensor<B, 2, Int> {
    let v: Vec<i64> = (0..b * t).map(|i| ((i * 31 + salt * 17 + 7) % vocab) as i64).collect();
    Tensor::from_data(TensorData::new(v, vec![b, t]), &Default::default())
}

fn max_abs_diff(a: Tensor<B, 3>, b: Tensor<B, 3>) -> f32 {
    (a - b).abs().max().into_scalar()
}

#[test]
fn logits_have_batch_seq_vocab_shape() {
    let cfg = GptConfig::new(64, 16, 32, 2, 4);
    let model = cfg.init::<B>(0, &Default::default()).unwrap();
    let masks = AttentionMasks::new(&cfg, 10, &Default::default());
    let logits = model.forward(tokens(3, 10, 64, 0), &masks, None);
    assert_eq!(logits.dims(), [3, 10, 64]);
    // A fresh model predicts close to uniform: loss near ln(vocab).
    let loss: f32 = model
        .loss(tokens(3, 10, 64, 0), tokens(3, 10, 64, 1), &masks, None)
        .into_scalar();
    assert!((loss - (64f32).ln()).abs() < 0.1, "loss {loss}");
}

#[test]
fn changing_a_later_token_leaves_earlier_logits_unchanged() {
    for attention in [AttentionLayers::Global, AttentionLayers::Alternating { window: 3 }] {
        let mut cfg = GptConfig::new(50, 12, 24, 3, 3);
        cfg.attention = attention;
        let model = cfg.init::<B>(1, &Default::default()).unwrap();
        let masks = AttentionMasks::new(&cfg, 12, &Default::default());
        let a = tokens(2, 12, 50, 0);
        let mut data = a.to_data().convert::<i64>().to_vec::<i64>().unwrap();
        data[8] = (data[8] + 1) % 50; // row 0, position 8
        let b: Tensor<B, 2, Int> = Tensor::from_data(TensorData::new(data, vec![2, 12]), &Default::default());
        let (la, lb) = (model.forward(a, &masks, None), model.forward(b, &masks, None));
        let early = max_abs_diff(la.clone().slice([0..2, 0..8]), lb.clone().slice([0..2, 0..8]));
        assert_eq!(early, 0.0, "positions before the change must not move");
        let late = max_abs_diff(la.slice([0..1, 8..12]), lb.slice([0..1, 8..12]));
        assert!(late > 1e-4, "the changed position must matter");
    }
}

#[test]
fn local_layers_do_not_see_past_their_window() {
    // One local layer of window 2 (layer 1); with only that layer's effect isolated we
    // check the mask directly: position 5 must ignore position 0..=3 in a local layer.
    let mut cfg = GptConfig::new(20, 8, 8, 2, 2);
    cfg.attention = AttentionLayers::Alternating { window: 2 };
    assert_eq!(cfg.window(0), None);
    assert_eq!(cfg.window(1), Some(2));
    // FLOPs count the window, not the full length, for the local layer.
    let global = GptConfig::new(20, 8, 8, 2, 2);
    let diff = global.flops_per_token(8) - cfg.flops_per_token(8);
    assert_eq!(diff, 12.0 * (8.0 - 2.0) * 8.0);
}

#[test]
fn parameter_count_matches_the_module() {
    for cfg in [
        GptConfig::new(256, 64, 48, 3, 4),
        GptConfig::new(100, 32, 30, 2, 5).with_ffn_dim(70).with_head_dim(4),
    ] {
        let model = cfg.init::<B>(0, &Default::default()).unwrap();
        assert_eq!(cfg.num_params(), model.num_params());
    }
}

#[test]
fn flops_follow_the_documented_formula() {
    // d=16, L=2, H=2, hd=8 (A=16), F=64, V=10, T=4, batch 3.
    let cfg = GptConfig::new(10, 8, 16, 2, 2);
    let n = 2 * (4 * 16 * 16 + 2 * 16 * 64) + 16 * 10; // 4256
    assert_eq!(cfg.num_matmul_params(), n);
    let per_token = 6.0 * n as f64 + 2.0 * 12.0 * 4.0 * 16.0; // 25536 + 1536
    assert_eq!(cfg.flops_per_token(4), per_token);
    assert_eq!(cfg.flops_per_step(3, 4), per_token * 12.0);
}

#[test]
fn invalid_configs_name_the_key() {
    let err = GptConfig::new(256, 64, 30, 2, 4)
        .validate("stages[1].model")
        .unwrap_err()
        .to_string();
    assert!(err.contains("stages[1].model.d_model"), "{err}");
    assert!(err.contains("not divisible by n_heads"), "{err}");
    let err = GptConfig::new(256, 0, 32, 2, 4)
        .validate("model")
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.context_len"), "{err}");
    assert!(GptConfig::new(256, 8, 32, 2, 4).with_ffn_dim(0).validate("m").is_err());
}

#[test]
fn full_mask_equals_no_mask() {
    let cfg = GptConfig::new(40, 8, 24, 2, 3);
    let model = cfg.init::<B>(3, &Default::default()).unwrap();
    let masks = AttentionMasks::new(&cfg, 8, &Default::default());
    let full = WidthMask::new(&cfg, ActiveWidth::full(&cfg), &Default::default()).unwrap();
    let d = max_abs_diff(
        model.forward(tokens(2, 8, 40, 2), &masks, None),
        model.forward(tokens(2, 8, 40, 2), &masks, Some(&full)),
    );
    assert!(d <= 1e-5, "{d}");
    let bad = WidthMask::<B>::new(
        &cfg,
        ActiveWidth {
            hidden: 25,
            attn: 24,
            ffn: 96,
        },
        &Default::default(),
    );
    assert!(matches!(bad, Err(ModelError::InvalidMask { what: "hidden", .. })));
}

/// Copies `small` into the leading block of `wide` (both 1-D or 2-D parameters).
fn embed2(wide: &Param<Tensor<B, 2>>, small: &Param<Tensor<B, 2>>) -> Param<Tensor<B, 2>> {
    let [r, c] = small.dims();
    Param::from_tensor(wide.val().slice_assign([0..r, 0..c], small.val()))
}
fn embed1(wide: &Param<Tensor<B, 1>>, small: &Param<Tensor<B, 1>>) -> Param<Tensor<B, 1>> {
    let [n] = small.dims();
    Param::from_tensor(wide.val().slice_assign(0..n, small.val()))
}
fn embed_dense(w: &Dense<B>, s: &Dense<B>) -> Dense<B> {
    Dense {
        weight: embed2(&w.weight, &s.weight),
        bias: match (&w.bias, &s.bias) {
            (Some(wb), Some(sb)) => Some(embed1(wb, sb)),
            _ => None,
        },
    }
}
fn embed_ln(w: &LayerNorm<B>, s: &LayerNorm<B>) -> LayerNorm<B> {
    let mut out = w.clone();
    out.gamma = embed1(&w.gamma, &s.gamma);
    out.beta = Some(embed1(w.beta.as_ref().unwrap(), s.beta.as_ref().unwrap()));
    out
}

#[test]
fn masked_wide_model_gives_the_small_models_logits() {
    // (small, wide) shapes: uneven factors in width, heads and FFN; head_dim is shared.
    let cases = [
        (GptConfig::new(64, 16, 16, 2, 2), GptConfig::new(64, 16, 24, 2, 3)),
        (
            GptConfig::new(97, 12, 24, 3, 3),
            GptConfig::new(97, 12, 32, 3, 4).with_ffn_dim(200),
        ),
        (
            GptConfig::new(256, 20, 12, 1, 1).with_ffn_dim(10),
            GptConfig::new(256, 20, 60, 1, 5).with_ffn_dim(33),
        ),
        (
            GptConfig::new(50, 9, 30, 2, 5).with_head_dim(6),
            GptConfig::new(50, 9, 48, 2, 8).with_head_dim(6),
        ),
    ];
    for (i, (sc, wc)) in cases.iter().enumerate() {
        let dev = Default::default();
        let small = sc.init::<B>(10 + i as u64, &dev).unwrap();
        let mut wide = wc.init::<B>(100 + i as u64, &dev).unwrap();
        wide.wte = embed2(&wide.wte, &small.wte);
        wide.wpe = Some(embed2(wide.wpe.as_ref().unwrap(), small.wpe.as_ref().unwrap()));
        wide.ln_f = embed_ln(&wide.ln_f, &small.ln_f);
        for (wb, sb) in wide.blocks.iter_mut().zip(&small.blocks) {
            wb.ln_attn = embed_ln(&wb.ln_attn, &sb.ln_attn);
            wb.ln_mlp = embed_ln(&wb.ln_mlp, &sb.ln_mlp);
            wb.attn.query = embed_dense(&wb.attn.query, &sb.attn.query);
            wb.attn.key = embed_dense(&wb.attn.key, &sb.attn.key);
            wb.attn.value = embed_dense(&wb.attn.value, &sb.attn.value);
            wb.attn.out = embed_dense(&wb.attn.out, &sb.attn.out);
            wb.mlp.up = embed_dense(&wb.mlp.up, &sb.mlp.up);
            wb.mlp.down = embed_dense(&wb.mlp.down, &sb.mlp.down);
        }
        let active = ActiveWidth {
            hidden: sc.d_model,
            attn: sc.attn_dim(),
            ffn: sc.ffn_dim(),
        };
        let mask = WidthMask::new(wc, active, &dev).unwrap();
        let t = sc.context_len;
        let masks = AttentionMasks::new(sc, t, &dev);
        let x = tokens(3, t, sc.vocab_size, i);
        let a = small.forward(x.clone(), &masks, None);
        let b = wide.forward(x.clone(), &masks, Some(&mask));
        let d = max_abs_diff(a, b.clone());
        assert!(d <= 1e-5, "case {i}: max |Δlogit| = {d}");
        // Without the mask the extra parameters change the function.
        let unmasked = wide.forward(x, &masks, None);
        assert!(max_abs_diff(unmasked, b) > 1e-3, "case {i}: the mask must matter");
    }
}

/// Zeroes columns `from..` of a `[d_in, d_out]` weight and entries `from..` of its bias.
fn zero_outputs(d: &Dense<B>, from: usize) -> Dense<B> {
    let [r, c] = d.weight.dims();
    let keep = |n: usize| -> Vec<f32> { (0..n).map(|i| if i < from { 1.0 } else { 0.0 }).collect() };
    let cols = Tensor::<B, 1>::from_data(TensorData::new(keep(c), vec![c]), &Default::default());
    Dense {
        weight: Param::from_tensor(d.weight.val() * cols.clone().unsqueeze_dim::<2>(0).repeat_dim(0, r)),
        bias: d.bias.as_ref().map(|b| Param::from_tensor(b.val() * cols)),
    }
}

#[test]
fn eq_7_masks_query_key_and_value_per_dim() {
    // 3 heads of 8 dims; 13 attention dims on: heads 0 and the first 5 dims of head 1.
    // Masking them must equal zeroing those output dims of Q, K and V by hand.
    let cfg = GptConfig::new(30, 8, 24, 2, 3);
    let model = cfg.init::<B>(5, &Default::default()).unwrap();
    let masks = AttentionMasks::new(&cfg, 8, &Default::default());
    let partial = ActiveWidth {
        hidden: 20,
        attn: 13,
        ffn: 80,
    };
    let masked = model.forward(
        tokens(2, 8, 30, 4),
        &masks,
        Some(&WidthMask::new(&cfg, partial, &Default::default()).unwrap()),
    );
    let mut by_hand = model.clone();
    for b in by_hand.blocks.iter_mut() {
        b.attn.query = zero_outputs(&b.attn.query, 13);
        b.attn.key = zero_outputs(&b.attn.key, 13);
        b.attn.value = zero_outputs(&b.attn.value, 13);
    }
    let all_attn = ActiveWidth { attn: 24, ..partial };
    let reference = by_hand.forward(
        tokens(2, 8, 30, 4),
        &masks,
        Some(&WidthMask::new(&cfg, all_attn, &Default::default()).unwrap()),
    );
    let d = max_abs_diff(masked.clone(), reference);
    assert!(d <= 1e-5, "{d}");
    // And the partly-on head matters: one more dim changes the output.
    let more = ActiveWidth { attn: 14, ..partial };
    let other = model.forward(
        tokens(2, 8, 30, 4),
        &masks,
        Some(&WidthMask::new(&cfg, more, &Default::default()).unwrap()),
    );
    assert!(max_abs_diff(masked, other) > 1e-4);
}

#[test]
fn restore_masked_resets_exactly_the_masked_entries() {
    type AB = burn_autodiff::Autodiff<B>;
    use burn::module::AutodiffModule;
    let cfg = GptConfig::new(12, 6, 8, 1, 2);
    let frozen = cfg.init::<AB>(1, &Default::default()).unwrap();
    let mut trained = cfg.init::<AB>(2, &Default::default()).unwrap();
    // Biases start at zero; give the trained one distinct values so the check can fail.
    let distinct: Vec<f32> = (1..=8).map(|i| i as f32).collect();
    trained.blocks[0].attn.out.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(distinct, vec![8]),
        &Default::default(),
    )));
    let active = ActiveWidth {
        hidden: 5,
        attn: 3,
        ffn: 20,
    };
    let out = trained.clone().restore_masked(&frozen.valid(), &cfg, active);
    let host = |p: &Param<Tensor<AB, 2>>| p.val().into_data().to_vec::<f32>().unwrap();
    let host1 = |p: &Param<Tensor<AB, 1>>| p.val().into_data().to_vec::<f32>().unwrap();
    // wte [12, 8]: hidden columns 0..5 trained, 5..8 frozen.
    let (o, t, f) = (host(&out.wte), host(&trained.wte), host(&frozen.wte));
    for (i, v) in o.iter().enumerate() {
        let want = if i % 8 < 5 { t[i] } else { f[i] };
        assert_eq!(*v, want, "wte entry {i}");
    }
    // query [8, 8]: rows are hidden dims, columns attention dims (no bias, as in GPT-Neo).
    let (b, bf) = (&out.blocks[0].attn.query, &frozen.blocks[0].attn.query);
    let (o, t, f) = (
        host(&b.weight),
        host(&trained.blocks[0].attn.query.weight),
        host(&bf.weight),
    );
    for (i, v) in o.iter().enumerate() {
        let want = if i / 8 < 5 && i % 8 < 3 { t[i] } else { f[i] };
        assert_eq!(*v, want, "query entry {i}");
    }
    assert!(b.bias.is_none());
    // The output projection's bias follows its columns, the hidden dims: 0..5 trained.
    let bias = |m: &growlm_model::Gpt<AB>| host1(m.blocks[0].attn.out.bias.as_ref().unwrap());
    let (o, t, f) = (bias(&out), bias(&trained), bias(&frozen));
    assert_eq!(o[..5], t[..5]);
    assert_eq!(o[5..], f[5..]);
    assert_ne!(t[5..], f[5..]);
    // down [32, 8]: rows FFN units, columns hidden.
    let (o, t, f) = (
        host(&out.blocks[0].mlp.down.weight),
        host(&trained.blocks[0].mlp.down.weight),
        host(&frozen.blocks[0].mlp.down.weight),
    );
    for (i, v) in o.iter().enumerate() {
        let want = if i / 8 < 20 && i % 8 < 5 { t[i] } else { f[i] };
        assert_eq!(*v, want, "down entry {i}");
    }
    // LayerNorm: hidden dims.
    let (o, t, f) = (
        host1(&out.ln_f.gamma),
        host1(&trained.ln_f.gamma),
        host1(&frozen.ln_f.gamma),
    );
    assert_eq!((&o[..5], &o[5..]), (&t[..5], &f[5..]));
    // The parameters stay trainable leaves with their ids.
    assert_eq!(out.wte.id, trained.wte.id);
    assert!(out.wte.val().is_require_grad());
}

/// Llama's grouped key/value heads are held as the forward pass masks them: each takes the
/// mask of the first query head it serves, so a masked key/value head is restored too.
#[test]
fn restore_masked_holds_llamas_masked_key_value_heads() {
    type AB = burn_autodiff::Autodiff<B>;
    use burn::module::AutodiffModule;
    // 4 query heads of width 2 on 2 key/value heads: query width 8, key/value width 4.
    let cfg = GptConfig::llama(12, 6, 8, 1, 4, 2);
    let frozen = cfg.init::<AB>(1, &Default::default()).unwrap();
    let trained = cfg.init::<AB>(2, &Default::default()).unwrap();
    // 2 of 4 query heads active (query columns 0..4): key/value head 0 serves query heads
    // 0-1 (active), head 1 serves 2-3 (masked): key/value columns 0..2 trained, 2..4 held.
    let active = ActiveWidth {
        hidden: 8,
        attn: 4,
        ffn: cfg.ffn_dim(),
    };
    let out = trained.clone().restore_masked(&frozen.valid(), &cfg, active);
    let host = |m: &growlm_model::Gpt<AB>| m.blocks[0].attn.key.weight.val().into_data().to_vec::<f32>().unwrap();
    let (o, t, f) = (host(&out), host(&trained), host(&frozen));
    assert_eq!(o.len(), 8 * 4);
    for (i, v) in o.iter().enumerate() {
        let want = if i % 4 < 2 { t[i] } else { f[i] };
        assert_eq!(*v, want, "key entry {i}");
    }
    assert_ne!(t, f);
}

/// `gelu_new` against its tanh definition evaluated in f64, and its autodiff gradient
/// against the analytic derivative of that definition.
#[test]
fn gelu_new_matches_the_tanh_formula_and_its_derivative() {
    type A = burn_autodiff::Autodiff<Flex>;
    let c = (2.0f64 / std::f64::consts::PI).sqrt();
    let f = |x: f64| 0.5 * x * (1.0 + (c * (x + 0.044715 * x.powi(3))).tanh());
    let df = |x: f64| {
        let u = c * (x + 0.044715 * x.powi(3));
        let t = u.tanh();
        0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x)
    };
    let xs = [-12.0f32, -3.5, -1.0, -0.25, 0.0, 0.3, 1.0, 2.0, 5.0, 20.0];
    let x = Tensor::<A, 1>::from_data(TensorData::new(xs.to_vec(), vec![xs.len()]), &Default::default()).require_grad();
    let y = gelu_new(x.clone());
    let grad = y.clone().sum().backward();
    let (y, g) = (
        y.into_data().to_vec::<f32>().unwrap(),
        x.grad(&grad).unwrap().into_data().to_vec::<f32>().unwrap(),
    );
    for (i, &xi) in xs.iter().enumerate() {
        let (want, dwant) = (f(xi as f64), df(xi as f64));
        assert!(
            (y[i] as f64 - want).abs() <= 2e-6 * (1.0 + want.abs()),
            "gelu_new({xi}) = {}, want {want}",
            y[i]
        );
        assert!(
            (g[i] as f64 - dwant).abs() <= 2e-6 * (1.0 + dwant.abs()),
            "gelu_new'({xi}) = {}, want {dwant}",
            g[i]
        );
    }
    // Hand-worked: gelu_new(1) = 0.5·(1 + tanh(0.7978846·1.044715)) = 0.8411920.
    assert!((y[6] - 0.841_192).abs() < 1e-6);
}

/// Mixed precision: the model cast to bf16 computes a loss close to the f32 model's, and
/// its backward pass lands f32 gradients on the f32 parameters, close to the f32 model's.
#[test]
fn a_bf16_cast_model_trains_the_f32_master_weights() {
    use burn::tensor::{DType, FloatDType};
    type A = burn_autodiff::Autodiff<Flex>;
    let cfg = GptConfig::new(64, 16, 32, 2, 4);
    let dev = Default::default();
    let model = cfg.init::<A>(0, &dev).unwrap();
    let masks = AttentionMasks::new(&cfg, 16, &dev);
    let x = || {
        Tensor::<A, 2, Int>::from_data(
            TensorData::new((0..32).map(|i| (i * 7 % 64) as i64).collect::<Vec<_>>(), vec![2, 16]),
            &dev,
        )
    };
    let y = || {
        Tensor::<A, 2, Int>::from_data(
            TensorData::new((0..32).map(|i| (i * 5 % 64) as i64).collect::<Vec<_>>(), vec![2, 16]),
            &dev,
        )
    };
    let full = model.loss(x(), y(), &masks, None);
    let g_full = full.clone().backward();
    let low = model.clone().cast(FloatDType::BF16);
    assert_eq!(low.wte.val().dtype(), DType::BF16);
    let half = low.loss(x(), y(), &masks, None);
    assert_eq!(half.dtype(), DType::F32);
    let g_half = half.clone().backward();
    let (lf, lh): (f32, f32) = (full.into_scalar(), half.into_scalar());
    assert!((lf - lh).abs() < 2e-2 * lf, "loss f32 {lf}, bf16 {lh}");
    let grad = |g: &_| model.blocks[0].mlp.up.weight.val().grad(g).unwrap();
    let (gf, gh) = (grad(&g_full), grad(&g_half));
    assert_eq!(gh.dtype(), DType::F32);
    let rel = ((gf.clone() - gh).abs().max().into_scalar()) / gf.abs().max().into_scalar();
    assert!(rel < 5e-2, "bf16 gradient off by {rel} of the largest f32 one");
}

#[test]
fn activation_count_follows_the_formula() {
    // One layer, s = 4, b = 2, h = 8, a = 2, vocab 10:
    // 4·2·8·(34 + 5·2·4/8)·2 = 64·39·2 = 4992; logits 2·4·2·10·4 = 640.
    let m = GptConfig::new(10, 4, 8, 1, 2);
    assert_eq!(m.activation_bytes(2, 4), 4992.0 + 640.0);
    assert_eq!(m.train_state_bytes(), (m.num_params() * 16) as f64);
}

/// The parameter table describes exactly the model's parameters: the same paths and
/// shapes as burn's module tree, and as many values as `num_params`.
#[test]
fn the_parameter_table_matches_the_module_tree() {
    use burn::module::ModuleVisitor;
    struct Shapes(Vec<String>, Vec<(String, Vec<usize>)>);
    impl<B: burn::tensor::backend::Backend> ModuleVisitor<B> for Shapes {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.0.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.0.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            self.1.push((self.0.join("."), p.val().dims().to_vec()));
        }
    }
    let cfg = GptConfig::new(64, 16, 24, 3, 3);
    let model = cfg.init::<Flex>(0, &Default::default()).unwrap();
    let mut v = Shapes(vec![], vec![]);
    model.visit(&mut v);
    let mut tree = v.1;
    let mut table: Vec<(String, Vec<usize>)> = cfg
        .param_specs()
        .iter()
        .map(|s| (s.path.clone(), s.shape(&cfg)))
        .collect();
    tree.sort();
    table.sort();
    assert_eq!(table, tree);
    let total: usize = table.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
    assert_eq!(total, cfg.num_params());
}
