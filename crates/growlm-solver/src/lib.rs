//! The optimal-growth-point solver (docs/design.md §Solver; paper §3.2, eq. 1–3, Appendix A).
//!
//! Plain `f64` math with no burn dependency: loss-curve models fitted by nonlinear least
//! squares (argmin), fit statistics (statrs), the value function `V`, the effect
//! conversion rate `E`, and the growth point where `E = Fs/Ft`. It reads no files: it takes a
//! [`Curve`] (run directories and CSV curves are read by `growlm-train`'s `RunDir`).

pub mod budget;
pub mod curve;
pub mod fit;
pub mod growth;
pub mod law;
pub mod least_squares;
pub mod stats;
pub mod transfer;

pub use budget::{BudgetAnswer, BudgetOption, GrowthPair, SizeCost};
pub use curve::{CurveModel, Exponential, ModelKind, PowerLaw};
pub use fit::{fit, fit_best, Curve, Fit, Objective};
pub use growth::{brent_min, brent_root, empirical_effect, plan_stages, GrowthProblem, Optimum, Plan, PlanStage};
pub use law::{LawFit, LawPoint, ScalingLaw};
pub use least_squares::{LeastSquares, Residuals};
pub use stats::{fit_line, LineFit};
pub use transfer::{Anchored, GrownPoint, GrowthLaw, LossModel, Transfer, TransferFit};

/// Errors of the solver.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum SolverError {
    /// Not enough data to fit.
    #[error("too few points: got {got}, need at least {needed}")]
    TooFewPoints {
        /// Points given.
        got: usize,
        /// Points needed.
        needed: usize,
    },
    /// Data that cannot be used.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// No optimiser produced a finite fit.
    #[error("fitting the {model} model failed from every starting point")]
    FitFailed {
        /// The model.
        model: String,
    },
    /// The problem has no solution in the range asked for.
    #[error("no solution: {0}")]
    NoSolution(String),
}
