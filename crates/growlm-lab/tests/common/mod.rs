//! Shared helpers of growlm-lab's integration tests.
#![allow(dead_code)]

use std::path::Path;

use growlm_policy::Registry;

/// The policies the tests' experiments name.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    growlm_policy_never::register(&mut r);
    growlm_policy_fixed::register(&mut r);
    growlm_policy_convergence::register(&mut r);
    r
}

/// Writes `text` as an experiment file in `dir` and returns why loading it failed.
pub fn load_error(dir: &Path, text: &str) -> String {
    let p = dir.join("e.toml");
    std::fs::write(&p, text).unwrap();
    match growlm_lab::Experiment::load(&p) {
        Ok(_) => panic!("loaded:\n{text}"),
        Err(e) => e.to_string(),
    }
}
