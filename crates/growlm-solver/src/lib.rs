//! The optimal-growth-point solver (DESIGN.md §Solver; paper §3.2, eq. 1–3, Appendix A).
//!
//! Plain `f64` math with no burn dependency: loss-curve models fitted by nonlinear least
//! squares (argmin), fit statistics (statrs), the value function `V`, the effect
//! conversion rate `E`, and the growth point where `E = Fs/Ft`.

pub mod stats;

pub use stats::{fit_line, LineFit};

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
}
