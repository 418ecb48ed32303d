//! Fused causal self-attention on `[batch, seq, heads·head_dim]` buffers, forward and
//! backward (paper eq. 4's attention; docs/design.md §Model), with Llama's grouped key/value
//! heads and rotary positions applied inside the kernel.
//!
//! The heads are read and written in place through strides: no split into
//! `[batch, heads, seq, head_dim]`, no merge back, and with grouped-query attention no
//! repeated key/value heads: one task per (batch, key/value head) runs every query head of
//! its group against that head's keys and values. With rotary positions ([`Rope`]), each
//! task rotates its key head once and each query head as it reads it, into a `seq ×
//! head_dim` tile of its own; no rotated copy of q or k exists. Per query head the forward
//! pass is two matrix products (`S = scale·Q·Kᵀ`, `Y = P·V`) around a row softmax over the
//! causal (or windowed) prefix; it keeps only the log-sum-exp of each row. The backward
//! pass recomputes `P` from it and runs four products (`dP = dY·Vᵀ`, `dV = Pᵀ·dY`,
//! `dQ = dS·K`, `dK = dSᵀ·Q`); a group's `dK` and `dV` add up its query heads in head
//! order, and rotated gradients are rotated back. Each product is one single-threaded
//! `gemm` call; the tasks run on rayon's pool, so a step uses every core, and since each
//! task's arithmetic is the same whichever thread runs it, the result does not depend on
//! the number of threads.

use rayon::prelude::*;

pub use crate::rope::Rope;
use crate::simd;

mod gemm;
mod reference;

use gemm::{matmul, Shared, View};
pub use reference::reference;

/// The shape of a fused attention call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionShape {
    /// Sequences in the batch.
    pub batch: usize,
    /// Positions per sequence.
    pub seq: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads: `heads` for multi-head attention, a divisor of it for grouped-query
    /// attention (query head `h` reads key/value head `h / (heads / kv_heads)`).
    pub kv_heads: usize,
    /// Dims per head.
    pub head_dim: usize,
}

impl AttentionShape {
    /// Multi-head attention (as many key/value heads as query heads).
    pub const fn multi_head(batch: usize, seq: usize, heads: usize, head_dim: usize) -> Self {
        Self {
            batch,
            seq,
            heads,
            kv_heads: heads,
            head_dim,
        }
    }

    /// Elements of a `[batch, seq, heads·head_dim]` buffer (q, the output).
    pub fn len(&self) -> usize {
        self.batch * self.seq * self.heads * self.head_dim
    }

    /// Elements of a `[batch, seq, kv_heads·head_dim]` buffer (k, v).
    pub fn kv_len(&self) -> usize {
        self.batch * self.seq * self.kv_heads * self.head_dim
    }

    /// Whether the buffers are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements of the `[batch, heads, seq]` log-sum-exp buffer.
    pub fn rows(&self) -> usize {
        self.batch * self.heads * self.seq
    }

    /// Query heads per key/value head.
    fn group(&self) -> usize {
        self.heads / self.kv_heads
    }

    fn q_stride(&self) -> usize {
        self.heads * self.head_dim
    }

    fn kv_stride(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// Offsets of task `bg`'s key/value head and of its group's first query head.
    fn bases(&self, bg: usize) -> (usize, usize) {
        let (b, g) = (bg / self.kv_heads, bg % self.kv_heads);
        (
            b * self.seq * self.kv_stride() + g * self.head_dim,
            b * self.seq * self.q_stride() + g * self.group() * self.head_dim,
        )
    }

    /// Whether the key/value heads divide the query heads.
    fn is_valid(&self) -> bool {
        self.kv_heads > 0 && self.heads % self.kv_heads == 0
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

fn check(shape: &AttentionShape, q: &[usize], kv: &[usize], rope: Option<&Rope>) {
    assert!(shape.is_valid(), "fused attention: {shape:?} has no whole groups");
    for &len in q {
        assert_eq!(
            len,
            shape.len(),
            "fused attention: buffer of {len} elements for shape {shape:?}"
        );
    }
    for &len in kv {
        assert_eq!(
            len,
            shape.kv_len(),
            "fused attention: buffer of {len} elements for shape {shape:?}"
        );
    }
    if let Some(r) = rope {
        assert!(
            r.covers(shape.seq, shape.head_dim),
            "fused attention: rotary tables too short"
        );
    }
}

/// A task's key (or query) head as the products read it: in place through strides, or
/// rotated into `tile` (`seq × head_dim`) when there are rotary tables.
///
/// # Safety
/// As [`Rope::rotate`] for `seq` rows of `src` at stride `ld`.
unsafe fn head_view(
    rope: Option<&Rope>,
    src: *const f32,
    ld: usize,
    seq: usize,
    tile: &mut [f32],
) -> (*const f32, usize) {
    match rope {
        Some(r) => {
            // SAFETY: the caller's contract.
            unsafe { r.rotate(src, ld, seq, tile) };
            (tile.as_ptr(), r.head_dim())
        }
        None => (src, ld),
    }
}

/// Forward pass: `out ← softmax(scale·Q·Kᵀ, causal) · V` per query head (keys and values
/// of its group's head, both rotated first with `rope`), and the log-sum-exp of each score
/// row into `lse: [batch, heads, seq]`. `k` and `v` are `[batch, seq, kv_heads·head_dim]`.
///
/// # Panics
/// If a buffer's length does not match `shape`, the key/value heads do not divide the
/// query heads, or `rope` does not cover the sequence.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: AttentionShape,
    pattern: AttentionPattern,
    rope: Option<&Rope>,
    out: &mut [f32],
    lse: &mut [f32],
) {
    check(&shape, &[q.len(), out.len()], &[k.len(), v.len()], rope);
    assert_eq!(lse.len(), shape.rows(), "fused attention: log-sum-exp buffer");
    if shape.is_empty() {
        return;
    }
    let (t, hd, qld, kvld) = (shape.seq, shape.head_dim, shape.q_stride(), shape.kv_stride());
    let tile = if rope.is_some() { t * hd } else { 0 };
    let dst = Shared(out.as_mut_ptr());
    lse.par_chunks_mut(t * shape.group()).enumerate().for_each_init(
        || (vec![0.0f32; t * t], vec![0.0f32; tile], vec![0.0f32; tile]),
        |(scores, qr, kr), (bg, lse)| {
            let dst = dst;
            let (kvb, qb) = shape.bases(bg);
            // SAFETY (every product and rotation below): task `bg`'s key/value head spans
            // rows 0..t at stride kvld and columns kvb..kvb+hd, each of its query heads rows
            // 0..t at stride qld and hd columns from qb + j·hd, inside the checked buffers;
            // scores is t×t and the tiles t×hd; only this task writes those heads of out.
            let (kp, kld) = unsafe { head_view(rope, k[kvb..].as_ptr(), kvld, t, kr) };
            for (j, lse) in lse.chunks_exact_mut(t).enumerate() {
                let (qp, ld) = unsafe { head_view(rope, q[qb + j * hd..].as_ptr(), qld, t, qr) };
                unsafe {
                    matmul(
                        t,
                        t,
                        hd,
                        scores.as_mut_ptr(),
                        t,
                        View::rows(qp, ld),
                        View::transposed(kp, kld),
                        false,
                    );
                }
                for (i, row) in scores.chunks_exact_mut(t).enumerate() {
                    let lo = pattern.first_key(i);
                    row[..lo].fill(0.0);
                    lse[i] = simd::softmax_prefix(&mut row[lo..], i + 1 - lo, pattern.scale);
                }
                unsafe {
                    matmul(
                        t,
                        hd,
                        t,
                        dst.0.add(qb + j * hd),
                        qld,
                        View::rows(scores.as_ptr(), t),
                        View::rows(v[kvb..].as_ptr(), kvld),
                        false,
                    );
                }
            }
        },
    );
}

/// Backward pass: from the output gradient `dy` and the forward pass's `lse`, the gradients
/// of `q`, `k` and `v` (each overwritten; `dk` and `dv` are `[batch, seq,
/// kv_heads·head_dim]`, each the sum over its group's query heads).
///
/// # Panics
/// As [`forward`].
#[allow(clippy::too_many_arguments)]
pub fn backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dy: &[f32],
    lse: &[f32],
    shape: AttentionShape,
    pattern: AttentionPattern,
    rope: Option<&Rope>,
    grads: [&mut [f32]; 3],
) {
    let [dq, dk, dv] = grads;
    check(
        &shape,
        &[q.len(), dy.len(), dq.len()],
        &[k.len(), v.len(), dk.len(), dv.len()],
        rope,
    );
    assert_eq!(lse.len(), shape.rows(), "fused attention: log-sum-exp buffer");
    if shape.is_empty() {
        return;
    }
    let (t, hd, qld, kvld) = (shape.seq, shape.head_dim, shape.q_stride(), shape.kv_stride());
    let tile = if rope.is_some() { t * hd } else { 0 };
    let (dq, dk, dv) = (
        Shared(dq.as_mut_ptr()),
        Shared(dk.as_mut_ptr()),
        Shared(dv.as_mut_ptr()),
    );
    lse.par_chunks(t * shape.group()).enumerate().for_each_init(
        || {
            (
                vec![0.0f32; t * t],
                vec![0.0f32; t * t],
                [
                    vec![0.0f32; tile],
                    vec![0.0f32; tile],
                    vec![0.0f32; tile],
                    vec![0.0f32; tile],
                ],
            )
        },
        |(p, dp, [qr, kr, dqr, dkr]), (bg, lse)| {
            let (dq, dk, dv) = (dq, dk, dv);
            let (kvb, qb) = shape.bases(bg);
            // SAFETY (every product and rotation below): as in `forward`; the gradient
            // blocks of this task's heads are written by this task only.
            let (kp, kld) = unsafe { head_view(rope, k[kvb..].as_ptr(), kvld, t, kr) };
            // With rotary positions dK gathers (rotated) in a tile and dQ passes through one.
            let (dkp, dkld) = match rope {
                Some(_) => (dkr.as_mut_ptr(), hd),
                None => (unsafe { dk.0.add(kvb) }, kvld),
            };
            for (j, lse) in lse.chunks(t).enumerate() {
                let qo = qb + j * hd;
                let (qp, ld) = unsafe { head_view(rope, q[qo..].as_ptr(), qld, t, qr) };
                unsafe {
                    matmul(
                        t,
                        t,
                        hd,
                        p.as_mut_ptr(),
                        t,
                        View::rows(qp, ld),
                        View::transposed(kp, kld),
                        false,
                    );
                    matmul(
                        t,
                        t,
                        hd,
                        dp.as_mut_ptr(),
                        t,
                        View::rows(dy[qo..].as_ptr(), qld),
                        View::transposed(v[kvb..].as_ptr(), kvld),
                        false,
                    );
                }
                for i in 0..t {
                    let lo = pattern.first_key(i);
                    let row = &mut p[i * t..(i + 1) * t];
                    row[..lo].fill(0.0);
                    simd::probs_prefix(&mut row[lo..], i + 1 - lo, pattern.scale, lse[i]);
                    simd::softmax_backward(row, &mut dp[i * t..(i + 1) * t], pattern.scale);
                }
                let (dqp, dqld) = match rope {
                    Some(_) => (dqr.as_mut_ptr(), hd),
                    None => (unsafe { dq.0.add(qo) }, qld),
                };
                let acc = j > 0;
                unsafe {
                    matmul(
                        t,
                        hd,
                        t,
                        dv.0.add(kvb),
                        kvld,
                        View::transposed(p.as_ptr(), t),
                        View::rows(dy[qo..].as_ptr(), qld),
                        acc,
                    );
                    matmul(
                        t,
                        hd,
                        t,
                        dqp,
                        dqld,
                        View::rows(dp.as_ptr(), t),
                        View::rows(kp, kld),
                        false,
                    );
                    matmul(
                        t,
                        hd,
                        t,
                        dkp,
                        dkld,
                        View::transposed(dp.as_ptr(), t),
                        View::rows(qp, ld),
                        acc,
                    );
                }
                if let Some(r) = rope {
                    unsafe { r.rotate_back(dqr, t, dq.0.add(qo), qld) };
                }
            }
            if let Some(r) = rope {
                unsafe { r.rotate_back(dkr, t, dk.0.add(kvb), kvld) };
            }
        },
    );
}
