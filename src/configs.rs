//! The shipped configs (`configs/*.toml`), carried inside the library, so that the `growlm`
//! command finds them from any directory after `cargo install` (docs/design.md §Runs).
//!
//! A config argument is a file when the file exists. When it does not, and it names a
//! shipped config (`default`, `default.toml` or `configs/default.toml`), the shipped text is
//! used. Anything else is the missing file's error, as before.

use std::path::Path;

use growlm_train::{Edit, RunConfig, TrainError};

/// Every shipped config: its name (the file stem under `configs/`) and its text.
pub const SHIPPED: &[(&str, &str)] = &[
    ("default", include_str!("../configs/default.toml")),
    ("gpt-neo-125m-355m", include_str!("../configs/gpt-neo-125m-355m.toml")),
    ("gpt-neo-125m-774m", include_str!("../configs/gpt-neo-125m-774m.toml")),
    ("gpt-neo-tiny", include_str!("../configs/gpt-neo-tiny.toml")),
    ("llama-d64", include_str!("../configs/llama-d64.toml")),
    ("multistage", include_str!("../configs/multistage.toml")),
    ("paper-tiny", include_str!("../configs/paper-tiny.toml")),
    ("paper-tiny-wsd", include_str!("../configs/paper-tiny-wsd.toml")),
    ("regime", include_str!("../configs/regime.toml")),
    ("smoke", include_str!("../configs/smoke.toml")),
    ("smoke-grow", include_str!("../configs/smoke-grow.toml")),
    ("tiny", include_str!("../configs/tiny.toml")),
];

/// The path the commands use when no config is given.
pub const DEFAULT: &str = "configs/default.toml";

/// The run directory `train` uses without `--out`: `runs/` and the config's file stem.
pub fn default_run_dir(config: Option<&Path>) -> std::path::PathBuf {
    let stem = config
        .unwrap_or(Path::new(DEFAULT))
        .file_stem()
        .map_or("run".into(), |s| s.to_string_lossy().to_string());
    Path::new("runs").join(stem)
}

/// The text of the shipped config that `arg` names, when `arg` is not an existing file:
/// `NAME`, `NAME.toml` or `configs/NAME.toml`.
pub fn shipped(arg: &Path) -> Option<&'static str> {
    if arg.is_file() {
        return None;
    }
    let s = arg.to_str()?;
    let name = s.strip_prefix("configs/").unwrap_or(s);
    let name = name.strip_suffix(".toml").unwrap_or(name);
    SHIPPED.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

/// Reads the config `arg` (a file, or a shipped config it names; see the module docs) and
/// applies `edits` ([`RunConfig::load_edited`]).
pub fn load(arg: &Path, edits: &[Edit]) -> Result<RunConfig, TrainError> {
    match shipped(arg) {
        Some(text) => RunConfig::parse_edited(text, arg, edits),
        None if !arg.is_file() => Err(TrainError::Config {
            key: arg.display().to_string(),
            reason: format!(
                "no such config file, and no shipped config has that name; give a config file, \
                 or one of {}",
                SHIPPED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ),
        }),
        None => RunConfig::load_edited(arg, edits),
    }
}
