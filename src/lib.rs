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
//! - [`gpu_check`]: the checks that need a GPU, generic over the backend.

pub mod gpu_check;

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
