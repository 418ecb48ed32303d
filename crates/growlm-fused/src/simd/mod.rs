//! Row kernels written so the compiler vectorises them: a polynomial `exp` (no libm call),
//! and reductions over a fixed number of lanes.
//!
//! Each kernel is compiled three times — for AVX-512, for AVX2 and for the baseline — and
//! picked at run time. Every version does the same arithmetic in the same order: Rust never
//! fuses `a·b + c` into one rounding, and each reduction keeps [`LANES`] partial sums whose
//! order is fixed by the code, not by the vector width. So the three versions give the same
//! bits, and a result does not depend on the CPU's vector unit.

/// Partial sums kept by a reduction.
pub const LANES: usize = 16;

/// `eˣ` to within 2 ulp for `x ≥ −87.3`; `0` below (where `eˣ` is subnormal or zero),
/// `+∞` above 88.7. Range reduction `x = n·ln2 + r` with `|r| ≤ ln2/2`, a degree-7
/// (Taylor) polynomial for `eʳ`, and `2ⁿ` built from the exponent bits.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5·2²³: adding and subtracting it rounds to the nearest integer (ties to even).
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-87.3, 88.7);
    let n = (xc * LOG2E + ROUND) - ROUND;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let p = 1.0 / 5040.0;
    let p = p * r + 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    // 2ⁿ from the exponent bits: n + 2²³ + 127 is an integer below 2²⁴ whose mantissa bits
    // are n + 127 (in 1..=255 for the clamped range), shifted into the exponent field. The
    // same bits as `(n as i32 + 127) << 23`, without the scalar float-to-int conversion.
    let scale = f32::from_bits((n + 8_388_735.0).to_bits() << 23);
    let y = p * scale;
    if x < -87.3 {
        0.0
    } else if x > 88.7 {
        f32::INFINITY
    } else {
        y
    }
}

/// Compiles `$body` (a function of the listed arguments) for AVX-512, AVX2 and the baseline
/// and calls the best one this CPU has.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn v4($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn v3($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has every feature `v4` is compiled for.
                    return unsafe { v4($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has every feature `v3` is compiled for.
                    return unsafe { v3($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

/// The largest element (`−∞` for an empty slice).
#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] = acc[l].max(c[l]);
        }
    }
    for (l, &x) in tail.iter().enumerate() {
        acc[l] = acc[l].max(x);
    }
    acc.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x))
}

/// Σ over lanes in a fixed order.
#[inline(always)]
fn fold(acc: [f32; LANES]) -> f32 {
    let mut s = 0.0;
    for a in acc {
        s += a;
    }
    s
}

multiversion! {
    /// Softmax of `row[..len]` in place with `scale` applied first; `row[len..]` set to 0.
    /// Returns the log-sum-exp of the scaled entries, `m + ln Σ e^{x−m}`.
    pub fn softmax_prefix(row: &mut [f32], len: usize, scale: f32) -> f32 {
        let (live, dead) = row.split_at_mut(len);
        for x in live.iter_mut() {
            *x *= scale;
        }
        let m = max(live);
        let mut acc = [0.0f32; LANES];
        let mut chunks = live.chunks_exact_mut(LANES);
        for c in &mut chunks {
            for l in 0..LANES {
                let e = exp(c[l] - m);
                c[l] = e;
                acc[l] += e;
            }
        }
        for (l, x) in chunks.into_remainder().iter_mut().enumerate() {
            let e = exp(*x - m);
            *x = e;
            acc[l] += e;
        }
        let sum = fold(acc);
        let inv = 1.0 / sum;
        for x in live.iter_mut() {
            *x *= inv;
        }
        dead.fill(0.0);
        m + sum.ln()
    }
}

multiversion! {
    /// `row[j] ← exp(scale·row[j] − lse)` for `j < len`, 0 after: the probabilities the
    /// forward pass computed, recomputed from its log-sum-exp.
    pub fn probs_prefix(row: &mut [f32], len: usize, scale: f32, lse: f32) {
        let (live, dead) = row.split_at_mut(len);
        for x in live.iter_mut() {
            *x = exp(*x * scale - lse);
        }
        dead.fill(0.0);
    }
}

multiversion! {
    /// Softmax backward for one row: with `p` the probabilities and `dp` the gradient
    /// with respect to them, `dp[j] ← scale·p[j]·(dp[j] − Σₖ p[k]·dp[k])` over the whole row.
    pub fn softmax_backward(p: &[f32], dp: &mut [f32], scale: f32) {
        let mut acc = [0.0f32; LANES];
        let n = p.len().min(dp.len());
        let (p, dp) = (&p[..n], &mut dp[..n]);
        let full = n - n % LANES;
        for i in (0..full).step_by(LANES) {
            for l in 0..LANES {
                acc[l] += p[i + l] * dp[i + l];
            }
        }
        for i in full..n {
            acc[i - full] += p[i] * dp[i];
        }
        let dot = fold(acc);
        for j in 0..n {
            dp[j] = scale * p[j] * (dp[j] - dot);
        }
    }
}

multiversion! {
    /// Log-sum-exp of a row.
    pub fn logsumexp(row: &[f32]) -> f32 {
        let m = max(row);
        if m == f32::NEG_INFINITY {
            return m;
        }
        let mut acc = [0.0f32; LANES];
        let chunks = row.chunks_exact(LANES);
        let tail = chunks.remainder();
        for c in chunks {
            for l in 0..LANES {
                acc[l] += exp(c[l] - m);
            }
        }
        for (l, &x) in tail.iter().enumerate() {
            acc[l] += exp(x - m);
        }
        m + fold(acc).ln()
    }
}

multiversion! {
    /// `row[j] ← g·exp(row[j] − lse)`: a softmax row, from its log-sum-exp, scaled by `g`.
    pub fn scaled_probs(row: &mut [f32], lse: f32, g: f32) {
        for x in row.iter_mut() {
            *x = g * exp(*x - lse);
        }
    }
}

/// `2·√(2/π)`: GELU's `2u = K·x·(1 + 0.044715·x²)`.
const GELU_K: f32 = 2.0 * 0.797_884_6;
const GELU_C: f32 = 0.044715;

multiversion! {
    /// GPT-Neo's tanh GELU, `y = x·σ(2u)` (equal to `0.5·x·(1 + tanh u)`), `u = √(2/π)·(x +
    /// 0.044715·x³)`.
    pub fn gelu(x: &[f32], y: &mut [f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            let two_u = GELU_K * x * (1.0 + GELU_C * x * x);
            *y = x / (1.0 + exp(-two_u));
        }
    }
}

multiversion! {
    /// GELU backward: `dy ← dy·(σ + x·σ·(1 − σ)·K·(1 + 3·0.044715·x²))` with `σ = σ(2u)`.
    pub fn gelu_backward(x: &[f32], dy: &mut [f32]) {
        for (g, &x) in dy.iter_mut().zip(x) {
            let two_u = GELU_K * x * (1.0 + GELU_C * x * x);
            let s = 1.0 / (1.0 + exp(-two_u));
            *g *= s + x * s * (1.0 - s) * GELU_K * (1.0 + 3.0 * GELU_C * x * x);
        }
    }
}

/// Σ over a row with [`LANES`] partial sums.
#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    for (l, &x) in tail.iter().enumerate() {
        acc[l] += x;
    }
    fold(acc)
}

multiversion! {
    /// One LayerNorm row: `y ← (x − m)·s·gamma + beta` with `m` the mean and
    /// `s = 1/√(var + eps)` (biased variance); returns `(m, s)`.
    pub fn norm_row(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, y: &mut [f32]) -> (f32, f32) {
        let d = x.len() as f32;
        let m = sum(x) / d;
        let mut acc = [0.0f32; LANES];
        let chunks = x.chunks_exact(LANES);
        let tail = chunks.remainder();
        for c in chunks {
            for l in 0..LANES {
                let e = c[l] - m;
                acc[l] += e * e;
            }
        }
        for (l, &x) in tail.iter().enumerate() {
            let e = x - m;
            acc[l] += e * e;
        }
        let s = 1.0 / (fold(acc) / d + eps).sqrt();
        for j in 0..x.len().min(y.len()).min(gamma.len()).min(beta.len()) {
            y[j] = (x[j] - m) * s * gamma[j] + beta[j];
        }
        (m, s)
    }
}

multiversion! {
    /// One LayerNorm row backward: adds `dy·x̂` to `dgamma` and `dy` to `dbeta`, then
    /// `dy ← s·(g − mean(g) − x̂·mean(g·x̂))` with `x̂ = (x − m)·s`, `g = dy·gamma`.
    pub fn norm_row_backward(
        x: &[f32],
        gamma: &[f32],
        m: f32,
        s: f32,
        dy: &mut [f32],
        dgamma: &mut [f32],
        dbeta: &mut [f32],
    ) {
        let n = x.len().min(gamma.len()).min(dy.len()).min(dgamma.len()).min(dbeta.len());
        let (mut ga, mut gb) = ([0.0f32; LANES], [0.0f32; LANES]);
        for j in 0..n {
            let xh = (x[j] - m) * s;
            dgamma[j] += dy[j] * xh;
            dbeta[j] += dy[j];
            let g = dy[j] * gamma[j];
            ga[j % LANES] += g;
            gb[j % LANES] += g * xh;
        }
        let d = n as f32;
        let (a, b) = (fold(ga) / d, fold(gb) / d);
        for j in 0..n {
            let xh = (x[j] - m) * s;
            dy[j] = s * (dy[j] * gamma[j] - a - xh * b);
        }
    }
}

// Llama's row kernels (RMSNorm, SwiGLU), in their own file; declared after the macro.
mod llama;
pub use llama::{rms_row, rms_row_backward, swiglu, swiglu_backward};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_libm_over_the_range() {
        let mut worst = 0u32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (a, b) = (exp(x), x.exp());
            worst = worst.max((a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32);
            x += 0.0137;
        }
        assert!(worst <= 2, "worst error {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
    }

    #[test]
    fn exp_builds_two_to_the_n_as_an_integer_conversion_would() {
        let mut x = -87.3f32;
        while x <= 88.7 {
            let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
            let by_int = f32::from_bits(((n as i32 + 127) << 23) as u32);
            assert_eq!((n + 8_388_735.0).to_bits() << 23, by_int.to_bits(), "x = {x}");
            x += 0.001;
        }
    }

    #[test]
    fn softmax_prefix_matches_the_definition() {
        let mut row = vec![1.0f32, 2.0, 3.0, 9.0, 9.0];
        let lse = softmax_prefix(&mut row, 3, 0.5);
        let z: f32 = [0.5f32, 1.0, 1.5].iter().map(|x| x.exp()).sum();
        for (j, x) in [0.5f32, 1.0, 1.5].iter().enumerate() {
            assert!((row[j] - x.exp() / z).abs() < 1e-7);
        }
        assert_eq!(&row[3..], &[0.0, 0.0]);
        assert!((lse - z.ln()).abs() < 1e-6);
        // The same probabilities back from the log-sum-exp.
        let mut again = vec![1.0f32, 2.0, 3.0, 9.0, 9.0];
        probs_prefix(&mut again, 3, 0.5, lse);
        for j in 0..5 {
            assert!((again[j] - row[j]).abs() < 1e-7);
        }
    }

    #[test]
    fn softmax_backward_matches_the_jacobian() {
        // Hand-worked: p = (0.2, 0.3, 0.5), dp = (1, 0, −1): Σ p·dp = −0.3, so
        // ds = p·(dp + 0.3) = (0.26, 0.09, −0.35); with scale 2, twice that.
        let p = [0.2f32, 0.3, 0.5];
        let mut dp = [1.0f32, 0.0, -1.0];
        softmax_backward(&p, &mut dp, 2.0);
        for (a, b) in dp.iter().zip([0.52f32, 0.18, -0.70]) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn gelu_matches_the_tanh_form_and_its_derivative() {
        let xs: Vec<f32> = (-60..=60).map(|i| i as f32 * 0.1).collect();
        let mut y = vec![0.0; xs.len()];
        gelu(&xs, &mut y);
        let f = |x: f64| 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh());
        let mut dy = vec![1.0; xs.len()];
        gelu_backward(&xs, &mut dy);
        for (i, &x) in xs.iter().enumerate() {
            assert!(
                (y[i] as f64 - f(x as f64)).abs() < 2e-6,
                "gelu({x}) = {} vs {}",
                y[i],
                f(x as f64)
            );
            let fd = (f(x as f64 + 1e-5) - f(x as f64 - 1e-5)) / 2e-5;
            assert!((dy[i] as f64 - fd).abs() < 2e-6, "gelu'({x}) = {} vs {fd}", dy[i]);
        }
    }

    #[test]
    fn logsumexp_of_a_long_row() {
        let row: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 5.0).collect();
        let m = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let want = m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
        assert!((logsumexp(&row) as f64 - want).abs() < 1e-5);
    }
}
