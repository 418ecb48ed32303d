//! The attention computed the plain way, in f64: what the tests hold the kernel to.

use super::{AttentionPattern, AttentionShape, Rope};

/// The same attention computed the plain way, in f64, for tests: rotate (with `rope`),
/// split heads, repeat each key/value head for its group, full scores, masked softmax,
/// merge.
pub fn reference(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: AttentionShape,
    pattern: AttentionPattern,
    rope: Option<&Rope>,
) -> Vec<f32> {
    let (t, hd, qld, kvld) = (shape.seq, shape.head_dim, shape.q_stride(), shape.kv_stride());
    let half = hd / 2;
    // Element (position i, dim d) of the head at `base`, rotated in f64.
    let read = |x: &[f32], base: usize, ld: usize, i: usize, d: usize| -> f64 {
        let at = |d: usize| x[base + i * ld + d] as f64;
        match rope {
            None => at(d),
            Some(r) => {
                let (c, s) = (r.cos()[i * hd + d] as f64, r.sin()[i * hd + d] as f64);
                let rotated = if d < half { -at(d + half) } else { at(d - half) };
                at(d) * c + rotated * s
            }
        }
    };
    let mut out = vec![0.0f32; shape.len()];
    for b in 0..shape.batch {
        for h in 0..shape.heads {
            let qb = b * t * qld + h * hd;
            let kvb = b * t * kvld + (h / shape.group()) * hd;
            for i in 0..t {
                let lo = pattern.first_key(i);
                let scores: Vec<f64> = (lo..=i)
                    .map(|j| {
                        (0..hd)
                            .map(|d| read(q, qb, qld, i, d) * read(k, kvb, kvld, j, d))
                            .sum::<f64>()
                            * pattern.scale as f64
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f64::MIN, f64::max);
                let z: f64 = scores.iter().map(|s| (s - m).exp()).sum();
                for d in 0..hd {
                    let y: f64 = scores
                        .iter()
                        .enumerate()
                        .map(|(n, s)| (s - m).exp() / z * v[kvb + (lo + n) * kvld + d] as f64)
                        .sum();
                    out[qb + i * qld + d] = y as f32;
                }
            }
        }
    }
    out
}
