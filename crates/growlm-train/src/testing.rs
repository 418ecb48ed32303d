//! Fixtures for tests and examples: the tiny two-stage config `configs/tiny.toml` ships
//! (compiled in), pointed at a corpus, and a small corpus with learnable structure. Every
//! test that trains starts from these and edits what it varies, so the fixture is written
//! once.

use std::path::{Path, PathBuf};

use crate::{Edit, RunConfig, TrainError};

/// `configs/tiny.toml`: two stages (16×2 → 24×3, head_dim 8), batch 4 × 16 tokens, 8 steps,
/// policy `never`, the default corpus.
pub const TINY: &str = include_str!("../../../configs/tiny.toml");

/// [`TINY`] over the text at `corpus`, with `edits` applied (validated).
pub fn tiny(corpus: &Path, edits: &[Edit]) -> Result<RunConfig, TrainError> {
    let all: Vec<Edit> = std::iter::once(Edit::DataSource(corpus.display().to_string()))
        .chain(edits.iter().cloned())
        .collect();
    RunConfig::from_toml(TINY)?.edited(&all)
}

/// The `[policy]` table of a policy named `name` with `params` (`KEY = VALUE` lines).
pub fn policy(name: &str, params: &str) -> Result<Edit, TrainError> {
    let mut t: toml::Table = toml::from_str(params).map_err(|source| TrainError::Parse { source })?;
    t.insert("name".into(), toml::Value::String(name.into()));
    Ok(Edit::Policy(t))
}

/// Writes a few kilobytes of English-like text with learnable structure into `dir`.
pub fn write_corpus(dir: &Path) -> std::io::Result<PathBuf> {
    let words = [
        "the", "state", "of", "the", "union", "is", "strong", "and", "our", "people", "work", "for", "peace", "in",
        "every", "land", "we", "shall", "build", "a", "better", "future", "together", "with", "courage", "hope",
    ];
    let mut text = String::new();
    let mut x: u64 = 12345;
    for i in 0..4000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let w = words[((x >> 33) as usize + i) % words.len()];
        text.push_str(w);
        text.push(if i % 12 == 11 { '.' } else { ' ' });
        if i % 12 == 11 {
            text.push(' ');
        }
    }
    let path = dir.join("corpus.txt");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// `n` words of `words` in turn: a corpus with nothing to learn but its cycle.
pub fn cycled_words(words: &[&str], n: usize) -> String {
    (0..n).map(|i| words[i % words.len()]).collect()
}

/// Makes the `k`-th checkpoint file operation of this thread, counted from now, fail with
/// "No space left on device" (`None` disarms). A checkpoint is 8 operations: its temporary
/// directory, `model.mpk`, `optim.mpk`, `state.json`, `config.toml`, `SHA256SUMS`, the
/// rename into place and `checkpoints/latest`.
pub fn fail_checkpoint_write(k: Option<usize>) {
    crate::checkpoint::faults::arm(k);
}
