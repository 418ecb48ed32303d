//! Shared helpers of growlm-lab's integration tests.
#![allow(dead_code)]

use std::path::Path;

use growlm_lab::experiment::ExperimentOptions;
use growlm_policy::Registry;
use growlm_train::DeviceKind;

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

/// Options that train the experiment `file` into `out`, two runs at a time on the CPU.
pub fn opts(file: &Path, out: &Path) -> ExperimentOptions {
    ExperimentOptions {
        file: file.to_path_buf(),
        out: out.to_path_buf(),
        jobs: 2,
        device: DeviceKind::Flex,
        report_only: false,
        sizes_only: false,
        keep: None,
        seeds: None,
        command: "test".into(),
    }
}
