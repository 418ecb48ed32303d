//! growlm: progressive pre-training of GPT-style language models by model growth
//! (Wang et al., "When and How to Grow? On Efficient Pre-training via Model Growth",
//! ACML 2024). This facade re-exports the workspace crates and holds the policy registry.
//!
//! - [`model`]: the GPT-Neo-style decoder with width masks;
//! - [`ops`]: growth operators (PDG width, redundant-layer depth) on parameters and
//!   optimizer state;
//! - [`data`]: corpora and deterministic batching;
//! - [`train`]: the training engine;
//! - [`policy`]: the policy API; [`registry`] lists the built-in policies;
//! - [`solver`]: loss-curve fitting and the optimal growth point;
//! - [`lab`]: the studies: equal-loss comparison, the solver's report, experiments,
//!   replay and figures;
//! - [`fs`]: the one atomic file write;
//! - [`gpu_check`]: the checks that need a GPU, generic over the backend;
//! - [`interop`]: a run started from a Hugging Face checkpoint, a directory's tokenizer;
//! - [`configs`]: the shipped configs, found from any directory.
//!
//! # A tiny experiment from Rust
//!
//! The `experiment` command is a library call: a small model (`configs/tiny.toml`'s first
//! stage) and the target trained alone, one arm grown at step 6, each run watched by an
//! observer of your own, the arm measured against the target (paper Table 2).
//!
//! ```
//! use growlm::lab::experiment::{run_experiment, ExperimentOptions, JobStart};
//! use growlm::train::{DeviceKind, MetricsRow, Observer, TrainError};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let corpus = dir.path().join("corpus.txt");
//! std::fs::write(&corpus, "the state of the union is strong. ".repeat(300))?;
//! let tiny = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/tiny.toml"))?;
//! let base = tiny.replace("source = \"sotu\"", &format!("source = {:?}", corpus.display().to_string()));
//! std::fs::write(dir.path().join("base.toml"), base)?;
//! std::fs::write(dir.path().join("e.toml"), "base = \"base.toml\"\n[[arm]]\nname = \"ours\"\ngrow_at = 6\n")?;
//!
//! /// Counts the steps of one run.
//! struct Steps(u64);
//! impl Observer for Steps {
//!     fn on_step(&mut self, _: &MetricsRow) -> Result<(), TrainError> {
//!         self.0 += 1;
//!         Ok(())
//!     }
//! }
//! let opts = ExperimentOptions {
//!     file: dir.path().join("e.toml"),
//!     out: dir.path().join("out"),
//!     jobs: 1,
//!     device: DeviceKind::Flex,
//!     report_only: false,
//!     sizes_only: false,
//!     keep: None,
//!     seeds: None,
//!     command: "the crate docs' example".into(),
//! };
//! let watch = |_: &JobStart<'_>| -> Box<dyn Observer> { Box::new(Steps(0)) };
//! let (results, report) = run_experiment(&opts, &growlm::registry(), &watch)?;
//! let ours = &results.arms[0];
//! assert_eq!((ours.arm.as_str(), ours.growth_steps.as_slice()), ("ours", &[6][..]));
//! assert!(ours.speedup_flops.mean > 0.0 && report.contains("| ours |"));
//! # Ok(())
//! # }
//! ```

pub mod configs;
pub mod gpu_check;
#[cfg(feature = "cli")]
pub mod hints;
pub mod interop;
#[cfg(feature = "cli")]
pub mod launch;

pub use growlm_data as data;
pub use growlm_fs as fs;
pub use growlm_hf as hf;
pub use growlm_lab as lab;
pub use growlm_model as model;
pub use growlm_ops as ops;
pub use growlm_policy as policy;
pub use growlm_solver as solver;
pub use growlm_train as train;

/// Every policy `cargo xtask train --policy NAME` can use. A new policy crate adds one
/// line here (see `policies/README.md`).
pub fn registry() -> policy::Registry {
    let mut r = policy::Registry::new();
    growlm_policy_never::register(&mut r);
    growlm_policy_fixed::register(&mut r);
    growlm_policy_convergence::register(&mut r);
    growlm_policy_example::register(&mut r);
    growlm_policy_solver::register(&mut r);
    r
}
