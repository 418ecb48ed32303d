//! Typed edits of a run config (docs/design.md §Runs): what `--set`, `--policy`, `--seed`,
//! `--max-steps`, `--data` and the experiment runner change, applied to the parsed
//! config file in order and validated once. No code builds TOML text to edit a config.

use std::path::Path;

use crate::config::parse_table;
use crate::{apply_set, RunConfig, StageConfig, TrainError};

/// One edit of a config.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// A user's `KEY=VALUE` override (see [`apply_set`]).
    Set(String),
    /// Use the policy `name`, keeping the config's parameters if it already names it (as
    /// `--policy NAME`: later `policy.KEY` sets are the new policy's parameters).
    PolicyName(String),
    /// Replace the whole `[policy]` table.
    Policy(toml::Table),
    /// `train.max_steps`.
    MaxSteps(u64),
    /// `seed`.
    Seed(u64),
    /// `data.source`: a corpus name, a text file or a directory.
    DataSource(String),
}

impl std::fmt::Display for Edit {
    /// The edit as the `KEY=VALUE` override it stands for (for error messages).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Edit::Set(s) => f.write_str(s),
            Edit::PolicyName(n) => write!(f, "policy.name={}", toml::Value::String(n.clone())),
            Edit::Policy(t) => write!(f, "policy={}", toml::Value::Table(t.clone())),
            Edit::MaxSteps(n) => write!(f, "train.max_steps={n}"),
            Edit::Seed(n) => write!(f, "seed={n}"),
            Edit::DataSource(s) => write!(f, "data.source={}", toml::Value::String(s.clone())),
        }
    }
}

impl From<String> for Edit {
    fn from(set: String) -> Self {
        Edit::Set(set)
    }
}

impl Edit {
    /// Applies the edit to a config table (not validated here).
    pub fn apply(&self, table: &mut toml::Table) -> Result<(), TrainError> {
        let section = |table: &mut toml::Table, name: &str| -> Result<toml::Table, TrainError> {
            match table.remove(name) {
                None => Ok(toml::Table::new()),
                Some(toml::Value::Table(t)) => Ok(t),
                Some(v) => Err(TrainError::config(name, format!("expected a table, got {v}"))),
            }
        };
        match self {
            Edit::Set(s) => return apply_set(table, s),
            Edit::PolicyName(name) => {
                let same = table.get("policy").and_then(|p| p.get("name")).and_then(|n| n.as_str()) == Some(name);
                if !same {
                    let mut p = toml::Table::new();
                    p.insert("name".into(), toml::Value::String(name.clone()));
                    table.insert("policy".into(), toml::Value::Table(p));
                }
            }
            Edit::Policy(p) => {
                table.insert("policy".into(), toml::Value::Table(p.clone()));
            }
            Edit::Seed(n) => {
                table.insert("seed".into(), int("seed", *n)?);
            }
            Edit::MaxSteps(n) => {
                let mut t = section(table, "train")?;
                t.insert("max_steps".into(), int("train.max_steps", *n)?);
                table.insert("train".into(), toml::Value::Table(t));
            }
            Edit::DataSource(s) => {
                let mut t = section(table, "data")?;
                t.insert("source".into(), toml::Value::String(s.clone()));
                table.insert("data".into(), toml::Value::Table(t));
            }
        }
        Ok(())
    }
}

/// Makes a relative `data.tokenizer.file` absolute when the working directory lacks it and
/// the first of `dirs` that has it is found; anything else is left to validation.
fn find_tokenizer_in(table: &mut toml::Table, dirs: &[&Path]) {
    let Some(file) = table
        .get_mut("data")
        .and_then(|d| d.get_mut("tokenizer"))
        .and_then(|t| t.get_mut("file"))
    else {
        return;
    };
    let Some(p) = file.as_str().map(Path::new) else { return };
    if p.is_absolute() || p.exists() {
        return;
    }
    if let Some(there) = dirs.iter().map(|d| d.join(p)).find(|q| q.is_file()) {
        let abs = std::path::absolute(&there).unwrap_or(there);
        *file = toml::Value::String(abs.to_string_lossy().into_owned());
    }
}

fn int(key: &str, n: u64) -> Result<toml::Value, TrainError> {
    i64::try_from(n)
        .map(toml::Value::Integer)
        .map_err(|_| TrainError::config(key, format!("{n} is too large")))
}

impl RunConfig {
    /// Reads a config file once, applies `edits` in order and validates the result once.
    /// When the result is invalid, the error names the file (if the file alone is
    /// invalid) or the first edit after which the config is invalid, and the key.
    ///
    /// A relative `data.source` or `data.tokenizer = { file = … }` that is not in the
    /// working directory but is beside the config file is read from there (made absolute),
    /// so a config moves with its corpus and tokenizer; one in the working directory is
    /// read from it, as always.
    pub fn load_edited(path: &Path, edits: &[Edit]) -> Result<Self, TrainError> {
        Self::load_edited_beside(path, edits, &[])
    }

    /// As [`load_edited`](Self::load_edited), looking for relative paths in `dirs` (say,
    /// an experiment file's directory) after the config file's own.
    pub fn load_edited_beside(path: &Path, edits: &[Edit], dirs: &[&Path]) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
        let own = path.parent().unwrap_or(Path::new("."));
        let dirs: Vec<&Path> = [own].into_iter().chain(dirs.iter().copied()).collect();
        let mut cfg = Self::parse_in(&text, path, edits, &dirs)?;
        for dir in dirs {
            cfg.find_source_in(dir);
        }
        Ok(cfg)
    }

    /// A relative `data.source` that is not in the working directory but is in `dir` (the
    /// directory of the file that named it) becomes that absolute path; any other is kept.
    pub fn find_source_in(&mut self, dir: &Path) {
        if let growlm_data::CorpusSource::Path(p) = &self.data.source {
            let there = dir.join(p);
            // A glob (`shards/*.jsonl`) is found where it matches a file.
            let found = |q: &Path| {
                q.exists()
                    || glob::glob(&q.to_string_lossy()).is_ok_and(|mut m| m.any(|f| f.is_ok_and(|f| f.is_file())))
            };
            if p.is_relative() && !found(p) && found(&there) {
                let abs = std::path::absolute(&there).unwrap_or(there);
                self.data.source = growlm_data::CorpusSource::Path(abs);
            }
        }
    }

    /// As [`load_edited`](Self::load_edited), on a config's text already read (a config
    /// the command line carries inside itself); `path` names it in errors.
    pub fn parse_edited(text: &str, path: &Path, edits: &[Edit]) -> Result<Self, TrainError> {
        Self::parse_in(text, path, edits, &[])
    }

    /// [`parse_edited`](Self::parse_edited), with a relative tokenizer file looked for in
    /// `dirs` when the working directory lacks it (before validation, which reads it).
    fn parse_in(text: &str, path: &Path, edits: &[Edit], dirs: &[&Path]) -> Result<Self, TrainError> {
        let in_file = |e| TrainError::InFile {
            path: path.to_path_buf(),
            source: Box::new(e),
        };
        let mut table = parse_table(text).map_err(in_file)?;
        find_tokenizer_in(&mut table, dirs);
        let mut all = table.clone();
        if edits.iter().all(|e| e.apply(&mut all).is_ok()) {
            find_tokenizer_in(&mut all, dirs);
            if let Ok(cfg) = Self::from_table(all) {
                return Ok(cfg);
            }
        }
        // Invalid: blame the file, or the first edit after which the config is invalid.
        let mut cfg = Self::from_table(table.clone()).map_err(in_file)?;
        let mut table = table;
        for edit in edits {
            let over = |e| TrainError::Override {
                set: edit.to_string(),
                source: Box::new(e),
            };
            edit.apply(&mut table).map_err(over)?;
            find_tokenizer_in(&mut table, dirs);
            cfg = Self::from_table(table.clone()).map_err(over)?;
        }
        Ok(cfg)
    }

    /// This config with `edits` applied in order, validated.
    pub fn edited(&self, edits: &[Edit]) -> Result<Self, TrainError> {
        let mut table = self.to_table();
        for edit in edits {
            edit.apply(&mut table).map_err(|e| TrainError::Override {
                set: edit.to_string(),
                source: Box::new(e),
            })?;
        }
        Self::from_table(table)
    }

    /// Stage `n` of this config alone, trained from scratch with the policy `never` (the
    /// reference curves the solver and the experiments need).
    pub fn only_stage(&self, n: usize) -> Result<Self, TrainError> {
        let stage = self.stages.get(n).cloned().ok_or_else(|| {
            TrainError::config(
                "stages",
                format!(
                    "there is no stage {n}: the config has {} stages (0-based)",
                    self.stages.len()
                ),
            )
        })?;
        let mut cfg = self.clone();
        cfg.stages = vec![StageConfig { growth: None, ..stage }];
        cfg.set_policy("never");
        Ok(cfg)
    }

    /// This config with `train.max_steps = n`, validated.
    pub fn with_max_steps(&self, n: u64) -> Result<Self, TrainError> {
        self.edited(&[Edit::MaxSteps(n)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_edits_equal_the_overrides_they_stand_for() {
        let mut base = toml::Table::new();
        base.insert("seed".into(), toml::Value::Integer(1));
        let edits = [
            Edit::MaxSteps(9),
            Edit::Seed(5),
            Edit::DataSource("a b.txt".into()),
            Edit::PolicyName("fixed".into()),
            Edit::Set("policy.steps=[3]".into()),
        ];
        let (mut typed, mut text) = (base.clone(), base);
        for e in &edits {
            e.apply(&mut typed).unwrap();
            apply_set(&mut text, &e.to_string()).unwrap();
        }
        assert_eq!(typed, text);
        assert_eq!(
            typed["policy"]["steps"],
            toml::Value::Array(vec![toml::Value::Integer(3)])
        );
        // The same policy keeps its parameters.
        Edit::PolicyName("fixed".into()).apply(&mut typed).unwrap();
        assert_eq!(typed["policy"]["steps"].as_array().map(Vec::len), Some(1));
        let mut bad = toml::Table::new();
        bad.insert("train".into(), toml::Value::Integer(3));
        let e = Edit::MaxSteps(2).apply(&mut bad).unwrap_err().to_string();
        assert!(e.contains("`train`"), "{e}");
    }
}
