//! Loss-curve models `L(N)` (docs/design.md §Solver): value, derivative and inverse, with
//! parameters kept positive by fitting their logarithms.

use serde::{Deserialize, Serialize};

/// A family of monotonically decreasing loss curves `L(N; θ)`.
///
/// The fit works on *raw* parameters `z ∈ ℝᵏ`; [`CurveModel::params`] maps them to the
/// natural parameters θ (e.g. `A = exp(z₁)`), which keeps every θ positive.
pub trait CurveModel: Send + Sync {
    /// Model name used in reports (`power_law`, `exponential`).
    fn name(&self) -> &'static str;
    /// Names of the natural parameters.
    fn param_names(&self) -> &'static [&'static str];
    /// Natural parameters from raw ones; by default `θᵢ = exp(zᵢ)`, every one positive.
    fn params(&self, raw: &[f64]) -> Vec<f64> {
        raw.iter().map(|z| z.exp()).collect()
    }
    /// Raw parameters from natural ones (inverse of [`CurveModel::params`]).
    fn raw(&self, params: &[f64]) -> Vec<f64> {
        params.iter().map(|p| p.ln()).collect()
    }
    /// `L(N)`.
    fn value(&self, p: &[f64], n: f64) -> f64;
    /// `dL/dN`.
    fn derivative(&self, p: &[f64], n: f64) -> f64;
    /// `N` with `L(N) = loss`, or `None` when `loss` is not above the asymptote or not
    /// below `L(0)`.
    fn inverse(&self, p: &[f64], loss: f64) -> Option<f64>;
    /// The asymptote `L(∞)`.
    fn asymptote(&self, p: &[f64]) -> f64;
    /// `∂L(N)/∂z` with respect to the raw parameters.
    fn raw_gradient(&self, raw: &[f64], n: f64) -> Vec<f64>;
    /// Starting points for the fit, from the data.
    fn initial_guesses(&self, steps: &[f64], losses: &[f64]) -> Vec<Vec<f64>>;
}

/// Which curve model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// `L∞ + A·(N + N0)^(−α)`.
    PowerLaw,
    /// `L∞ + A·exp(−N/τ)`.
    Exponential,
}

impl ModelKind {
    /// Every kind.
    pub const ALL: [ModelKind; 2] = [ModelKind::PowerLaw, ModelKind::Exponential];

    /// The model.
    pub fn model(&self) -> &'static dyn CurveModel {
        match self {
            ModelKind::PowerLaw => &PowerLaw,
            ModelKind::Exponential => &Exponential,
        }
    }

    /// Parses `power_law` or `exponential`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "power_law" | "power" => Some(Self::PowerLaw),
            "exponential" | "exp" => Some(Self::Exponential),
            _ => None,
        }
    }
}

/// The offset power law `L(N) = L∞ + A·(N + N0)^(−α)`; θ = (L∞, A, N0, α), all positive.
#[derive(Debug, Clone, Copy, Default)]
pub struct PowerLaw;

impl CurveModel for PowerLaw {
    fn name(&self) -> &'static str {
        "power_law"
    }
    fn param_names(&self) -> &'static [&'static str] {
        &["l_inf", "a", "n0", "alpha"]
    }
    fn value(&self, p: &[f64], n: f64) -> f64 {
        p[0] + p[1] * (n + p[2]).powf(-p[3])
    }
    fn derivative(&self, p: &[f64], n: f64) -> f64 {
        -p[3] * p[1] * (n + p[2]).powf(-p[3] - 1.0)
    }
    fn inverse(&self, p: &[f64], loss: f64) -> Option<f64> {
        if loss <= p[0] {
            return None;
        }
        let n = ((loss - p[0]) / p[1]).powf(-1.0 / p[3]) - p[2];
        n.is_finite().then_some(n.max(0.0))
    }
    fn asymptote(&self, p: &[f64]) -> f64 {
        p[0]
    }
    fn raw_gradient(&self, raw: &[f64], n: f64) -> Vec<f64> {
        let p = self.params(raw);
        let x = n + p[2];
        let pw = x.powf(-p[3]);
        vec![
            p[0],
            p[1] * pw,
            p[2] * (-p[3] * p[1] * pw / x),
            p[3] * (-p[1] * pw * x.ln()),
        ]
    }
    fn initial_guesses(&self, steps: &[f64], losses: &[f64]) -> Vec<Vec<f64>> {
        let lmin = losses.iter().cloned().fold(f64::INFINITY, f64::min);
        let lmax = losses.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let span = steps.last().copied().unwrap_or(1.0).max(1.0);
        let mut out = Vec::new();
        for frac in [0.5, 0.9] {
            for alpha in [0.3, 1.0] {
                for n0 in [span * 0.01, span * 0.1] {
                    let l_inf = (lmin * frac).max(1e-6);
                    let x0 = steps[0] + n0;
                    let a = ((lmax - l_inf).max(1e-6)) * x0.powf(alpha);
                    out.push(self.raw(&[l_inf, a, n0.max(1e-3), alpha]));
                }
            }
        }
        out
    }
}

/// The exponential decay `L(N) = L∞ + A·exp(−N/τ)`; θ = (L∞, A, τ), all positive.
#[derive(Debug, Clone, Copy, Default)]
pub struct Exponential;

impl CurveModel for Exponential {
    fn name(&self) -> &'static str {
        "exponential"
    }
    fn param_names(&self) -> &'static [&'static str] {
        &["l_inf", "a", "tau"]
    }
    fn value(&self, p: &[f64], n: f64) -> f64 {
        p[0] + p[1] * (-n / p[2]).exp()
    }
    fn derivative(&self, p: &[f64], n: f64) -> f64 {
        -p[1] / p[2] * (-n / p[2]).exp()
    }
    fn inverse(&self, p: &[f64], loss: f64) -> Option<f64> {
        if loss <= p[0] {
            return None;
        }
        let n = -p[2] * ((loss - p[0]) / p[1]).ln();
        n.is_finite().then_some(n.max(0.0))
    }
    fn asymptote(&self, p: &[f64]) -> f64 {
        p[0]
    }
    fn raw_gradient(&self, raw: &[f64], n: f64) -> Vec<f64> {
        let p = self.params(raw);
        let e = (-n / p[2]).exp();
        vec![p[0], p[1] * e, p[2] * (p[1] * e * n / (p[2] * p[2]))]
    }
    fn initial_guesses(&self, steps: &[f64], losses: &[f64]) -> Vec<Vec<f64>> {
        let lmin = losses.iter().cloned().fold(f64::INFINITY, f64::min);
        let lmax = losses.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let span = steps.last().copied().unwrap_or(1.0).max(1.0);
        let mut out = Vec::new();
        for frac in [0.5, 0.9, 0.99] {
            for tau in [span * 0.1, span * 0.5] {
                out.push(self.raw(&[(lmin * frac).max(1e-6), (lmax - lmin * frac).max(1e-6), tau]));
            }
        }
        out
    }
}
