//! Straight-line fits with confidence intervals (statrs' Student t), used to measure the
//! slope of a loss curve over a window of evaluations (paper Appendix A: the convergence
//! stage begins where |L′| falls below a threshold).

use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::SolverError;

/// Least-squares line `y = intercept + slope·x` with a confidence interval on the slope.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineFit {
    /// Fitted slope.
    pub slope: f64,
    /// Fitted intercept.
    pub intercept: f64,
    /// Standard error of the slope.
    pub slope_se: f64,
    /// Lower end of the slope's confidence interval.
    pub slope_lo: f64,
    /// Upper end of the slope's confidence interval.
    pub slope_hi: f64,
    /// Mean of the x values.
    pub x_mean: f64,
    /// Mean of the y values.
    pub y_mean: f64,
}

/// Fits a line to `(xs, ys)` with a two-sided `confidence` interval (e.g. 0.95) on the
/// slope. Needs at least three points and two distinct x values.
pub fn fit_line(xs: &[f64], ys: &[f64], confidence: f64) -> Result<LineFit, SolverError> {
    let n = xs.len();
    if n != ys.len() {
        return Err(SolverError::InvalidInput(format!(
            "{} x values but {} y values",
            n,
            ys.len()
        )));
    }
    if n < 3 {
        return Err(SolverError::TooFewPoints { got: n, needed: 3 });
    }
    if xs.iter().chain(ys).any(|v| !v.is_finite()) {
        return Err(SolverError::InvalidInput("a value is NaN or infinite".into()));
    }
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(SolverError::InvalidInput(format!(
            "confidence must be in (0, 1), got {confidence}"
        )));
    }
    let nf = n as f64;
    let x_mean = xs.iter().sum::<f64>() / nf;
    let y_mean = ys.iter().sum::<f64>() / nf;
    let sxx: f64 = xs.iter().map(|x| (x - x_mean).powi(2)).sum();
    if sxx <= 0.0 {
        return Err(SolverError::InvalidInput("all x values are equal".into()));
    }
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - x_mean) * (y - y_mean)).sum();
    let slope = sxy / sxx;
    let intercept = y_mean - slope * x_mean;
    let sse: f64 = xs
        .iter()
        .zip(ys)
        .map(|(x, y)| (y - intercept - slope * x).powi(2))
        .sum();
    let slope_se = (sse / (nf - 2.0) / sxx).sqrt();
    let t = StudentsT::new(0.0, 1.0, nf - 2.0)
        .map_err(|e| SolverError::InvalidInput(e.to_string()))?
        .inverse_cdf(0.5 + confidence / 2.0);
    Ok(LineFit {
        slope,
        intercept,
        slope_se,
        slope_lo: slope - t * slope_se,
        slope_hi: slope + t * slope_se,
        x_mean,
        y_mean,
    })
}
