//! Fused causal self-attention on `[batch, seq, heads·head_dim]` buffers, forward and
//! backward, one (batch, head) pair per task (paper eq. 4's attention; DESIGN.md §Model).
//!
//! The heads are read and written in place through strides: no split into
//! `[batch, heads, seq, head_dim]` and no merge back. Per pair the forward pass is two
//! matrix products (`S = scale·Q·Kᵀ`, `Y = P·V`) around a row softmax over the causal (or
//! windowed) prefix; it keeps only the log-sum-exp of each row. The backward pass recomputes
//! `P` from it and runs four products (`dP = dY·Vᵀ`, `dV = Pᵀ·dY`, `dQ = dS·K`,
//! `dK = dSᵀ·Q`). Each product is one single-threaded `gemm` call; the pairs run on rayon's
//! pool, so a step uses every core, and since each pair's arithmetic is the same whichever
//! thread runs it, the result does not depend on the number of threads.

use gemm::Parallelism;
use rayon::prelude::*;

use crate::simd;

/// The shape of a fused attention call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionShape {
    /// Sequences in the batch.
    pub batch: usize,
    /// Positions per sequence.
    pub seq: usize,
    /// Attention heads.
    pub heads: usize,
    /// Dims per head.
    pub head_dim: usize,
}

impl AttentionShape {
    /// Elements of a `[batch, seq, heads·head_dim]` buffer.
    pub fn len(&self) -> usize {
        self.batch * self.seq * self.heads * self.head_dim
    }

    /// Whether the buffers are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements of the `[batch, heads, seq]` log-sum-exp buffer.
    pub fn rows(&self) -> usize {
        self.batch * self.heads * self.seq
    }

    fn row_stride(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Offset of pair `bh`'s first element in a `[batch, seq, heads·head_dim]` buffer.
    fn base(&self, bh: usize) -> usize {
        let (b, h) = (bh / self.heads, bh % self.heads);
        b * self.seq * self.row_stride() + h * self.head_dim
    }
}

/// Which keys a query sees, and the score scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionPattern {
    /// 0: every earlier position (global); `w > 0`: the last `w` positions, itself included
    /// (GPT-Neo's local attention masks key `k` for query `q` when `q − k ≥ w`).
    pub window: usize,
    /// Multiplies `Q·Kᵀ` before the softmax (1 for GPT-Neo, `1/√head_dim` for Llama).
    pub scale: f32,
}

impl AttentionPattern {
    /// The first key query `i` sees.
    fn first_key(&self, i: usize) -> usize {
        if self.window == 0 {
            0
        } else {
            (i + 1).saturating_sub(self.window)
        }
    }
}

/// A raw pointer the pairs share; each pair writes a disjoint set of elements.
#[derive(Clone, Copy)]
struct Shared(*mut f32);
// SAFETY: tasks write disjoint elements (one (batch, head) block each), and the buffer
// outlives the parallel loop that uses the pointer.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

/// A strided `rows × cols` matrix view: element `(r, c)` at `ptr + r·rs + c·cs`.
#[derive(Clone, Copy)]
struct View {
    ptr: *const f32,
    rs: usize,
    cs: usize,
}

/// `dst ← beta·lhs·rhs` with `dst: m×n`, `lhs: m×k`, `rhs: k×n`, on the calling thread.
///
/// # Safety
/// Every element the three views address for these `m, n, k` lies inside a live buffer, and
/// nothing else reads or writes `dst`'s elements during the call.
unsafe fn matmul(m: usize, n: usize, k: usize, dst: *mut f32, dst_rs: usize, lhs: View, rhs: View, beta: f32) {
    // SAFETY: the caller's contract; strides fit in isize since each buffer is a Vec.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            false,
            lhs.ptr,
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.ptr,
            rhs.cs as isize,
            rhs.rs as isize,
            0.0,
            beta,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

fn check(shape: &AttentionShape, bufs: &[usize]) {
    for &len in bufs {
        assert_eq!(
            len,
            shape.len(),
            "fused attention: buffer of {len} elements for shape {shape:?}"
        );
    }
}

/// Forward pass: `out ← softmax(scale·Q·Kᵀ, causal) · V` per head, and the log-sum-exp of
/// each score row into `lse: [batch, heads, seq]`.
///
/// # Panics
/// If a buffer's length does not match `shape`.
pub fn forward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: AttentionShape,
    pattern: AttentionPattern,
    out: &mut [f32],
    lse: &mut [f32],
) {
    check(&shape, &[q.len(), k.len(), v.len(), out.len()]);
    assert_eq!(lse.len(), shape.rows(), "fused attention: log-sum-exp buffer");
    if shape.is_empty() {
        return;
    }
    let (t, hd, ld) = (shape.seq, shape.head_dim, shape.row_stride());
    let dst = Shared(out.as_mut_ptr());
    lse.par_chunks_mut(t).enumerate().for_each_init(
        || vec![0.0f32; t * t],
        |scores, (bh, lse)| {
            let dst = dst;
            let base = shape.base(bh);
            let at = |buf: &[f32]| View {
                ptr: buf[base..].as_ptr(),
                rs: ld,
                cs: 1,
            };
            let kt = View {
                ptr: k[base..].as_ptr(),
                rs: 1,
                cs: ld,
            };
            // SAFETY: pair `bh`'s block of q, k, v and out spans rows 0..t at stride ld and
            // columns base..base+hd, inside the checked buffers; `scores` is t×t; only this
            // task writes out's block.
            unsafe {
                matmul(t, t, hd, scores.as_mut_ptr(), t, at(q), kt, 1.0);
            }
            for (i, row) in scores.chunks_exact_mut(t).enumerate() {
                let lo = pattern.first_key(i);
                row[..lo].fill(0.0);
                lse[i] = simd::softmax_prefix(&mut row[lo..], i + 1 - lo, pattern.scale);
            }
            let p = View {
                ptr: scores.as_ptr(),
                rs: t,
                cs: 1,
            };
            // SAFETY: as above.
            unsafe {
                matmul(t, hd, t, dst.0.add(base), ld, p, at(v), 1.0);
            }
        },
    );
}

/// Backward pass: from the output gradient `dy` and the forward pass's `lse`, the gradients
/// of `q`, `k` and `v` (each overwritten).
///
/// # Panics
/// If a buffer's length does not match `shape`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dy: &[f32],
    lse: &[f32],
    shape: AttentionShape,
    pattern: AttentionPattern,
    grads: [&mut [f32]; 3],
) {
    let [dq, dk, dv] = grads;
    check(
        &shape,
        &[q.len(), k.len(), v.len(), dy.len(), dq.len(), dk.len(), dv.len()],
    );
    assert_eq!(lse.len(), shape.rows(), "fused attention: log-sum-exp buffer");
    if shape.is_empty() {
        return;
    }
    let (t, hd, ld) = (shape.seq, shape.head_dim, shape.row_stride());
    let (dq, dk, dv) = (
        Shared(dq.as_mut_ptr()),
        Shared(dk.as_mut_ptr()),
        Shared(dv.as_mut_ptr()),
    );
    lse.par_chunks(t).enumerate().for_each_init(
        || (vec![0.0f32; t * t], vec![0.0f32; t * t]),
        |(p, dp), (bh, lse)| {
            let (dq, dk, dv) = (dq, dk, dv);
            let base = shape.base(bh);
            let at = |buf: &[f32]| View {
                ptr: buf[base..].as_ptr(),
                rs: ld,
                cs: 1,
            };
            let transposed = |buf: &[f32]| View {
                ptr: buf[base..].as_ptr(),
                rs: 1,
                cs: ld,
            };
            // SAFETY (all four products): pair `bh`'s blocks span rows 0..t at stride ld and
            // columns base..base+hd of the checked buffers; p and dp are t×t; only this task
            // writes the gradients' blocks.
            unsafe {
                matmul(t, t, hd, p.as_mut_ptr(), t, at(q), transposed(k), 1.0);
                matmul(t, t, hd, dp.as_mut_ptr(), t, at(dy), transposed(v), 1.0);
            }
            for i in 0..t {
                let lo = pattern.first_key(i);
                let row = &mut p[i * t..(i + 1) * t];
                row[..lo].fill(0.0);
                simd::probs_prefix(&mut row[lo..], i + 1 - lo, pattern.scale, lse[i]);
                simd::softmax_backward(row, &mut dp[i * t..(i + 1) * t], pattern.scale);
            }
            let p_t = View {
                ptr: p.as_ptr(),
                rs: 1,
                cs: t,
            };
            let ds = View {
                ptr: dp.as_ptr(),
                rs: t,
                cs: 1,
            };
            let ds_t = View {
                ptr: dp.as_ptr(),
                rs: 1,
                cs: t,
            };
            unsafe {
                matmul(t, hd, t, dv.0.add(base), ld, p_t, at(dy), 1.0);
                matmul(t, hd, t, dq.0.add(base), ld, ds, at(k), 1.0);
                matmul(t, hd, t, dk.0.add(base), ld, ds_t, at(q), 1.0);
            }
        },
    );
}

/// The same attention computed the plain way, in f64, for tests: split heads, full
/// scores, masked softmax, merge.
pub fn reference(q: &[f32], k: &[f32], v: &[f32], shape: AttentionShape, pattern: AttentionPattern) -> Vec<f32> {
    let (t, hd, ld) = (shape.seq, shape.head_dim, shape.row_stride());
    let mut out = vec![0.0f32; shape.len()];
    for bh in 0..shape.batch * shape.heads {
        let base = shape.base(bh);
        for i in 0..t {
            let lo = pattern.first_key(i);
            let scores: Vec<f64> = (lo..=i)
                .map(|j| {
                    (0..hd)
                        .map(|d| q[base + i * ld + d] as f64 * k[base + j * ld + d] as f64)
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
                    .map(|(n, s)| (s - m).exp() / z * v[base + (lo + n) * ld + d] as f64)
                    .sum();
                out[base + i * ld + d] = y as f32;
            }
        }
    }
    out
}
