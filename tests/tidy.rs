//! Repository hygiene (in the manner of rust-analyzer's `tidy.rs`): every crate opts into
//! the workspace lints, no `todo!`/`unimplemented!`/`dbg!` is left in the sources, every
//! shipped config parses and validates with a registered policy whose parameters are
//! valid and carried inside the command, source files stay at most 400 lines and the command
//! line (`src/bin/growlm`) at most 1,500, and `.ci/run`
//! runs the README's test command. That every command the README
//! shows parses is checked in the `growlm` binary (it owns the command line).

use std::path::{Path, PathBuf};

use growlm::train::RunConfig;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every package manifest of the workspace.
fn manifests() -> Vec<PathBuf> {
    let mut out = vec![root().join("Cargo.toml")];
    for dir in ["crates", "policies"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let m = entry.unwrap().path().join("Cargo.toml");
            if m.is_file() {
                out.push(m);
            }
        }
    }
    out
}

#[test]
fn every_crate_opts_into_the_workspace_lints() {
    let ms = manifests();
    assert!(ms.len() >= 13, "found only {} manifests", ms.len());
    for m in ms {
        let t: toml::Table = toml::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
        let lints = t
            .get("lints")
            .and_then(|l| l.get("workspace"))
            .and_then(|w| w.as_bool());
        assert_eq!(lints, Some(true), "{}: add `[lints]\nworkspace = true`", m.display());
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() && name != "target" && !name.starts_with('.') && name != "runs" {
            rust_files(&p, out);
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

/// Source files (under a `src/`, not `tests/` or `benches/`) stay at most 400 lines, and the
/// command line at most 1,500: it parses, calls the libraries and prints.
#[test]
fn source_files_stay_short_and_the_cli_thin() {
    let mut files = Vec::new();
    for dir in ["src", "crates", "policies"] {
        rust_files(&root().join(dir), &mut files);
    }
    let lines = |p: &Path| std::fs::read_to_string(p).unwrap().lines().count();
    let in_src = |p: &Path| {
        let rel = p.strip_prefix(root()).unwrap();
        let parts: Vec<_> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().to_string())
            .collect();
        parts.iter().any(|c| c == "src") && !parts.iter().any(|c| c == "tests" || c == "benches" || c == "fuzz")
    };
    let sources: Vec<&PathBuf> = files.iter().filter(|p| in_src(p)).collect();
    assert!(sources.len() > 100, "found only {} source files", sources.len());
    for p in &sources {
        let n = lines(p);
        assert!(n <= 400, "{}: {n} lines; split it by job (at most 400)", p.display());
    }
    let cli: usize = sources
        .iter()
        .filter(|p| p.starts_with(root().join("src/bin/growlm")))
        .map(|p| lines(p))
        .sum();
    assert!(
        cli <= 1500,
        "src/bin/growlm: {cli} lines; move logic into the library crates (at most 1,500)"
    );
}

#[test]
fn no_placeholders_or_debug_prints_are_left() {
    let mut files = Vec::new();
    for dir in ["src", "crates", "policies", "tests", "benches"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 30, "found only {} Rust files", files.len());
    // Spelled in pieces so that this file does not match itself.
    let banned = [["to", "do!("], ["unimple", "mented!("], ["db", "g!("]].map(|p| p.concat());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            for b in &banned {
                assert!(
                    !line.contains(b.as_str()),
                    "{}:{}: `{b}` left in the source",
                    f.display(),
                    i + 1
                );
            }
        }
    }
}

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

/// The installed command carries every shipped config, each the file's very text, so that
/// `growlm train --config NAME` works from any directory.
#[test]
fn every_shipped_config_is_carried_inside_the_command() {
    let dir = root().join("configs");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().to_string())
        .collect();
    files.sort();
    let mut carried: Vec<String> = growlm::configs::SHIPPED.iter().map(|(n, _)| n.to_string()).collect();
    carried.sort();
    assert_eq!(
        files, carried,
        "add the new config to growlm::configs::SHIPPED (src/configs.rs)"
    );
    for (name, text) in growlm::configs::SHIPPED {
        let file = std::fs::read_to_string(dir.join(format!("{name}.toml"))).unwrap();
        assert_eq!(&file, text, "{name}");
    }
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

#[test]
fn the_guide_operator_arms_apply_to_paper_tiny() {
    let readme = std::fs::read_to_string(root().join("docs/operators.md")).unwrap();
    let mut arms = 0;
    for line in readme.lines().filter(|l| l.starts_with('|') && l.contains("--set S.")) {
        let sets: Vec<String> = line
            .split('`')
            .filter(|p| p.starts_with("--set "))
            .flat_map(|p| p.split("--set ").filter(|s| !s.trim().is_empty()))
            .map(|s| s.trim().replace("S.", "stages.1.growth."))
            .collect();
        let cfg = RunConfig::load(&root().join("configs/paper-tiny.toml"), &sets)
            .unwrap_or_else(|e| panic!("docs/operators.md arm `{line}`: {e}"));
        assert!(cfg.stages[1].growth.is_some());
        arms += 1;
    }
    assert!(arms >= 6, "found {arms} arms");
}

/// The paper's GPT-Neo configs have the published parameter counts.
#[test]
fn paper_configs_have_the_published_sizes() {
    let root = root();
    for (file, sizes) in [
        ("configs/gpt-neo-125m-355m.toml", (125_198_592, 12, 24)),
        ("configs/gpt-neo-125m-774m.toml", (125_198_592, 12, 36)),
    ] {
        let cfg = RunConfig::load(&root.join(file), &[]).unwrap();
        let (small, target) = (&cfg.stages[0].model, &cfg.stages[1].model);
        // GPT-Neo 125M with the tied head: 125,198,592 (transformers' count).
        assert_eq!(small.num_params(), sizes.0, "{file}");
        assert_eq!((small.n_layers, target.n_layers), (sizes.1, sizes.2), "{file}");
        assert_eq!(small.vocab_size, 50257);
        assert_eq!(small.head_dim(), target.head_dim());
    }
    // The targets by hand: 24 × 1024 and 36 × 1280, vocab 50257, 2048 positions,
    // 12·d² + 10·d weights and biases per layer (no q/k/v biases), 2·d for ln_f.
    let by_hand = |l: usize, d: usize| 50257 * d + 2048 * d + l * (12 * d * d + 10 * d) + 2 * d;
    let t355 = RunConfig::load(&root.join("configs/gpt-neo-125m-355m.toml"), &[]).unwrap();
    assert_eq!(t355.stages[1].model.num_params(), by_hand(24, 1024));
    assert_eq!(by_hand(12, 768), 125_198_592);
    let t774 = RunConfig::load(&root.join("configs/gpt-neo-125m-774m.toml"), &[]).unwrap();
    assert_eq!(t774.stages[1].model.num_params(), by_hand(36, 1280));
}

/// Text files of the repository (not `target/`, `runs/` or hidden directories).
fn text_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            if name != "target" && name != "runs" && !name.starts_with('.') {
                text_files(&p, out);
            }
        } else if [".rs", ".md", ".toml", ".sh", ".py"].iter().any(|e| name.ends_with(e)) {
            out.push(p);
        }
    }
}

/// The repository explains itself: no file points to the shared folder beside it, and every
/// section a module cites in `docs/design.md` is one of its sections.
#[test]
fn the_design_is_in_the_repository_and_every_citation_names_a_section() {
    let design = std::fs::read_to_string(root().join("docs/design.md")).unwrap();
    let sections: Vec<&str> = design.lines().filter_map(|l| l.strip_prefix("## ")).collect();
    let mut files = Vec::new();
    text_files(root(), &mut files);
    assert!(files.len() > 150, "found only {} files", files.len());
    let outside = ["..", "/shared"].concat();
    let mut cited = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        assert!(
            !text.contains(&outside),
            "{}: points outside the repository",
            f.display()
        );
        for piece in text.split(["design.md ", "§"].concat().as_str()).skip(1) {
            cited += 1;
            assert!(
                sections.iter().any(|s| piece.starts_with(s)),
                "{}: cites section `{}` of docs/design.md, which has no such section ({sections:?})",
                f.display(),
                piece.chars().take(30).collect::<String>()
            );
        }
    }
    assert!(cited > 40, "only {cited} citations found");
}

/// A family is a description the code asks (growlm-model's `family/`), not a branch: outside
/// the descriptions, no library or command source names a family to decide something. A
/// config that constructs one (`GptConfig::llama`) and tests may.
#[test]
fn no_code_branches_on_a_familys_name() {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    rust_files(&root().join("src"), &mut files);
    let mut found = Vec::new();
    for f in files {
        let path = f.to_string_lossy().replace('\\', "/");
        if !path.contains("/src/") || path.contains("/growlm-model/src/family/") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        // Unit tests at the end of a file may name families.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (i, line) in code.lines().enumerate() {
            let constructs = line.trim_start().starts_with("family: Family::");
            let names = ["Family::GptNeo", "Family::Llama", "Family::Qwen2", "is_llama("]
                .iter()
                .any(|n| line.contains(n));
            if names && !constructs {
                found.push(format!("{path}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "ask the family's description instead:\n{}",
        found.join("\n")
    );
}
