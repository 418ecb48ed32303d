//! Llama's row kernels: RMSNorm and SwiGLU, forward and backward, written as the other
//! kernels of [`super`] are (fixed lanes, one arithmetic for every vector width).

use super::{exp, fold, LANES};

multiversion! {
    /// One RMSNorm row (Llama): `y ← x·s·gamma` with `s = 1/√(mean(x²) + eps)`; returns `s`.
    pub fn rms_row(x: &[f32], gamma: &[f32], eps: f32, y: &mut [f32]) -> f32 {
        let mut acc = [0.0f32; LANES];
        let chunks = x.chunks_exact(LANES);
        let tail = chunks.remainder();
        for c in chunks {
            for l in 0..LANES {
                acc[l] += c[l] * c[l];
            }
        }
        for (l, &x) in tail.iter().enumerate() {
            acc[l] += x * x;
        }
        let s = 1.0 / (fold(acc) / x.len() as f32 + eps).sqrt();
        for j in 0..x.len().min(y.len()).min(gamma.len()) {
            y[j] = x[j] * s * gamma[j];
        }
        s
    }
}

multiversion! {
    /// One RMSNorm row backward: adds `dy·x̂` to `dgamma`, then
    /// `dy ← s·(g − x̂·mean(g·x̂))` with `x̂ = x·s`, `g = dy·gamma`.
    pub fn rms_row_backward(x: &[f32], gamma: &[f32], s: f32, dy: &mut [f32], dgamma: &mut [f32]) {
        let n = x.len().min(gamma.len()).min(dy.len()).min(dgamma.len());
        let (x, gamma, dy, dgamma) = (&x[..n], &gamma[..n], &mut dy[..n], &mut dgamma[..n]);
        // Lane l sums elements l, l + LANES, … (as `j % LANES`), in chunks the compiler
        // vectorises.
        let mut gb = [0.0f32; LANES];
        let mut lanes = |x: &[f32], g: &[f32], dy: &[f32], dg: &mut [f32]| {
            for l in 0..x.len() {
                let xh = x[l] * s;
                dg[l] += dy[l] * xh;
                gb[l] += dy[l] * g[l] * xh;
            }
        };
        let chunks = n / LANES * LANES;
        for c in (0..chunks).step_by(LANES) {
            let r = c..c + LANES;
            lanes(&x[r.clone()], &gamma[r.clone()], &dy[r.clone()], &mut dgamma[r]);
        }
        lanes(&x[chunks..], &gamma[chunks..], &dy[chunks..], &mut dgamma[chunks..]);
        let b = fold(gb) / n as f32;
        for ((dy, &x), &g) in dy.iter_mut().zip(x).zip(gamma) {
            *dy = s * (*dy * g - x * s * b);
        }
    }
}

multiversion! {
    /// SwiGLU (Llama's MLP): `y = silu(g)·u = g·u/(1 + e^{−g})` per element, with each row
    /// of `gu` holding the gate's `f` values then the up projection's `f` (`y` has `f` per
    /// row).
    pub fn swiglu(gu: &[f32], y: &mut [f32]) {
        let (g, u) = gu.split_at(y.len().min(gu.len() / 2));
        for ((y, &g), &u) in y.iter_mut().zip(g).zip(u) {
            *y = g / (1.0 + exp(-g)) * u;
        }
    }
}

multiversion! {
    /// SwiGLU backward for one row, in place: `gu` (the gate's `f` values, then the up
    /// projection's) becomes their gradients from `dy` (`f` values):
    /// `dg = dy·u·σ·(1 + g·(1 − σ))`, `du = dy·g·σ`.
    pub fn swiglu_backward(gu: &mut [f32], dy: &[f32]) {
        let f = dy.len().min(gu.len() / 2);
        let (g, u) = gu.split_at_mut(f);
        for ((g, u), &dy) in g.iter_mut().zip(u.iter_mut()).zip(dy) {
            let (x, up) = (*g, *u);
            let s = 1.0 / (1.0 + exp(-x));
            *g = dy * up * s * (1.0 + x * (1.0 - s));
            *u = dy * x * s;
        }
    }
}
