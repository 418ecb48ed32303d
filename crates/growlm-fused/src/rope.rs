//! Rotary position tables (Llama; Su et al.'s RoPE as transformers computes it) and the two
//! rotations the fused attention applies to a head as it reads it (docs/design.md §Model).

/// Rotary position tables (Llama): the cosine and sine of each position and dim,
/// `[positions, head_dim]`, in transformers' layout (dim `j` of a head's first half rotates
/// with dim `j + head_dim/2`, both at the same frequency).
#[derive(Debug, Clone, PartialEq)]
pub struct Rope {
    head_dim: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Rope {
    /// The tables for `positions` positions of heads of `head_dim` (even) with base
    /// `theta`, computed as transformers does: inverse frequencies from an f64 power, cast
    /// to f32, angles `position·frequency` in f32.
    pub fn new(positions: usize, head_dim: usize, theta: f64) -> Self {
        let half = (head_dim / 2).max(1);
        let inv_freq: Vec<f32> = (0..head_dim)
            .map(|i| (1.0 / theta.powf((2 * (i % half)) as f64 / head_dim as f64)) as f32)
            .collect();
        let (mut cos, mut sin) = (
            Vec::with_capacity(positions * head_dim),
            Vec::with_capacity(positions * head_dim),
        );
        for pos in 0..positions {
            for &f in &inv_freq {
                let angle = pos as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        Self { head_dim, cos, sin }
    }

    /// The cosines, `[positions, head_dim]` row-major.
    pub fn cos(&self) -> &[f32] {
        &self.cos
    }

    /// The sines, `[positions, head_dim]` row-major.
    pub fn sin(&self) -> &[f32] {
        &self.sin
    }

    /// Dims per head.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// Whether the tables cover `seq` positions of heads of `head_dim` dims.
    pub fn covers(&self, seq: usize, head_dim: usize) -> bool {
        self.head_dim == head_dim && head_dim % 2 == 0 && self.cos.len() >= seq * head_dim
    }

    /// `dst[i, :] ← rotate(src[i·ld ..][..head_dim])` for `rows` positions from 0:
    /// `x·cos + rotate_half(x)·sin` with `rotate_half(x) = (−x₂, x₁)`, in that order of
    /// operations (the decomposed path's bits).
    ///
    /// # Safety
    /// Row `i` of `src` (`head_dim` elements from `src + i·ld`) is inside a live buffer, for
    /// each `i < rows`.
    pub(crate) unsafe fn rotate(&self, src: *const f32, ld: usize, rows: usize, dst: &mut [f32]) {
        let (hd, half) = (self.head_dim, self.head_dim / 2);
        for i in 0..rows {
            // SAFETY: the caller's view: row `i` of `src` holds `hd` live elements.
            let x = unsafe { std::slice::from_raw_parts(src.add(i * ld), hd) };
            let (x1, x2) = x.split_at(half);
            let (c1, c2) = self.cos[i * hd..(i + 1) * hd].split_at(half);
            let (s1, s2) = self.sin[i * hd..(i + 1) * hd].split_at(half);
            let (o1, o2) = dst[i * hd..(i + 1) * hd].split_at_mut(half);
            for j in 0..half.min(x2.len()).min(c2.len()).min(s2.len()).min(o2.len()) {
                o1[j] = x1[j] * c1[j] + -x2[j] * s1[j];
                o2[j] = x2[j] * c2[j] + x1[j] * s2[j];
            }
        }
    }

    /// The transpose of [`Rope::rotate`] (its inverse): `dst[i·ld ..] ← rotateᵀ(src[i, :])`,
    /// `dx₁ = dy₁·cos + dy₂·sin`, `dx₂ = dy₂·cos − dy₁·sin`.
    ///
    /// # Safety
    /// Row `i` of `dst` (`hd` elements from `dst + i·ld`) is inside a live buffer that
    /// nothing else touches during the call, for each `i < rows`.
    pub(crate) unsafe fn rotate_back(&self, src: &[f32], rows: usize, dst: *mut f32, ld: usize) {
        let (hd, half) = (self.head_dim, self.head_dim / 2);
        for i in 0..rows {
            // SAFETY: the caller's contract.
            let out = unsafe { std::slice::from_raw_parts_mut(dst.add(i * ld), hd) };
            let (o1, o2) = out.split_at_mut(half);
            let (c1, c2) = self.cos[i * hd..(i + 1) * hd].split_at(half);
            let (s1, s2) = self.sin[i * hd..(i + 1) * hd].split_at(half);
            let (d1, d2) = src[i * hd..(i + 1) * hd].split_at(half);
            for j in 0..half.min(o2.len()).min(c2.len()).min(s2.len()).min(d2.len()) {
                o1[j] = d1[j] * c1[j] + d2[j] * s2[j];
                o2[j] = d2[j] * c2[j] - d1[j] * s1[j];
            }
        }
    }
}
