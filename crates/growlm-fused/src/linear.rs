//! The fused linear layer `y = x·W + b` (every projection of the model and its LM head,
//! docs/design.md §Model), forward and backward, on row-major buffers, with `W` stored
//! `[k, n]` ([`Weight::InOut`], growlm's `Dense`) or `[n, k]` ([`Weight::OutIn`], the
//! head: one row per token).
//!
//! The forward pass writes the bias into the output rows and lets the matrix product
//! accumulate onto them, so the bias costs no pass of its own and the output buffer is the
//! only one allocated (without a bias, not even zeroed: the product writes every element). The backward pass runs two products (`dX = dY·Wᵀ`, `dW = Xᵀ·dY`,
//! reading the transposes through strides, no copies) and sums `dY`'s rows for `db`.
//!
//! Products above [`PARALLEL_OPS`] multiply-adds split their output over rayon's pool
//! (gemm's own split: each output block has one owner and a fixed summation order over the
//! inner dim, so the bits do not depend on the number of threads); `db` sums blocks of
//! [`COLS_PER_TASK`] columns, each over the rows in order.

use gemm::Parallelism;
use rayon::prelude::*;

/// Multiply-adds from which a product runs on rayon's pool (below, on the calling thread).
pub const PARALLEL_OPS: usize = 192 * 192 * 192;

/// Columns per rayon task of the bias gradient.
pub const COLS_PER_TASK: usize = 64;

/// How the weight of `y = x·W` is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    /// `[k, n]`: `y = x·w`.
    InOut,
    /// `[n, k]`: `y = x·wᵀ`.
    OutIn,
}

impl Weight {
    /// `W` (`k×n`) as a view of the stored weight.
    fn view(self, w: &[f32], k: usize, n: usize) -> View<'_> {
        match self {
            Weight::InOut => View { data: w, rs: n, cs: 1 },
            Weight::OutIn => View { data: w, rs: 1, cs: k },
        }
    }
    /// `Wᵀ` (`n×k`) as a view of the stored weight.
    fn transposed(self, w: &[f32], k: usize, n: usize) -> View<'_> {
        match self {
            Weight::InOut => View { data: w, rs: 1, cs: n },
            Weight::OutIn => View { data: w, rs: k, cs: 1 },
        }
    }
}

/// A row-major or transposed view of a matrix: element `(r, c)` at `r·rs + c·cs`.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

/// `dst ← (dst if accumulate) + lhs·rhs` for `dst: m×n` (row-major, or column-major when
/// `dst_transposed`), `lhs: m×k`, `rhs: k×n`.
#[allow(clippy::too_many_arguments)]
fn product(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_transposed: bool,
    accumulate: bool,
    lhs: View<'_>,
    rhs: View<'_>,
) {
    assert!(dst.len() == m * n, "fused linear: output of {} for {m}×{n}", dst.len());
    // SAFETY: `dst` holds the m·n elements, borrowed mutably for the call.
    unsafe { product_into(m, n, k, dst.as_mut_ptr(), dst_transposed, accumulate, lhs, rhs) }
}

/// A buffer of `len` values that `fill` writes in full through the pointer it is given,
/// without zeroing it first (a kernel's output that a product overwrites).
///
/// # Safety
/// `fill` writes each of the `len` elements (through the pointer only: no reference to the
/// buffer exists before it is written).
unsafe fn written(len: usize, fill: impl FnOnce(*mut f32)) -> Vec<f32> {
    let mut v = Vec::<f32>::with_capacity(len);
    fill(v.as_mut_ptr());
    // SAFETY: the caller's contract: every element is initialised.
    unsafe { v.set_len(len) };
    v
}

/// A new `m×n` buffer holding `lhs·rhs` ([`product`] without zeroing the output first).
fn new_product(m: usize, n: usize, k: usize, dst_transposed: bool, lhs: View<'_>, rhs: View<'_>) -> Vec<f32> {
    if k == 0 {
        return vec![0.0; m * n];
    }
    // SAFETY: a product with k > 0 that does not accumulate writes each of its m·n outputs.
    unsafe { written(m * n, |dst| product_into(m, n, k, dst, dst_transposed, false, lhs, rhs)) }
}

/// [`product`] through a pointer to `m·n` elements, which need not be initialised unless
/// `accumulate`.
///
/// # Safety
/// `dst` addresses `m·n` writable elements (initialised if `accumulate`) that nothing else
/// touches during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn product_into(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_transposed: bool,
    accumulate: bool,
    lhs: View<'_>,
    rhs: View<'_>,
) {
    let (dst_rs, dst_cs) = if dst_transposed { (1, m) } else { (n, 1) };
    for (v, rows, cols) in [(lhs, m, k), (rhs, k, n)] {
        let last = (rows.max(1) - 1) * v.rs + (cols.max(1) - 1) * v.cs;
        assert!(rows * cols == 0 || last < v.data.len(), "fused linear: input too short");
    }
    if m * n == 0 {
        return;
    }
    let parallelism = if m * n * k >= PARALLEL_OPS {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    };
    // SAFETY: the asserts above keep every element the views address for these m, n, k
    // inside their slices, `dst` is the caller's m·n elements, and strides of Vec-backed
    // buffers fit in isize.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `y = x·W + b` for `x: [rows, k]`, `W` stored as `layout` says, `b: [n]` (or none), all
/// row-major.
///
/// # Panics
/// If the lengths disagree with `rows`, `k` and `n`.
pub fn forward(
    x: &[f32],
    (w, layout): (&[f32], Weight),
    b: Option<&[f32]>,
    (rows, k, n): (usize, usize, usize),
) -> Vec<f32> {
    assert!(x.len() == rows * k && w.len() == k * n, "fused linear: shapes");
    let (xv, wv) = (View { data: x, rs: k, cs: 1 }, layout.view(w, k, n));
    let Some(b) = b else {
        return new_product(rows, n, k, false, xv, wv);
    };
    assert!(b.len() == n, "fused linear: bias of {} for {n} outputs", b.len());
    let mut y = vec![0.0f32; rows * n];
    y.par_chunks_mut(n.max(1) * 64)
        .for_each(|block| block.chunks_exact_mut(n).for_each(|row| row.copy_from_slice(b)));
    product(rows, n, k, &mut y, false, true, xv, wv);
    y
}

/// The gradients of `y = x·W + b` from `dy: [rows, n]`: `dx = dy·Wᵀ`, `dW = xᵀ·dy` (in
/// the weight's stored layout: `dyᵀ·x` for [`Weight::OutIn`]) and `db = Σ_rows dy`, each
/// only when `wanted`.
///
/// # Panics
/// If the lengths disagree with `rows`, `k` and `n`.
#[allow(clippy::type_complexity)]
pub fn backward(
    x: &[f32],
    (w, layout): (&[f32], Weight),
    dy: &[f32],
    (rows, k, n): (usize, usize, usize),
    wanted: [bool; 3],
) -> (Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>) {
    assert!(
        x.len() == rows * k && w.len() == k * n && dy.len() == rows * n,
        "fused linear: shapes"
    );
    let dy_view = View { data: dy, rs: n, cs: 1 };
    let dx = wanted[0].then(|| new_product(rows, k, n, false, dy_view, layout.transposed(w, k, n)));
    // `xᵀ·dy` (`k×n`) either way: for the `[n, k]` layout written column-major, which is
    // its transpose in place (reading `dyᵀ` through a stride of `n` would be slow).
    let xt = View { data: x, rs: 1, cs: k };
    let dw = wanted[1].then(|| new_product(k, n, rows, layout == Weight::OutIn, xt, dy_view));
    let db = wanted[2].then(|| {
        let mut db = vec![0.0f32; n];
        db.par_chunks_mut(COLS_PER_TASK).enumerate().for_each(|(c, sums)| {
            let (lo, width) = (c * COLS_PER_TASK, sums.len());
            for row in dy.chunks_exact(n) {
                for (s, v) in sums.iter_mut().zip(&row[lo..lo + width]) {
                    *s += v;
                }
            }
        });
        db
    });
    (dx, dw, db)
}
