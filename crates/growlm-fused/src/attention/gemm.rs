//! The single-threaded products of the fused attention: strided views and one `gemm` call.

use gemm::Parallelism;

/// A raw pointer the tasks share; each task writes a disjoint set of elements.
#[derive(Clone, Copy)]
pub(super) struct Shared(pub(super) *mut f32);
// SAFETY: tasks write disjoint elements (one (batch, key/value head) group each), and the
// buffer outlives the parallel loop that uses the pointer.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

/// A strided `rows × cols` matrix view: element `(r, c)` at `ptr + r·rs + c·cs`.
#[derive(Clone, Copy)]
pub(super) struct View {
    pub(super) ptr: *const f32,
    pub(super) rs: usize,
    pub(super) cs: usize,
}

impl View {
    /// Row-major with row stride `ld`.
    pub(super) fn rows(ptr: *const f32, ld: usize) -> Self {
        Self { ptr, rs: ld, cs: 1 }
    }

    /// The transpose of a row-major matrix with row stride `ld`.
    pub(super) fn transposed(ptr: *const f32, ld: usize) -> Self {
        Self { ptr, rs: 1, cs: ld }
    }
}

/// `dst ← beta·lhs·rhs` (or `dst + beta·lhs·rhs` with `acc`) with `dst: m×n`, `lhs: m×k`,
/// `rhs: k×n`, on the calling thread.
///
/// # Safety
/// Every element the three views address for these `m, n, k` lies inside a live buffer, and
/// nothing else reads or writes `dst`'s elements during the call.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    lhs: View,
    rhs: View,
    acc: bool,
) {
    // SAFETY: the caller's contract; strides fit in isize since each buffer is a Vec.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            acc,
            lhs.ptr,
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.ptr,
            rhs.cs as isize,
            rhs.rs as isize,
            if acc { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}
