//! growlm-lab: growlm's studies as a library (docs/design.md §Evaluation protocol). What a
//! researcher measures about growth, callable from Rust; `cargo xtask` only parses
//! arguments, calls these functions and prints.
//!
//! - [`mod@compare`]: the equal-loss speed-up against a from-scratch reference (paper §4.3,
//!   Table 2);
//! - [`frontier`]: the compute-optimal frontier over from-scratch sizes, the iso-FLOP gap
//!   and ×frontier of any run;
//! - [`mod@solve`]: the solver's typed report, [`SolveInputs`] → [`SolveReport`] (paper §3.2,
//!   eq. 1–3, Appendix A), with the multi-stage plan;
//! - [`experiment`]: the experiment file, the runs it asks for, training them `jobs` at a
//!   time with an observer per run, the results and the markdown report;
//! - [`mod@replay`]: where a policy would grow on a run's curve;
//! - [`plot`]: the SVG figures;
//! - [`stats`] and [`provenance`]: spreads over seeds, and where a figure was measured.
//!
//! Runs are read through `growlm-train`'s [`RunDir`](growlm_train::RunDir).

pub mod compare;
pub mod downstream;
mod error;
pub mod experiment;
pub mod frontier;
pub mod plot;
pub mod provenance;
pub mod replay;
pub mod solve;
pub mod stats;
pub mod trend;

pub use compare::{compare, cost_to_reach, Row};
pub use error::{Context, LabError};
pub use experiment::{run_experiment, Experiment, ExperimentOptions, Results};
pub use frontier::{Envelope, FrontierRow, FrontierRun};
pub use replay::{replay, replay_config};
pub use solve::{solve, CurveChoice, FlopsRatio, SolveInputs, SolveReport, Solved};

/// An error with its sources, `: `-separated (as anyhow's `{:#}` prints it).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s += &format!(": {cause}");
        source = cause.source();
    }
    s
}
