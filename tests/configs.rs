//! Repository hygiene: every shipped config parses and validates, names a registered
//! policy whose parameters are valid, and `.ci/run` runs the README's test command.

use growlm::train::RunConfig;

#[test]
fn shipped_configs_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let cfg = RunConfig::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            growlm::registry()
                .build(cfg.policy_name().unwrap(), &cfg.policy)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 4, "expected smoke, smoke-grow, default and paper-tiny");
}

#[test]
fn paper_tiny_mirrors_gpt_neo_125m_to_355m() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/paper-tiny.toml");
    let cfg = RunConfig::from_file(&path).unwrap();
    let (s, t) = (&cfg.stages[0].model, &cfg.stages[1].model);
    // GPT-Neo-125M → 355M: 12 → 24 layers, 768 → 1024 width, 12 → 16 heads.
    assert_eq!(t.n_layers * 12, s.n_layers * 24);
    assert_eq!(t.d_model * 768, s.d_model * 1024);
    assert_eq!(t.n_heads * 12, s.n_heads * 16);
    assert_eq!(s.head_dim(), t.head_dim());
}

#[test]
fn ci_runs_the_readme_test_command() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(readme.contains("cargo test --workspace"));
    assert!(ci.lines().any(|l| l.trim() == "cargo test --workspace"));
}
