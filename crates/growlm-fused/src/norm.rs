//! Fused LayerNorm (GPT-Neo's pre-norm blocks) and RMSNorm (Llama's) over the last dim
//! (docs/design.md §Model): one pass per row forward, keeping each row's mean (LayerNorm) and
//! reciprocal standard deviation, and one backward that gives the input's, the scale's and
//! (LayerNorm) the shift's gradients.
//!
//! Rows run on rayon's pool. The scale and shift gradients are sums over rows: each block
//! of [`ROWS_PER_TASK`] rows sums its own (fixed by the block, not by the thread that runs
//! it), and the blocks' sums are added in block order, so the result does not depend on the
//! number of threads.

use rayon::prelude::*;

/// Rows per rayon task.
pub const ROWS_PER_TASK: usize = 32;

/// `y = (x − mean)/√(var + eps)·gamma + beta` per row of `x: [rows, d]` (biased variance);
/// also each row's mean and `1/√(var + eps)`.
///
/// # Panics
/// If `x.len()` is not a multiple of `d = gamma.len()`, or `beta` and `y` disagree.
pub fn forward(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, y: &mut [f32]) -> (Vec<f32>, Vec<f32>) {
    let d = gamma.len();
    assert!(
        d > 0 && x.len() % d == 0 && beta.len() == d && y.len() == x.len(),
        "fused LayerNorm: shapes"
    );
    let rows = x.len() / d;
    let (mut mean, mut rstd) = (vec![0.0f32; rows], vec![0.0f32; rows]);
    y.par_chunks_mut(d * ROWS_PER_TASK)
        .zip(
            mean.par_chunks_mut(ROWS_PER_TASK)
                .zip(rstd.par_chunks_mut(ROWS_PER_TASK)),
        )
        .enumerate()
        .for_each(|(c, (y, (mean, rstd)))| {
            for (r, y) in y.chunks_exact_mut(d).enumerate() {
                let row = c * ROWS_PER_TASK + r;
                let x = &x[row * d..(row + 1) * d];
                let (m, s) = crate::simd::norm_row(x, gamma, beta, eps, y);
                mean[r] = m;
                rstd[r] = s;
            }
        });
    (mean, rstd)
}

/// Gradients of `Σ dy·y` for [`forward`]: `dx` written over `dy`, and the scale's and
/// shift's gradients returned.
///
/// # Panics
/// As [`forward`].
pub fn backward(x: &[f32], gamma: &[f32], mean: &[f32], rstd: &[f32], dy: &mut [f32]) -> (Vec<f32>, Vec<f32>) {
    let d = gamma.len();
    assert!(
        d > 0 && x.len() % d == 0 && dy.len() == x.len(),
        "fused LayerNorm: shapes"
    );
    assert!(
        mean.len() == x.len() / d && rstd.len() == mean.len(),
        "fused LayerNorm: row statistics"
    );
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dy
        .par_chunks_mut(d * ROWS_PER_TASK)
        .enumerate()
        .map(|(c, dy)| {
            let (mut dgamma, mut dbeta) = (vec![0.0f32; d], vec![0.0f32; d]);
            for (r, dy) in dy.chunks_exact_mut(d).enumerate() {
                let row = c * ROWS_PER_TASK + r;
                let x = &x[row * d..(row + 1) * d];
                crate::simd::norm_row_backward(x, gamma, mean[row], rstd[row], dy, &mut dgamma, &mut dbeta);
            }
            (dgamma, dbeta)
        })
        .collect();
    let (mut dgamma, mut dbeta) = (vec![0.0f32; d], vec![0.0f32; d]);
    for (g, b) in &partials {
        for j in 0..d {
            dgamma[j] += g[j];
            dbeta[j] += b[j];
        }
    }
    (dgamma, dbeta)
}

/// RMSNorm, `y = x/√(mean(x²) + eps)·gamma` per row of `x: [rows, d]`; also each row's
/// `1/√(mean(x²) + eps)`.
///
/// # Panics
/// If `x.len()` is not a multiple of `d = gamma.len()`, or `y` disagrees.
pub fn rms_forward(x: &[f32], gamma: &[f32], eps: f32, y: &mut [f32]) -> Vec<f32> {
    let d = gamma.len();
    assert!(d > 0 && x.len() % d == 0 && y.len() == x.len(), "fused RMSNorm: shapes");
    let mut rstd = vec![0.0f32; x.len() / d];
    y.par_chunks_mut(d * ROWS_PER_TASK)
        .zip(rstd.par_chunks_mut(ROWS_PER_TASK))
        .enumerate()
        .for_each(|(c, (y, rstd))| {
            for (r, y) in y.chunks_exact_mut(d).enumerate() {
                let row = c * ROWS_PER_TASK + r;
                rstd[r] = crate::simd::rms_row(&x[row * d..(row + 1) * d], gamma, eps, y);
            }
        });
    rstd
}

/// Gradients of `Σ dy·y` for [`rms_forward`]: `dx` written over `dy`, and the scale's
/// gradient returned (summed per block of rows, the blocks added in order, as [`backward`]).
///
/// # Panics
/// As [`rms_forward`], or if `rstd` does not have one value per row.
pub fn rms_backward(x: &[f32], gamma: &[f32], rstd: &[f32], dy: &mut [f32]) -> Vec<f32> {
    let d = gamma.len();
    assert!(
        d > 0 && x.len() % d == 0 && dy.len() == x.len() && rstd.len() == x.len() / d,
        "fused RMSNorm: shapes"
    );
    let partials: Vec<Vec<f32>> = dy
        .par_chunks_mut(d * ROWS_PER_TASK)
        .enumerate()
        .map(|(c, dy)| {
            let mut dgamma = vec![0.0f32; d];
            for (r, dy) in dy.chunks_exact_mut(d).enumerate() {
                let row = c * ROWS_PER_TASK + r;
                crate::simd::rms_row_backward(&x[row * d..(row + 1) * d], gamma, rstd[row], dy, &mut dgamma);
            }
            dgamma
        })
        .collect();
    let mut dgamma = vec![0.0f32; d];
    for g in &partials {
        for j in 0..d {
            dgamma[j] += g[j];
        }
    }
    dgamma
}
