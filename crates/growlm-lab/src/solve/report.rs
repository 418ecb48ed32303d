//! What `solve.json` holds (paper §3.2, Appendix A), and writing it with its figure.

use std::collections::BTreeMap;
use std::path::Path;

use growlm_solver::{Fit, ModelKind, Plan};
use serde::Serialize;

use super::Solved;
use crate::LabError;

/// A fit as `solve.json` records it.
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    /// The curve model.
    pub model: ModelKind,
    /// Its parameters.
    pub parameters: BTreeMap<String, f64>,
    /// R².
    pub r2: f64,
    /// Residual standard deviation.
    pub residual_std: f64,
    /// AIC.
    pub aic: f64,
    /// BIC.
    pub bic: f64,
    /// Confidence level of the intervals.
    pub confidence: f64,
    /// The parameters' confidence intervals.
    pub confidence_intervals: BTreeMap<String, [f64; 2]>,
    /// Points fitted.
    pub n_points: usize,
    /// The optimiser that won.
    pub solver: String,
}

impl From<&Fit> for FitReport {
    fn from(f: &Fit) -> Self {
        Self {
            model: f.model,
            parameters: f.params.iter().cloned().collect(),
            r2: f.r2,
            residual_std: f.residual_std,
            aic: f.aic,
            bic: f.bic,
            confidence: f.confidence,
            confidence_intervals: f.confidence_intervals.iter().cloned().collect(),
            n_points: f.n_points,
            solver: f.solver.clone(),
        }
    }
}

/// Both fits.
#[derive(Debug, Clone, Serialize)]
pub struct Fits {
    /// The small model's.
    pub small: FitReport,
    /// The target's.
    pub target: FitReport,
}

/// The solver's answer: what `solve.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct SolveReport {
    /// The multi-stage plan, when middle curves were given and it could be made.
    pub plan: Option<Plan>,
    /// Why the plan could not be made.
    pub plan_error: Option<String>,
    /// The growth step where E = Fs/Ft (eq. 3).
    pub optimal_growth_step: Option<f64>,
    /// Its 95% interval from the small fit's parameter covariance (delta method).
    pub optimal_growth_step_ci: Option<[f64; 2]>,
    /// The growth step with the fewest total FLOPs to the target loss.
    pub optimal_growth_step_by_flops: Option<f64>,
    /// Fs/Ft.
    pub flops_ratio: f64,
    /// The convergence-stage step (|L_s'| below the threshold).
    pub convergence_step: Option<f64>,
    /// Its threshold.
    pub convergence_threshold: f64,
    /// Predicted speed-up at the target loss.
    pub predicted_speedup: Option<f64>,
    /// The loss compared.
    pub target_loss: f64,
    /// The last step fitted, when the curves were cut.
    pub fit_until: Option<f64>,
    /// Why there is no optimum.
    pub error: Option<String>,
    /// A caveat of the optimum.
    pub note: Option<String>,
    /// The fits.
    pub fits: Fits,
    /// Predicted E at growth steps: `[Gb, E]`.
    pub effect_conversion_rate: Vec<[f64; 2]>,
    /// Empirical E of the grown runs: `[Gb, E]`.
    pub empirical_effect_conversion_rate: Vec<[f64; 2]>,
}

/// Writes the report as JSON to `json` and the figure to `svg`, where given.
pub fn write(s: &Solved, json: Option<&Path>, svg: Option<&Path>) -> Result<(), LabError> {
    if let Some(p) = json {
        let text = serde_json::to_string_pretty(&s.report).expect("a solve report serialises");
        crate::error::write_atomic(p, text.as_bytes())?;
    }
    if let Some(p) = svg {
        crate::plot::solve_svg(
            p,
            &crate::plot::SolveFigure {
                small: (&s.curves[0], &s.fit[0]),
                target: (&s.curves[1], &s.fit[1]),
                effect: &s.report.effect_conversion_rate,
                empirical: &s.report.empirical_effect_conversion_rate,
                ratio: s.report.flops_ratio,
                horizon: s.range[1],
            },
        )?;
    }
    Ok(())
}
