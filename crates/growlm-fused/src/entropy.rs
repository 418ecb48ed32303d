//! Fused softmax cross-entropy over the vocabulary (the training loss, docs/design.md §Training engine):
//! log-softmax and the negative log-likelihood in one pass per row, forward and backward,
//! with no `[rows, vocab]` probability tensor kept between them — only each row's
//! log-sum-exp. Rows run on rayon's pool; each row's arithmetic is fixed, and the mean is
//! summed in row order, so the result does not depend on the number of threads.

use rayon::prelude::*;

use crate::simd;

/// Rows per rayon task: enough work per task to amortise scheduling at small vocabularies.
const ROWS_PER_TASK: usize = 8;

/// A target id outside the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetOutOfRange {
    /// Row of the offending target.
    pub row: usize,
    /// The id.
    pub id: i64,
    /// The vocabulary size.
    pub vocab: usize,
}

/// Checks every target is an id in `0..vocab`.
pub fn check_targets(targets: &[i64], vocab: usize) -> Result<(), TargetOutOfRange> {
    match targets.iter().position(|&id| id < 0 || id as u64 >= vocab as u64) {
        Some(row) => Err(TargetOutOfRange {
            row,
            id: targets[row],
            vocab,
        }),
        None => Ok(()),
    }
}

/// Mean over rows of `−log softmax(logits[row])[targets[row]]`, and each row's log-sum-exp.
///
/// # Panics
/// If `logits.len() ≠ targets.len()·vocab`, or a target is outside `0..vocab` (its row's
/// index is out of bounds; callers check with [`check_targets`] first, as
/// [`crate::cross_entropy`] does, for an error instead).
pub fn forward(logits: &[f32], vocab: usize, targets: &[i64]) -> (f32, Vec<f32>) {
    assert_eq!(
        logits.len(),
        targets.len() * vocab,
        "fused cross-entropy: logits for {} rows",
        targets.len()
    );
    let mut lse = vec![0.0f32; targets.len()];
    let mut nll = vec![0.0f32; targets.len()];
    lse.par_chunks_mut(ROWS_PER_TASK)
        .zip(nll.par_chunks_mut(ROWS_PER_TASK))
        .enumerate()
        .for_each(|(c, (lse, nll))| {
            for (r, (l, n)) in lse.iter_mut().zip(nll.iter_mut()).enumerate() {
                let row = c * ROWS_PER_TASK + r;
                let x = &logits[row * vocab..(row + 1) * vocab];
                *l = simd::logsumexp(x);
                *n = *l - x[targets[row] as usize];
            }
        });
    let sum: f64 = nll.iter().map(|&x| x as f64).sum();
    let mean = if targets.is_empty() {
        f32::NAN
    } else {
        (sum / targets.len() as f64) as f32
    };
    (mean, lse)
}

/// The gradient of `grad · forward(logits).0` with respect to the logits, written over
/// `logits` in place: `grad/rows · (softmax(row) − onehot(target))`.
///
/// # Panics
/// As [`forward`].
pub fn backward_in_place(logits: &mut [f32], vocab: usize, targets: &[i64], lse: &[f32], grad: f32) {
    assert_eq!(
        logits.len(),
        targets.len() * vocab,
        "fused cross-entropy: logits for {} rows",
        targets.len()
    );
    assert_eq!(lse.len(), targets.len(), "fused cross-entropy: log-sum-exp per row");
    let g = grad / targets.len() as f32;
    logits
        .par_chunks_mut(vocab * ROWS_PER_TASK)
        .enumerate()
        .for_each(|(c, rows)| {
            for (r, x) in rows.chunks_exact_mut(vocab).enumerate() {
                let row = c * ROWS_PER_TASK + r;
                simd::scaled_probs(x, lse[row], g);
                x[targets[row] as usize] -= g;
            }
        });
}
