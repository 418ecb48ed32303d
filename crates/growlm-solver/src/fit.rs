//! Nonlinear least-squares fits of loss curves with argmin, and their statistics with
//! statrs: residual standard deviation, R², AIC/BIC, and delta-method confidence
//! intervals for parameters and derived quantities.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::curve::{CurveModel, ModelKind};
use crate::least_squares::{run_lbfgs, run_nelder_mead, LeastSquares, Residuals};
use crate::SolverError;

/// A loss curve to fit: `(step, loss)` pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Steps, strictly increasing, non-negative.
    pub steps: Vec<f64>,
    /// Losses, finite.
    pub losses: Vec<f64>,
}

impl Curve {
    /// Checks the data: at least `min_points` points, finite, non-negative strictly
    /// increasing steps, and a loss that falls overall.
    pub fn new(steps: Vec<f64>, losses: Vec<f64>) -> Result<Self, SolverError> {
        if steps.len() != losses.len() {
            return Err(SolverError::InvalidInput(format!(
                "{} steps but {} losses",
                steps.len(),
                losses.len()
            )));
        }
        if steps.len() < 5 {
            return Err(SolverError::TooFewPoints {
                got: steps.len(),
                needed: 5,
            });
        }
        if let Some(i) = steps.iter().chain(&losses).position(|v| !v.is_finite()) {
            return Err(SolverError::InvalidInput(format!(
                "value {} is NaN or infinite",
                i % steps.len()
            )));
        }
        if let Some(s) = steps.iter().find(|s| **s < 0.0) {
            return Err(SolverError::InvalidInput(format!("negative step {s}")));
        }
        if let Some(w) = steps.windows(2).find(|w| w[1] <= w[0]) {
            return Err(SolverError::InvalidInput(format!(
                "steps must increase strictly, but {} is followed by {}",
                w[0], w[1]
            )));
        }
        let k = (losses.len() / 4).max(1);
        let head: f64 = losses[..k].iter().sum::<f64>() / k as f64;
        let tail: f64 = losses[losses.len() - k..].iter().sum::<f64>() / k as f64;
        if tail >= head {
            return Err(SolverError::InvalidInput(format!(
                "the loss does not fall (first quarter mean {head:.4}, last quarter mean {tail:.4}); a loss-curve model needs a decreasing curve"
            )));
        }
        Ok(Self { steps, losses })
    }

    /// The points at or before `step`, checked as [`Curve::new`] checks: for example the
    /// stable phase of a warmup-stable-decay schedule, whose final decay eq. 1's curve
    /// models do not describe.
    pub fn until(&self, step: f64) -> Result<Self, SolverError> {
        let n = self.steps.partition_point(|s| *s <= step);
        Self::new(self.steps[..n].to_vec(), self.losses[..n].to_vec())
    }
}

/// The least-squares objective `Σ (L(Nᵢ; z) − yᵢ)²` over raw parameters `z`.
pub struct Objective<'a> {
    /// The curve model.
    pub model: &'a dyn CurveModel,
    /// The data.
    pub curve: &'a Curve,
}

impl Residuals for Objective<'_> {
    fn residuals(&self, z: &[f64]) -> Vec<f64> {
        let p = self.model.params(z);
        let points = self.curve.steps.iter().zip(&self.curve.losses);
        points.map(|(n, y)| self.model.value(&p, *n) - y).collect()
    }
    fn gradients(&self, z: &[f64]) -> Vec<Vec<f64>> {
        self.curve
            .steps
            .iter()
            .map(|n| self.model.raw_gradient(z, *n))
            .collect()
    }
}

/// A fitted curve with its statistics.
#[derive(Debug, Clone, Serialize)]
pub struct Fit {
    /// The model.
    pub model: ModelKind,
    /// Natural parameters by name.
    pub params: Vec<(String, f64)>,
    /// Raw (log) parameters.
    #[serde(skip)]
    pub raw: Vec<f64>,
    /// Covariance of the raw parameters (delta method), row-major.
    #[serde(skip)]
    pub raw_cov: Option<Vec<Vec<f64>>>,
    /// Points fitted.
    pub n_points: usize,
    /// Sum of squared residuals.
    pub sse: f64,
    /// Residual standard deviation `√(SSE/(n − k))`.
    pub residual_std: f64,
    /// Coefficient of determination.
    pub r2: f64,
    /// Akaike information criterion (Gaussian errors).
    pub aic: f64,
    /// Bayesian information criterion.
    pub bic: f64,
    /// Confidence intervals of the natural parameters, `[lo, hi]` by name.
    pub confidence_intervals: Vec<(String, [f64; 2])>,
    /// Confidence level of the intervals.
    pub confidence: f64,
    /// Which optimiser produced the fit (`lbfgs` or `nelder_mead`).
    pub solver: String,
}

impl Fit {
    /// The model.
    pub fn curve_model(&self) -> &'static dyn CurveModel {
        self.model.model()
    }
    /// Natural parameter values.
    pub fn values(&self) -> Vec<f64> {
        self.params.iter().map(|p| p.1).collect()
    }
    /// `L(N)`.
    pub fn value(&self, n: f64) -> f64 {
        self.curve_model().value(&self.values(), n)
    }
    /// `L′(N)`.
    pub fn derivative(&self, n: f64) -> f64 {
        self.curve_model().derivative(&self.values(), n)
    }
    /// `L⁻¹(loss)`.
    pub fn inverse(&self, loss: f64) -> Option<f64> {
        self.curve_model().inverse(&self.values(), loss)
    }
    /// `L(∞)`.
    pub fn asymptote(&self) -> f64 {
        self.curve_model().asymptote(&self.values())
    }

    /// Delta-method interval of a derived quantity `f(θ)` (given as a function of the
    /// natural parameters), at the fit's confidence level. `None` when the covariance is
    /// unavailable or `f` is undefined near the fit.
    pub fn delta_ci(&self, f: impl Fn(&[f64]) -> Option<f64>) -> Option<[f64; 2]> {
        let cov = self.raw_cov.as_ref()?;
        let m = self.curve_model();
        let at = |z: &[f64]| f(&m.params(z));
        let f0 = at(&self.raw)?;
        let mut g = vec![0.0; self.raw.len()];
        for i in 0..self.raw.len() {
            let h = 1e-6 * self.raw[i].abs().max(1.0);
            let (mut zp, mut zm) = (self.raw.clone(), self.raw.clone());
            zp[i] += h;
            zm[i] -= h;
            g[i] = (at(&zp)? - at(&zm)?) / (2.0 * h);
        }
        let var: f64 = (0..g.len())
            .map(|i| (0..g.len()).map(|j| g[i] * cov[i][j] * g[j]).sum::<f64>())
            .sum();
        let t = t_quantile(self.n_points, self.raw.len(), self.confidence)?;
        let half = t * var.max(0.0).sqrt();
        half.is_finite().then_some([f0 - half, f0 + half])
    }
}

fn t_quantile(n: usize, k: usize, confidence: f64) -> Option<f64> {
    let dof = n.checked_sub(k).filter(|d| *d > 0)? as f64;
    Some(StudentsT::new(0.0, 1.0, dof).ok()?.inverse_cdf(0.5 + confidence / 2.0))
}

/// Inverts a small symmetric positive-definite matrix by Gauss–Jordan elimination.
fn invert(mut a: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let mut inv: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let d = a[col][col];
        for j in 0..n {
            a[col][j] /= d;
            inv[col][j] /= d;
        }
        for i in 0..n {
            if i != col {
                let f = a[i][col];
                for j in 0..n {
                    a[i][j] -= f * a[col][j];
                    inv[i][j] -= f * inv[col][j];
                }
            }
        }
    }
    Some(inv)
}

/// Fits `kind` to `curve` by least squares: L-BFGS from several starting points, with
/// Nelder–Mead as the fallback when L-BFGS fails or ends worse.
pub fn fit(curve: &Curve, kind: ModelKind, confidence: f64) -> Result<Fit, SolverError> {
    let model = kind.model();
    let k = model.param_names().len();
    if curve.steps.len() <= k {
        return Err(SolverError::TooFewPoints {
            got: curve.steps.len(),
            needed: k + 1,
        });
    }
    let mut best: Option<(Vec<f64>, f64, &str)> = None;
    for z0 in model.initial_guesses(&curve.steps, &curve.losses) {
        let obj = || LeastSquares(Objective { model, curve });
        let a = run_lbfgs(obj(), z0.clone(), 1e-14, 500).map(|(z, c)| (z, c, "lbfgs"));
        let b = match &a {
            Some((z, c, _)) if c.is_finite() => run_nelder_mead(obj(), z.clone(), 0.5, 1e-12, 4000)
                .filter(|r| r.1 < *c * (1.0 - 1e-9))
                .map(|(z, c)| (z, c, "lbfgs+nelder_mead")),
            _ => run_nelder_mead(obj(), z0, 0.5, 1e-12, 4000).map(|(z, c)| (z, c, "nelder_mead")),
        };
        for cand in [a, b].into_iter().flatten() {
            if cand.1.is_finite() && best.as_ref().is_none_or(|b| cand.1 < b.1) {
                best = Some(cand);
            }
        }
    }
    let (raw, sse, solver) = best.ok_or_else(|| SolverError::FitFailed {
        model: model.name().into(),
    })?;
    let n = curve.steps.len();
    let nf = n as f64;
    let mean = curve.losses.iter().sum::<f64>() / nf;
    let sst: f64 = curve.losses.iter().map(|y| (y - mean).powi(2)).sum();
    let dof = (n - k) as f64;
    let sigma2 = sse / dof;
    let ll = nf * (sse.max(1e-300) / nf).ln();
    // Delta method: Cov(z) = σ² (JᵀJ)⁻¹ with J the Jacobian of the residuals.
    let mut jtj = vec![vec![0.0; k]; k];
    for s in &curve.steps {
        let g = model.raw_gradient(&raw, *s);
        for i in 0..k {
            for j in 0..k {
                jtj[i][j] += g[i] * g[j];
            }
        }
    }
    let raw_cov = invert(jtj).map(|inv| {
        inv.into_iter()
            .map(|row| row.into_iter().map(|v| v * sigma2).collect())
            .collect::<Vec<Vec<f64>>>()
    });
    let params = model.params(&raw);
    let names = model.param_names();
    let t = t_quantile(n, k, confidence);
    let confidence_intervals = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let half = match (&raw_cov, t) {
                (Some(c), Some(t)) => t * c[i][i].max(0.0).sqrt(),
                _ => f64::INFINITY,
            };
            // Interval on the log scale, mapped back: stays positive.
            (name.to_string(), [(raw[i] - half).exp(), (raw[i] + half).exp()])
        })
        .collect();
    Ok(Fit {
        model: kind,
        params: names.iter().map(|s| s.to_string()).zip(params).collect(),
        raw,
        raw_cov,
        n_points: n,
        sse,
        residual_std: sigma2.sqrt(),
        r2: if sst > 0.0 { 1.0 - sse / sst } else { 1.0 },
        aic: ll + 2.0 * k as f64,
        bic: ll + k as f64 * nf.ln(),
        confidence_intervals,
        confidence,
        solver: solver.to_string(),
    })
}

/// Fits every model and returns them best first by AIC.
pub fn fit_best(curve: &Curve, confidence: f64) -> Result<Vec<Fit>, SolverError> {
    let mut fits: Vec<Fit> = ModelKind::ALL
        .iter()
        .filter_map(|k| fit(curve, *k, confidence).ok())
        .collect();
    if fits.is_empty() {
        return Err(SolverError::FitFailed { model: "any".into() });
    }
    fits.sort_by(|a, b| a.aic.total_cmp(&b.aic));
    Ok(fits)
}
