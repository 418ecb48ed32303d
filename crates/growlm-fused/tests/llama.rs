//! The fused Llama ops — grouped-query attention with rotary positions inside the kernel,
//! RMSNorm and SwiGLU — against the decomposed path burn computes (forward, and gradients
//! against burn's own backward), against an f64 implementation written here (values, and
//! finite differences of it for the gradients), and bit for bit across thread counts.

use burn::tensor::activation::{silu, softmax};
use burn::tensor::{backend::Backend, Bool, Tensor, TensorData};
use burn_flex::Flex;
use growlm_fused::{attention, rms_norm, swiglu, AttentionPattern, AttentionShape, Rope};

mod common;
use common::{on_threads, tensor, to_vec, values, Ad};

fn worst(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn bits(a: &[f32]) -> Vec<u32> {
    a.iter().map(|x| x.to_bits()).collect()
}

/// 4 query heads on 2 key/value heads (the main command's ratio), with a head_dim that is
/// not a multiple of the vector width.
const GQA: AttentionShape = AttentionShape {
    batch: 2,
    seq: 13,
    heads: 4,
    kv_heads: 2,
    head_dim: 6,
};

fn pattern(shape: AttentionShape) -> AttentionPattern {
    AttentionPattern {
        window: 0,
        scale: 1.0 / (shape.head_dim as f32).sqrt(),
    }
}

/// The Llama attention as the model's decomposed path computes it: rotated copies of q and
/// k (transformers' `rotate_half` form), key/value heads repeated for their groups, split
/// heads, scaled scores, a causal mask, a softmax and the merge.
fn decomposed<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    s: AttentionShape,
    rope: &Rope,
) -> Tensor<B, 3> {
    let (b, t, h, kv, hd) = (s.batch, s.seq, s.heads, s.kv_heads, s.head_dim);
    let table = |x: &[f32]| tensor::<B, 4>(x[..t * hd].to_vec(), [1, t, 1, hd]);
    let (cos, sin) = (table(rope.cos()), table(rope.sin()));
    let rotate = |x: Tensor<B, 4>| {
        let half = hd / 2;
        let (x1, x2) = (x.clone().narrow(3, 0, half), x.clone().narrow(3, half, half));
        x * cos.clone() + Tensor::cat(vec![x2.neg(), x1], 3) * sin.clone()
    };
    let group = |y: Tensor<B, 4>| {
        y.unsqueeze_dim::<5>(3)
            .expand([b, t, kv, h / kv, hd])
            .reshape([b, t, h, hd])
    };
    let q = rotate(q.reshape([b, t, h, hd])).swap_dims(1, 2);
    let k = group(rotate(k.reshape([b, t, kv, hd]))).swap_dims(1, 2);
    let v = group(v.reshape([b, t, kv, hd])).swap_dims(1, 2);
    let mask: Vec<bool> = (0..t * t).map(|n| n % t > n / t).collect();
    let mask = Tensor::<B, 2, Bool>::from_data(TensorData::new(mask, [t, t]), &Default::default())
        .reshape([1, 1, t, t])
        .expand([b, h, t, t]);
    let scores = q
        .matmul(k.swap_dims(2, 3))
        .mul_scalar(pattern(s).scale)
        .mask_fill(mask, f32::NEG_INFINITY);
    softmax(scores, 3).matmul(v).swap_dims(1, 2).reshape([b, t, h * hd])
}

fn gqa_inputs(s: AttentionShape, seed: u64) -> [Vec<f32>; 3] {
    [
        values(s.len(), seed, 1.0),
        values(s.kv_len(), seed + 1, 1.0),
        values(s.kv_len(), seed + 2, 1.0),
    ]
}

fn dims(s: AttentionShape) -> ([usize; 3], [usize; 3]) {
    (
        [s.batch, s.seq, s.heads * s.head_dim],
        [s.batch, s.seq, s.kv_heads * s.head_dim],
    )
}

#[test]
fn rotary_tables_hold_transformers_angles() {
    // head_dim 4, theta 10000: inverse frequencies 1 and 1/100, each for both halves.
    let r = Rope::new(3, 4, 10_000.0);
    assert_eq!(r.head_dim(), 4);
    let angles = [0.0f32, 0.0, 0.0, 0.0, 1.0, 0.01, 1.0, 0.01, 2.0, 0.02, 2.0, 0.02];
    for (i, a) in angles.iter().enumerate() {
        assert_eq!(r.cos()[i], a.cos(), "cos[{i}]");
        assert_eq!(r.sin()[i], a.sin(), "sin[{i}]");
    }
    assert!(r.covers(3, 4) && r.covers(2, 4));
    assert!(!r.covers(4, 4) && !r.covers(3, 6));
}

#[test]
fn grouped_rotary_attention_matches_the_decomposed_path_and_an_f64_reference() {
    let rope = Rope::new(20, GQA.head_dim, 10_000.0);
    let (qd, kvd) = dims(GQA);
    let [q, k, v] = gqa_inputs(GQA, 5);
    let want = to_vec(decomposed(
        tensor::<Flex, 3>(q.clone(), qd),
        tensor(k.clone(), kvd),
        tensor(v.clone(), kvd),
        GQA,
        &rope,
    ));
    let reference = growlm_fused::attention::reference(&q, &k, &v, GQA, pattern(GQA), Some(&rope));
    let fused = |ad: bool| {
        let p = pattern(GQA);
        if ad {
            let [q, k, v] = [(&q, qd), (&k, kvd), (&v, kvd)].map(|(x, d)| tensor::<Ad, 3>(x.clone(), d));
            to_vec(
                attention(q, k, v, GQA.heads, GQA.kv_heads, p, Some(&rope))
                    .ok()
                    .unwrap(),
            )
        } else {
            let [q, k, v] = [(&q, qd), (&k, kvd), (&v, kvd)].map(|(x, d)| tensor::<Flex, 3>(x.clone(), d));
            to_vec(
                attention(q, k, v, GQA.heads, GQA.kv_heads, p, Some(&rope))
                    .ok()
                    .unwrap(),
            )
        }
    };
    for ad in [false, true] {
        let got = fused(ad);
        assert!(
            worst(&got, &want) <= 1e-6,
            "autodiff {ad}: vs decomposed {}",
            worst(&got, &want)
        );
        assert!(
            worst(&got, &reference) <= 1e-6,
            "autodiff {ad}: vs f64 {}",
            worst(&got, &reference)
        );
    }
}

#[test]
fn grouped_rotary_attention_gradients_match_burns_backward_of_the_decomposed_path() {
    let rope = Rope::new(GQA.seq, GQA.head_dim, 10_000.0);
    let (qd, kvd) = dims(GQA);
    let [q, k, v] = gqa_inputs(GQA, 8);
    let w = values(GQA.len(), 9, 1.0);
    let grads = |fused: bool| {
        let tq = tensor::<Ad, 3>(q.clone(), qd).require_grad();
        let tk = tensor::<Ad, 3>(k.clone(), kvd).require_grad();
        let tv = tensor::<Ad, 3>(v.clone(), kvd).require_grad();
        let y = if fused {
            attention(
                tq.clone(),
                tk.clone(),
                tv.clone(),
                GQA.heads,
                GQA.kv_heads,
                pattern(GQA),
                Some(&rope),
            )
            .ok()
            .unwrap()
        } else {
            decomposed(tq.clone(), tk.clone(), tv.clone(), GQA, &rope)
        };
        let g = (y * tensor::<Ad, 3>(w.clone(), qd)).sum().backward();
        [tq, tk, tv].map(|t| to_vec(t.grad(&g).unwrap()))
    };
    let (fused, plain) = (grads(true), grads(false));
    for (name, (a, b)) in ["q", "k", "v"].iter().zip(fused.iter().zip(&plain)) {
        assert!(worst(a, b) <= 1e-6, "d{name} differs by {}", worst(a, b));
    }
}

#[test]
fn grouped_rotary_attention_gradients_match_finite_differences_of_the_f64_reference() {
    let s = AttentionShape {
        batch: 1,
        seq: 5,
        heads: 4,
        kv_heads: 2,
        head_dim: 4,
    };
    let rope = Rope::new(s.seq, s.head_dim, 100.0);
    let (qd, kvd) = dims(s);
    let p = AttentionPattern { window: 0, scale: 0.5 };
    let [q, k, v] = gqa_inputs(s, 21);
    let w = values(s.len(), 22, 1.0);
    let objective = |q: &[f32], k: &[f32], v: &[f32]| -> f64 {
        growlm_fused::attention::reference(q, k, v, s, p, Some(&rope))
            .iter()
            .zip(&w)
            .map(|(y, w)| *y as f64 * *w as f64)
            .sum()
    };
    let tq = tensor::<Ad, 3>(q.clone(), qd).require_grad();
    let tk = tensor::<Ad, 3>(k.clone(), kvd).require_grad();
    let tv = tensor::<Ad, 3>(v.clone(), kvd).require_grad();
    let y = attention(tq.clone(), tk.clone(), tv.clone(), s.heads, s.kv_heads, p, Some(&rope))
        .ok()
        .unwrap();
    let g = (y * tensor::<Ad, 3>(w.clone(), qd)).sum().backward();
    let analytic = [tq, tk, tv].map(|t| to_vec(t.grad(&g).unwrap()));
    let eps = 1e-2f32;
    for which in 0..3 {
        for i in 0..analytic[which].len() {
            let mut plus = [q.clone(), k.clone(), v.clone()];
            let mut minus = plus.clone();
            plus[which][i] += eps;
            minus[which][i] -= eps;
            let fd = (objective(&plus[0], &plus[1], &plus[2]) - objective(&minus[0], &minus[1], &minus[2]))
                / (2.0 * eps as f64);
            let a = analytic[which][i] as f64;
            assert!(
                (a - fd).abs() <= 1e-3 * (1.0 + fd.abs()),
                "input {which}[{i}]: {a} vs finite difference {fd}"
            );
        }
    }
}

#[test]
fn grouped_rotary_attention_is_bit_identical_on_one_thread_and_on_two() {
    let rope = Rope::new(GQA.seq, GQA.head_dim, 10_000.0);
    let [q, k, v] = gqa_inputs(GQA, 31);
    let dy = values(GQA.len(), 32, 1.0);
    let p = pattern(GQA);
    let run = |threads: usize| {
        on_threads(threads, || {
            let (mut out, mut lse) = (vec![0.0; GQA.len()], vec![0.0; GQA.rows()]);
            growlm_fused::attention::forward(&q, &k, &v, GQA, p, Some(&rope), &mut out, &mut lse);
            let (mut dq, mut dk, mut dv) = (vec![0.0; GQA.len()], vec![0.0; GQA.kv_len()], vec![0.0; GQA.kv_len()]);
            growlm_fused::attention::backward(&q, &k, &v, &dy, &lse, GQA, p, Some(&rope), [&mut dq, &mut dk, &mut dv]);
            [out, dq, dk, dv].map(|x| bits(&x))
        })
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn attention_refuses_groups_and_tables_that_do_not_fit() {
    // 4 positions, 4 query heads of 8 dims.
    let f = |n: usize| tensor::<Flex, 3>(values(n, 5, 1.0), [1, 4, n / 4]);
    let p = AttentionPattern { window: 0, scale: 1.0 };
    // 3 key/value heads do not divide 4 query heads.
    assert!(attention(f(128), f(96), f(96), 4, 3, p, None).is_err());
    // k holds 2 heads' worth where 1 is asked for.
    assert!(attention(f(128), f(64), f(64), 4, 1, p, None).is_err());
    // Tables for 3 positions cannot rotate 4, nor tables for heads of 6 dims heads of 8.
    assert!(attention(f(128), f(64), f(64), 4, 2, p, Some(&Rope::new(3, 8, 10_000.0))).is_err());
    assert!(attention(f(128), f(64), f(64), 4, 2, p, Some(&Rope::new(4, 6, 10_000.0))).is_err());
    let fits = Rope::new(4, 8, 10_000.0);
    assert!(attention(f(128), f(64), f(64), 4, 2, p, Some(&fits)).is_ok());
}

/// RMSNorm in f64: `x/√(mean(x²) + eps)·gamma` per row of `d`.
fn rms_reference(x: &[f32], gamma: &[f32], eps: f64) -> Vec<f64> {
    let d = gamma.len();
    x.chunks(d)
        .flat_map(|row| {
            let ms = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / d as f64;
            let s = 1.0 / (ms + eps).sqrt();
            row.iter().zip(gamma).map(move |(&v, &g)| v as f64 * s * g as f64)
        })
        .collect()
}

#[test]
fn rms_norm_matches_the_decomposed_path_an_f64_reference_and_finite_differences() {
    let (rows, d) = (70, 40);
    let x = values(rows * d, 41, 3.0);
    let g0 = values(d, 42, 1.0);
    let w = values(rows * d, 43, 1.0);
    let run = |fused: bool| {
        let t = tensor::<Ad, 3>(x.clone(), [2, rows / 2, d]).require_grad();
        let g = tensor::<Ad, 1>(g0.clone(), [d]).require_grad();
        let y = if fused {
            rms_norm(t.clone(), g.clone(), 1e-5).ok().unwrap()
        } else {
            let ms = t.clone().square().mean_dim(2);
            t.clone() * (ms + 1e-5).sqrt().recip() * g.clone().unsqueeze::<3>()
        };
        let out = to_vec(y.clone());
        let grads = (y * tensor::<Ad, 3>(w.clone(), [2, rows / 2, d])).sum().backward();
        (out, to_vec(t.grad(&grads).unwrap()), to_vec(g.grad(&grads).unwrap()))
    };
    let (a, b) = (run(true), run(false));
    assert!(worst(&a.0, &b.0) <= 1e-6, "y differs by {}", worst(&a.0, &b.0));
    assert!(worst(&a.1, &b.1) <= 1e-6, "dx differs by {}", worst(&a.1, &b.1));
    // dgamma sums 70 rows in f32, in another order than burn's: against the exact (f64)
    // sum, each within 1e-6 of the sum of the terms' magnitudes (f32's rounding of a sum).
    for j in 0..d {
        let terms: Vec<f64> = (0..rows)
            .map(|r| {
                let row = &x[r * d..(r + 1) * d];
                let ms = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / d as f64;
                w[r * d + j] as f64 * row[j] as f64 / (ms + 1e-5).sqrt()
            })
            .collect();
        let exact: f64 = terms.iter().sum();
        let bound = 1e-6 * terms.iter().map(|t| t.abs()).sum::<f64>();
        for (who, got) in [("fused", a.2[j]), ("burn", b.2[j])] {
            let off = (got as f64 - exact).abs();
            assert!(off <= bound, "dgamma[{j}]: {who} off by {off}, bound {bound}");
        }
    }
    let reference = rms_reference(&x, &g0, 1e-5);
    for (got, want) in a.0.iter().zip(&reference) {
        assert!(
            (*got as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
            "{got} vs f64 {want}"
        );
    }
    // Finite differences of the f64 reference for a few inputs and every scale.
    let objective = |x: &[f32], g: &[f32]| -> f64 {
        rms_reference(x, g, 1e-5)
            .iter()
            .zip(&w)
            .map(|(y, w)| y * *w as f64)
            .sum()
    };
    let eps = 1e-3f32;
    for i in (0..rows * d).step_by(97) {
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus[i] += eps;
        minus[i] -= eps;
        let fd = (objective(&plus, &g0) - objective(&minus, &g0)) / (2.0 * eps as f64);
        assert!(
            (a.1[i] as f64 - fd).abs() <= 1e-3 * (1.0 + fd.abs()),
            "dx[{i}] {} vs {fd}",
            a.1[i]
        );
    }
    for j in 0..d {
        let (mut plus, mut minus) = (g0.clone(), g0.clone());
        plus[j] += eps;
        minus[j] -= eps;
        let fd = (objective(&x, &plus) - objective(&x, &minus)) / (2.0 * eps as f64);
        assert!(
            (a.2[j] as f64 - fd).abs() <= 1e-3 * (1.0 + fd.abs()),
            "dgamma[{j}] {} vs {fd}",
            a.2[j]
        );
    }
}

#[test]
fn rms_norm_is_bit_identical_on_one_thread_and_on_two() {
    // 300 rows: several blocks of rows, so the scale's gradient adds partial sums.
    let (rows, d) = (300, 24);
    let x = values(rows * d, 51, 2.0);
    let g = values(d, 52, 1.0);
    let dy0 = values(rows * d, 53, 1.0);
    let run = |threads: usize| {
        on_threads(threads, || {
            let mut y = vec![0.0; x.len()];
            let rstd = growlm_fused::norm::rms_forward(&x, &g, 1e-6, &mut y);
            let mut dy = dy0.clone();
            let dg = growlm_fused::norm::rms_backward(&x, &g, &rstd, &mut dy);
            [y, dy, dg].map(|v| bits(&v))
        })
    };
    assert_eq!(run(1), run(2));
}

/// SwiGLU in f64 on rows of `2f` (gate, then up).
fn swiglu_reference(gu: &[f32], f: usize) -> Vec<f64> {
    gu.chunks(2 * f)
        .flat_map(|row| {
            (0..f).map(move |j| {
                let (g, u) = (row[j] as f64, row[f + j] as f64);
                g / (1.0 + (-g).exp()) * u
            })
        })
        .collect()
}

#[test]
fn swiglu_matches_the_decomposed_path_an_f64_reference_and_finite_differences() {
    let (rows, f) = (37, 44);
    let gu = values(rows * 2 * f, 61, 5.0);
    let w = values(rows * f, 62, 1.0);
    let run = |fused: bool| {
        let t = tensor::<Ad, 2>(gu.clone(), [rows, 2 * f]).require_grad();
        let y = if fused {
            swiglu(t.clone()).ok().unwrap()
        } else {
            silu(t.clone().narrow(1, 0, f)) * t.clone().narrow(1, f, f)
        };
        let out = to_vec(y.clone());
        let g = (y * tensor::<Ad, 2>(w.clone(), [rows, f])).sum().backward();
        (out, to_vec(t.grad(&g).unwrap()))
    };
    let (a, b) = (run(true), run(false));
    for (name, x, y) in [("forward", &a.0, &b.0), ("backward", &a.1, &b.1)] {
        for (p, q) in x.iter().zip(y) {
            assert!((p - q).abs() <= 1e-6 * (1.0 + q.abs()), "{name}: {p} vs {q}");
        }
    }
    for (got, want) in a.0.iter().zip(swiglu_reference(&gu, f)) {
        assert!(
            (*got as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
            "{got} vs f64 {want}"
        );
    }
    let objective = |gu: &[f32]| -> f64 { swiglu_reference(gu, f).iter().zip(&w).map(|(y, w)| y * *w as f64).sum() };
    let eps = 1e-3f32;
    for i in (0..gu.len()).step_by(13) {
        let (mut plus, mut minus) = (gu.clone(), gu.clone());
        plus[i] += eps;
        minus[i] -= eps;
        let fd = (objective(&plus) - objective(&minus)) / (2.0 * eps as f64);
        assert!(
            (a.1[i] as f64 - fd).abs() <= 1e-3 * (1.0 + fd.abs()),
            "d[{i}] {} vs {fd}",
            a.1[i]
        );
    }
    // Bit for bit on one thread and on two (rows split across tasks), forward and backward.
    let big = values(400 * 2 * f, 63, 4.0);
    let run = |threads: usize| {
        on_threads(threads, || {
            let t = tensor::<Ad, 2>(big.clone(), [400, 2 * f]).require_grad();
            let y = swiglu(t.clone()).ok().unwrap();
            let g = y.clone().sum().backward();
            (bits(&to_vec(y)), bits(&to_vec(t.grad(&g).unwrap())))
        })
    };
    assert_eq!(run(1), run(2));
    // An odd last dim is no gate-and-up pair: refused.
    assert!(swiglu(tensor::<Flex, 2>(values(6, 1, 1.0), [2, 3])).is_err());
}
