//! The fused ops against the decomposed path burn computes (forward to 1e-6, gradients
//! against burn's own backward), against finite differences of an independent f64
//! implementation, and bit for bit across thread counts.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Bool, Int, Tensor, TensorData};
use burn_flex::Flex;
use growlm_fused::{attention, cross_entropy, entropy, AttentionPattern, AttentionShape, Weight};

mod common;
use common::{on_threads, tensor, to_vec, values, Ad};

/// The decomposed attention the model used before the fused op: split heads, scores,
/// causal mask, softmax, merge.
fn decomposed<B: burn::tensor::backend::Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    heads: usize,
    p: AttentionPattern,
) -> Tensor<B, 3> {
    let [b, t, a] = q.dims();
    let hd = a / heads;
    let split = |y: Tensor<B, 3>| y.reshape([b, t, heads, hd]).swap_dims(1, 2);
    let (q, k, v) = (split(q), split(k), split(v));
    let mask: Vec<bool> = (0..t * t)
        .map(|n| {
            let (i, j) = (n / t, n % t);
            j > i || (p.window > 0 && i - j >= p.window)
        })
        .collect();
    let mask = Tensor::<B, 2, Bool>::from_data(TensorData::new(mask, [t, t]), &Default::default())
        .reshape([1, 1, t, t])
        .expand([b, heads, t, t]);
    let scores = q
        .matmul(k.swap_dims(2, 3))
        .mul_scalar(p.scale)
        .mask_fill(mask, f32::NEG_INFINITY);
    softmax(scores, 3).matmul(v).swap_dims(1, 2).reshape([b, t, a])
}

const SHAPE: AttentionShape = AttentionShape::multi_head(2, 19, 3, 8);

fn patterns() -> [AttentionPattern; 3] {
    [
        AttentionPattern { window: 0, scale: 1.0 },
        AttentionPattern { window: 5, scale: 1.0 },
        AttentionPattern {
            window: 0,
            scale: 0.353_553_4,
        },
    ]
}

fn inputs(seed: u64) -> [Vec<f32>; 3] {
    [
        values(SHAPE.len(), seed, 0.8),
        values(SHAPE.len(), seed + 1, 0.8),
        values(SHAPE.len(), seed + 2, 1.0),
    ]
}

/// The fused attention of `[q, k, v]` on backend `B`, as values.
fn fused_values<B: burn::tensor::backend::Backend>(qkv: [&[f32]; 3], p: AttentionPattern) -> Vec<f32> {
    let dims = [SHAPE.batch, SHAPE.seq, SHAPE.heads * SHAPE.head_dim];
    let [q, k, v] = qkv.map(|x| tensor::<B, 3>(x.to_vec(), dims));
    to_vec(attention(q, k, v, SHAPE.heads, SHAPE.heads, p, None).ok().unwrap())
}

#[test]
fn attention_forward_matches_the_decomposed_path_and_an_f64_reference() {
    let dims = [SHAPE.batch, SHAPE.seq, SHAPE.heads * SHAPE.head_dim];
    for p in patterns() {
        let [q, k, v] = inputs(7);
        let want = decomposed(
            tensor::<Flex, 3>(q.clone(), dims),
            tensor(k.clone(), dims),
            tensor(v.clone(), dims),
            SHAPE.heads,
            p,
        );
        let reference = attention::reference(&q, &k, &v, SHAPE, p, None);
        for backend in ["flex", "autodiff"] {
            let got = match backend {
                "flex" => fused_values::<Flex>([&q, &k, &v], p),
                _ => fused_values::<Ad>([&q, &k, &v], p),
            };
            let want = to_vec(want.clone());
            let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(worst <= 1e-6, "{backend} {p:?}: fused vs decomposed differ by {worst}");
            let worst = got
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(
                worst <= 1e-6,
                "{backend} {p:?}: fused vs f64 reference differ by {worst}"
            );
        }
    }
}

#[test]
fn attention_gradients_match_burns_backward_of_the_decomposed_path() {
    let dims = [SHAPE.batch, SHAPE.seq, SHAPE.heads * SHAPE.head_dim];
    let w = values(SHAPE.len(), 99, 1.0);
    for p in patterns() {
        let [q, k, v] = inputs(3);
        let grads = |fused: bool| {
            let (tq, tk, tv) = (
                tensor::<Ad, 3>(q.clone(), dims).require_grad(),
                tensor::<Ad, 3>(k.clone(), dims).require_grad(),
                tensor::<Ad, 3>(v.clone(), dims).require_grad(),
            );
            let y = if fused {
                attention(tq.clone(), tk.clone(), tv.clone(), SHAPE.heads, SHAPE.heads, p, None)
                    .ok()
                    .unwrap()
            } else {
                decomposed(tq.clone(), tk.clone(), tv.clone(), SHAPE.heads, p)
            };
            let g = (y * tensor::<Ad, 3>(w.clone(), dims)).sum().backward();
            [tq, tk, tv].map(|t| to_vec(t.grad(&g).unwrap()))
        };
        let (fused, plain) = (grads(true), grads(false));
        for (name, (a, b)) in ["q", "k", "v"].iter().zip(fused.iter().zip(&plain)) {
            let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(worst <= 2e-6, "{p:?}: d{name} differs by {worst}");
        }
    }
}

#[test]
fn attention_gradients_match_finite_differences_of_the_f64_reference() {
    let shape = AttentionShape::multi_head(1, 6, 2, 3);
    let dims = [1, 6, 6];
    for p in [
        AttentionPattern { window: 0, scale: 1.0 },
        AttentionPattern { window: 2, scale: 0.5 },
    ] {
        let (q, k, v) = (values(36, 1, 1.0), values(36, 2, 1.0), values(36, 3, 1.0));
        let w = values(36, 4, 1.0);
        let objective = |q: &[f32], k: &[f32], v: &[f32]| -> f64 {
            attention::reference(q, k, v, shape, p, None)
                .iter()
                .zip(&w)
                .map(|(y, w)| *y as f64 * *w as f64)
                .sum()
        };
        let (tq, tk, tv) = (
            tensor::<Ad, 3>(q.clone(), dims).require_grad(),
            tensor::<Ad, 3>(k.clone(), dims).require_grad(),
            tensor::<Ad, 3>(v.clone(), dims).require_grad(),
        );
        let y = attention(tq.clone(), tk.clone(), tv.clone(), 2, 2, p, None)
            .ok()
            .unwrap();
        let g = (y * tensor::<Ad, 3>(w.clone(), dims)).sum().backward();
        let analytic = [tq, tk, tv].map(|t| to_vec(t.grad(&g).unwrap()));
        let eps = 1e-2f32;
        for which in 0..3 {
            for i in 0..36 {
                let mut plus = [q.clone(), k.clone(), v.clone()];
                let mut minus = plus.clone();
                plus[which][i] += eps;
                minus[which][i] -= eps;
                let fd = (objective(&plus[0], &plus[1], &plus[2]) - objective(&minus[0], &minus[1], &minus[2]))
                    / (2.0 * eps as f64);
                let a = analytic[which][i] as f64;
                assert!(
                    (a - fd).abs() <= 1e-3 * (1.0 + fd.abs()),
                    "{p:?} input {which}[{i}]: {a} vs finite difference {fd}"
                );
            }
        }
    }
}

#[test]
fn attention_is_bit_identical_on_one_thread_and_on_two() {
    let [q, k, v] = inputs(11);
    let p = AttentionPattern { window: 4, scale: 1.0 };
    let run = |threads: usize| {
        on_threads(threads, || {
            let (mut out, mut lse) = (vec![0.0; SHAPE.len()], vec![0.0; SHAPE.rows()]);
            attention::forward(&q, &k, &v, SHAPE, p, None, &mut out, &mut lse);
            let mut g = [vec![0.0; SHAPE.len()], vec![0.0; SHAPE.len()], vec![0.0; SHAPE.len()]];
            let [a, b, c] = &mut g;
            attention::backward(&q, &k, &v, &out, &lse, SHAPE, p, None, [a, b, c]);
            (out, g)
        })
    };
    let (one, two) = (run(1), run(2));
    assert!(one.0.iter().zip(&two.0).all(|(a, b)| a.to_bits() == b.to_bits()));
    for (a, b) in one.1.iter().zip(&two.1) {
        assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
}

#[test]
fn attention_refuses_what_it_does_not_serve() {
    type Nd = burn_ndarray::NdArray;
    let dims = [1, 4, 6];
    let t = || tensor::<Nd, 3>(values(24, 5, 1.0), dims);
    assert!(attention(t(), t(), t(), 2, 2, AttentionPattern { window: 0, scale: 1.0 }, None).is_err());
    let f = || tensor::<Flex, 3>(values(24, 5, 1.0), dims);
    // 4 heads do not divide 6 dims.
    assert!(attention(f(), f(), f(), 4, 4, AttentionPattern { window: 0, scale: 1.0 }, None).is_err());
}

fn decomposed_entropy<B: burn::tensor::backend::Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
) -> Tensor<B, 1> {
    let [n, _] = logits.dims();
    log_softmax(logits, 1).gather(1, targets.reshape([n, 1])).mean().neg()
}

#[test]
fn cross_entropy_matches_the_decomposed_path_forward_and_backward() {
    let (rows, vocab) = (21, 37);
    let x = values(rows * vocab, 8, 4.0);
    let ids: Vec<i64> = (0..rows as i64).map(|i| (i * 7) % vocab as i64).collect();
    let targets = || Tensor::<Ad, 1, Int>::from_data(TensorData::new(ids.clone(), [rows]), &Default::default());
    let run = |fused: bool| {
        let l = tensor::<Ad, 2>(x.clone(), [rows, vocab]).require_grad();
        let loss = if fused {
            cross_entropy(l.clone(), targets()).ok().unwrap()
        } else {
            decomposed_entropy(l.clone(), targets())
        };
        let value = to_vec(loss.clone())[0];
        let g = loss.mul_scalar(3.0).backward();
        (value, to_vec(l.grad(&g).unwrap()))
    };
    let (fused, plain) = (run(true), run(false));
    assert!((fused.0 - plain.0).abs() <= 1e-6, "loss {} vs {}", fused.0, plain.0);
    let worst = fused
        .1
        .iter()
        .zip(&plain.1)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(worst <= 1e-7, "gradient differs by {worst}");
    // The plain backend gives the same loss.
    let flex = cross_entropy(
        tensor::<Flex, 2>(x.clone(), [rows, vocab]),
        Tensor::<Flex, 1, Int>::from_data(TensorData::new(ids.clone(), [rows]), &Default::default()),
    )
    .ok()
    .unwrap();
    assert_eq!(to_vec(flex)[0].to_bits(), fused.0.to_bits());
}

#[test]
fn cross_entropy_gradient_matches_finite_differences_in_f64() {
    let (rows, vocab) = (3, 5);
    let x = values(rows * vocab, 21, 2.0);
    let ids = vec![4i64, 0, 2];
    let loss64 = |x: &[f32]| -> f64 {
        (0..rows)
            .map(|r| {
                let row = &x[r * vocab..(r + 1) * vocab];
                let lse = row.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
                lse - row[ids[r] as usize] as f64
            })
            .sum::<f64>()
            / rows as f64
    };
    let (loss, lse) = entropy::forward(&x, vocab, &ids);
    assert!((loss as f64 - loss64(&x)).abs() < 1e-6);
    let mut grad = x.clone();
    entropy::backward_in_place(&mut grad, vocab, &ids, &lse, 1.0);
    for i in 0..x.len() {
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus[i] += 1e-2;
        minus[i] -= 1e-2;
        let fd = (loss64(&plus) - loss64(&minus)) / 2e-2;
        assert!((grad[i] as f64 - fd).abs() < 1e-4, "logit {i}: {} vs {fd}", grad[i]);
    }
}

#[test]
fn cross_entropy_leaves_out_of_range_targets_to_the_decomposed_path() {
    let l = tensor::<Flex, 2>(values(6, 1, 1.0), [2, 3]);
    let t = Tensor::<Flex, 1, Int>::from_data(TensorData::new(vec![0i64, 3], [2]), &Default::default());
    assert!(cross_entropy(l, t).is_err());
    assert_eq!(
        entropy::check_targets(&[0, 3], 3),
        Err(entropy::TargetOutOfRange {
            row: 1,
            id: 3,
            vocab: 3
        })
    );
}

#[test]
fn gelu_matches_the_decomposed_path_forward_and_backward() {
    let x = values(3 * 700, 17, 4.0);
    let decomposed = |x: Tensor<Ad, 2>| {
        let k = 2.0 * 0.797_884_560_802_865_4;
        let two_u = (x.clone() * x.clone()).mul_scalar(0.044715 * k).add_scalar(k) * x.clone();
        x * burn::tensor::activation::sigmoid(two_u)
    };
    let w = values(3 * 700, 18, 1.0);
    let run = |fused: bool| {
        let t = tensor::<Ad, 2>(x.clone(), [3, 700]).require_grad();
        let y = if fused {
            growlm_fused::gelu(t.clone()).ok().unwrap()
        } else {
            decomposed(t.clone())
        };
        let out = to_vec(y.clone());
        let g = (y * tensor::<Ad, 2>(w.clone(), [3, 700])).sum().backward();
        (out, to_vec(t.grad(&g).unwrap()))
    };
    let (a, b) = (run(true), run(false));
    for (name, (x, y)) in [("forward", (&a.0, &b.0)), ("backward", (&a.1, &b.1))] {
        let worst = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
        assert!(worst <= 2e-6, "{name} differs by {worst}");
    }
}

#[test]
fn layer_norm_matches_the_decomposed_path_forward_and_backward() {
    let (rows, d) = (70, 40);
    let x = values(rows * d, 31, 3.0);
    let (g0, b0) = (values(d, 32, 1.0), values(d, 33, 1.0));
    let w = values(rows * d, 34, 1.0);
    let run = |fused: bool| {
        let t = tensor::<Ad, 3>(x.clone(), [2, rows / 2, d]).require_grad();
        let g = tensor::<Ad, 1>(g0.clone(), [d]).require_grad();
        let b = tensor::<Ad, 1>(b0.clone(), [d]).require_grad();
        let y = if fused {
            growlm_fused::layer_norm(t.clone(), g.clone(), b.clone(), 1e-5)
                .ok()
                .unwrap()
        } else {
            let (var, mean) = t.clone().var_mean_bias(2);
            (t.clone() - mean).div((var + 1e-5).sqrt()) * g.clone().unsqueeze::<3>() + b.clone().unsqueeze::<3>()
        };
        let out = to_vec(y.clone());
        let grads = (y * tensor::<Ad, 3>(w.clone(), [2, rows / 2, d])).sum().backward();
        (
            out,
            to_vec(t.grad(&grads).unwrap()),
            to_vec(g.grad(&grads).unwrap()),
            to_vec(b.grad(&grads).unwrap()),
        )
    };
    let (a, b) = (run(true), run(false));
    for (name, x, y, tol) in [
        ("y", &a.0, &b.0, 2e-6),
        ("dx", &a.1, &b.1, 1e-5),
        ("dgamma", &a.2, &b.2, 1e-5),
        ("dbeta", &a.3, &b.3, 1e-5),
    ] {
        let worst = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
        assert!(worst <= tol, "{name} differs by {worst}");
    }
    // The scale's gradient sums over rows in blocks: the same bits on one thread and on two.
    let grads = |threads: usize| {
        on_threads(threads, || {
            let (mut y, mut dy) = (vec![0.0; x.len()], w.clone());
            let (m, s) = growlm_fused::norm::forward(&x, &g0, &b0, 1e-5, &mut y);
            let (dg, db) = growlm_fused::norm::backward(&x, &g0, &m, &s, &mut dy);
            (dy, dg, db)
        })
    };
    let (one, two) = (grads(1), grads(2));
    assert!(one
        .0
        .iter()
        .chain(&one.1)
        .chain(&one.2)
        .zip(two.0.iter().chain(&two.1).chain(&two.2))
        .all(|(p, q)| p.to_bits() == q.to_bits()));
}

/// `y = x·w + b` and the gradients of `Σ y∘r` in f64, by hand: `dx = r·wᵀ`, `dw = xᵀ·r`,
/// `db = Σ_rows r`.
#[allow(clippy::type_complexity)]
fn linear_reference(
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    r: &[f32],
    (rows, k, n): (usize, usize, usize),
) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let at = |v: &[f32], i: usize| f64::from(v[i]);
    let y = (0..rows * n)
        .map(|i| {
            let (row, j) = (i / n, i % n);
            b.map_or(0.0, |b| at(b, j)) + (0..k).map(|c| at(x, row * k + c) * at(w, c * n + j)).sum::<f64>()
        })
        .collect();
    let dx = (0..rows * k)
        .map(|i| (0..n).map(|j| at(r, (i / k) * n + j) * at(w, (i % k) * n + j)).sum())
        .collect();
    let dw = (0..k * n)
        .map(|i| {
            (0..rows)
                .map(|row| at(x, row * k + i / n) * at(r, row * n + i % n))
                .sum()
        })
        .collect();
    let db = (0..n).map(|j| (0..rows).map(|row| at(r, row * n + j)).sum()).collect();
    (y, dx, dw, db)
}

#[test]
fn linear_matches_the_decomposed_path_and_the_f64_reference_forward_and_backward() {
    let dims = (37, 20, 30);
    let (rows, k, n) = dims;
    let (x0, w0, b0, r0) = (
        values(rows * k, 41, 1.0),
        values(k * n, 42, 0.5),
        values(n, 43, 1.0),
        values(rows * n, 44, 1.0),
    );
    let worst = |a: &[f32], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(p, q)| (f64::from(*p) - q).abs())
            .fold(0.0, f64::max)
    };
    for bias in [true, false] {
        let run = |fused: bool| {
            let x = tensor::<Ad, 2>(x0.clone(), [rows, k]).require_grad();
            let w = tensor::<Ad, 2>(w0.clone(), [k, n]).require_grad();
            let b = bias.then(|| tensor::<Ad, 1>(b0.clone(), [n]).require_grad());
            let y = if fused {
                growlm_fused::linear(x.clone(), w.clone(), b.clone(), Weight::InOut)
                    .ok()
                    .unwrap()
            } else {
                let y = x.clone().matmul(w.clone());
                match &b {
                    Some(b) => y + b.clone().unsqueeze::<2>(),
                    None => y,
                }
            };
            let out = to_vec(y.clone());
            let grads = (y * tensor::<Ad, 2>(r0.clone(), [rows, n])).sum().backward();
            let db = b.map(|b| to_vec(b.grad(&grads).unwrap()));
            (
                out,
                to_vec(x.grad(&grads).unwrap()),
                to_vec(w.grad(&grads).unwrap()),
                db,
            )
        };
        let (fused, decomposed) = (run(true), run(false));
        let (y, dx, dw, db) = linear_reference(&x0, &w0, bias.then_some(&b0[..]), &r0, dims);
        let as64 = |v: &[f32]| v.iter().map(|x| f64::from(*x)).collect::<Vec<_>>();
        for (name, got, want) in [("y", &fused.0, &y), ("dx", &fused.1, &dx), ("dw", &fused.2, &dw)] {
            assert!(
                worst(got, want) <= 1e-5,
                "bias {bias}: {name} vs f64 by {}",
                worst(got, want)
            );
        }
        for (name, got, want) in [
            ("y", &fused.0, &decomposed.0),
            ("dx", &fused.1, &decomposed.1),
            ("dw", &fused.2, &decomposed.2),
        ] {
            assert!(
                worst(got, &as64(want)) <= 1e-6,
                "bias {bias}: {name} vs decomposed by {}",
                worst(got, &as64(want))
            );
        }
        match (fused.3, decomposed.3) {
            (Some(got), Some(want)) => {
                assert!(worst(&got, &db) <= 1e-5 && worst(&got, &as64(&want)) <= 1e-5, "db");
            }
            (None, None) => assert!(!bias),
            _ => panic!("bias {bias}: a bias gradient on one path only"),
        }
        // Without autodiff: the same forward.
        let plain = growlm_fused::linear(
            tensor::<Flex, 2>(x0.clone(), [rows, k]),
            tensor::<Flex, 2>(w0.clone(), [k, n]),
            bias.then(|| tensor::<Flex, 1>(b0.clone(), [n])),
            Weight::InOut,
        );
        assert_eq!(to_vec(plain.ok().unwrap()), fused.0);
    }
    // Finite differences of the f64 loss Σ y∘r through the f32 kernel's forward agree with
    // its backward on a few entries of each input.
    let loss = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
        let y = growlm_fused::linear::forward(x, (w, Weight::InOut), Some(b), dims);
        y.iter().zip(&r0).map(|(y, r)| f64::from(*y) * f64::from(*r)).sum()
    };
    let (dx, dw, db) = growlm_fused::linear::backward(&x0, (&w0, Weight::InOut), &r0, dims, [true; 3]);
    let (dx, dw, db) = (dx.unwrap(), dw.unwrap(), db.unwrap());
    let h = 1e-2f32;
    for (which, i) in [(0, 5), (0, 700), (1, 3), (1, 599), (2, 0), (2, 29)] {
        let (mut xs, mut ws, mut bs) = (x0.clone(), w0.clone(), b0.clone());
        let (target, analytic) = match which {
            0 => (&mut xs, dx[i]),
            1 => (&mut ws, dw[i]),
            _ => (&mut bs, db[i]),
        };
        let v = target[i];
        target[i] = v + h;
        let up = loss(&xs, &ws, &bs);
        let (mut xs2, mut ws2, mut bs2) = (x0.clone(), w0.clone(), b0.clone());
        match which {
            0 => xs2[i] = v - h,
            1 => ws2[i] = v - h,
            _ => bs2[i] = v - h,
        }
        let fd = (up - loss(&xs2, &ws2, &bs2)) / (2.0 * f64::from(h));
        assert!(
            (fd - f64::from(analytic)).abs() <= 2e-3 * fd.abs().max(1.0),
            "input {which}[{i}]: {fd} vs {analytic}"
        );
    }
}

#[test]
fn linear_is_bit_identical_on_one_thread_and_on_two_above_the_parallel_size() {
    let dims = (256, 192, 200);
    let (rows, k, n) = dims;
    assert!(rows * k * n >= growlm_fused::linear::PARALLEL_OPS);
    let (x, w, b, dy) = (
        values(rows * k, 51, 1.0),
        values(k * n, 52, 0.5),
        values(n, 53, 1.0),
        values(rows * n, 54, 1.0),
    );
    let on = |threads: usize| {
        on_threads(threads, || {
            let mut out = Vec::new();
            for layout in [Weight::InOut, Weight::OutIn] {
                let y = growlm_fused::linear::forward(&x, (&w, layout), Some(&b), dims);
                let (dx, dw, db) = growlm_fused::linear::backward(&x, (&w, layout), &dy, dims, [true; 3]);
                out.extend([y, dx.unwrap(), dw.unwrap(), db.unwrap()]);
            }
            out
        })
    };
    let (one, two) = (on(1), on(2));
    for (a, b) in one.iter().zip(&two) {
        assert!(a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits()));
    }
}

#[test]
fn linear_with_a_transposed_weight_matches_the_decomposed_head() {
    // The LM head: `x·headᵀ` with `head: [n, k]`, no bias.
    let (rows, k, n) = (29, 16, 40);
    let (x0, h0, r0) = (
        values(rows * k, 61, 1.0),
        values(n * k, 62, 0.5),
        values(rows * n, 63, 1.0),
    );
    let run = |fused: bool| {
        let x = tensor::<Ad, 2>(x0.clone(), [rows, k]).require_grad();
        let h = tensor::<Ad, 2>(h0.clone(), [n, k]).require_grad();
        let y = if fused {
            growlm_fused::linear(x.clone(), h.clone(), None, Weight::OutIn)
                .ok()
                .unwrap()
        } else {
            x.clone().matmul(h.clone().transpose())
        };
        let out = to_vec(y.clone());
        let grads = (y * tensor::<Ad, 2>(r0.clone(), [rows, n])).sum().backward();
        (out, to_vec(x.grad(&grads).unwrap()), to_vec(h.grad(&grads).unwrap()))
    };
    let (fused, decomposed) = (run(true), run(false));
    // The f64 reference with the weight transposed into `[k, n]`.
    let w: Vec<f32> = (0..k * n).map(|i| h0[(i % n) * k + i / n]).collect();
    let (y, dx, dw, _) = linear_reference(&x0, &w, None, &r0, (rows, k, n));
    let dh: Vec<f64> = (0..n * k).map(|i| dw[(i % k) * n + i / k]).collect();
    let worst = |a: &[f32], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(p, q)| (f64::from(*p) - q).abs())
            .fold(0.0, f64::max)
    };
    let as64 = |v: &[f32]| v.iter().map(|x| f64::from(*x)).collect::<Vec<_>>();
    for (name, got, want, dec) in [
        ("y", &fused.0, &y, &decomposed.0),
        ("dx", &fused.1, &dx, &decomposed.1),
        ("dhead", &fused.2, &dh, &decomposed.2),
    ] {
        assert!(worst(got, want) <= 1e-5, "{name} vs f64 by {}", worst(got, want));
        assert!(
            worst(got, &as64(dec)) <= 1e-6,
            "{name} vs decomposed by {}",
            worst(got, &as64(dec))
        );
    }
}
