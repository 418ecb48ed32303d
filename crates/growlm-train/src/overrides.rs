//! Command-line overrides of config keys (`--set KEY=VALUE`, Hydra-style) and the check
//! that a resumed run keeps what it was trained with.

use std::collections::BTreeMap;

use crate::{RunConfig, TrainError};

/// Applies one `KEY=VALUE` override to a config table. `KEY` is a dotted path
/// (`train.lr`, `policy.threshold`); `stages.N` indexes the stage list (0-based).
/// `VALUE` is a TOML value (`1e-3`, `[100, 200]`, `"text"`); text that is not valid TOML
/// is taken as a string, so `--set data.source=corpus.txt` works unquoted. The result is
/// not validated here: [`RunConfig::load`] validates it like a config file.
pub fn apply_set(table: &mut toml::Table, set: &str) -> Result<(), TrainError> {
    let (key, value) = set.split_once('=').ok_or_else(|| {
        let named = if set.trim().is_empty() { "(empty override)" } else { set };
        TrainError::config(named, "expected KEY=VALUE, e.g. `train.lr=1e-3`")
    })?;
    let key = key.trim();
    let value = parse_value(value.trim());
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        let named = if key.is_empty() { set } else { key };
        return Err(TrainError::config(
            named,
            "empty key segment; write keys like `train.lr`",
        ));
    }
    let mut root = toml::Value::Table(std::mem::take(table));
    let result = set_in(&mut root, &parts, 0, value);
    if let toml::Value::Table(t) = root {
        *table = t;
    }
    result
}

/// Sets `parts[depth..]` below `node` (which sits at `parts[..depth]`) to `value`.
fn set_in(node: &mut toml::Value, parts: &[&str], depth: usize, value: toml::Value) -> Result<(), TrainError> {
    let here = parts[..depth].join(".");
    let part = parts[depth];
    let last = depth + 1 == parts.len();
    let child = match node {
        toml::Value::Table(t) => {
            if last {
                t.insert(part.to_string(), value);
                return Ok(());
            }
            t.entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        }
        toml::Value::Array(a) => {
            let n = a.len();
            let i: usize = part.parse().map_err(|_| {
                TrainError::config(
                    &here,
                    format!(
                        "is a list; index it with a number from 0 to {}, e.g. `{here}.0`",
                        n.saturating_sub(1)
                    ),
                )
            })?;
            let child = a.get_mut(i).ok_or_else(|| {
                TrainError::config(
                    &format!("{here}.{part}"),
                    format!("index out of range: `{here}` has {n} entries (0-based)"),
                )
            })?;
            if last {
                *child = value;
                return Ok(());
            }
            child
        }
        v => {
            return Err(TrainError::config(
                &here,
                format!(
                    "is a {} value, not a table, so `{}` does not exist",
                    v.type_str(),
                    parts.join(".")
                ),
            ))
        }
    };
    set_in(child, parts, depth + 1, value)
}

fn parse_value(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

/// Refuses to resume with `requested` when it differs from `saved` (the config the
/// checkpoint was trained with) in anything that changes what was trained: only raising
/// `train.max_steps` is allowed. The error names the first differing key.
pub fn check_resume(saved: &RunConfig, requested: &RunConfig) -> Result<(), TrainError> {
    let raised = requested.train.max_steps >= saved.train.max_steps;
    match first_difference(saved, requested, |key| key == "train.max_steps" && raised) {
        Some((key, saved, requested)) => Err(TrainError::ResumeChanged { key, saved, requested }),
        None => Ok(()),
    }
}

/// The first key (in order) whose value differs between `saved` and `requested` and that
/// `allowed` does not let differ: `(key, saved value, requested value)`, `absent` for a
/// missing one.
fn first_difference(
    saved: &RunConfig,
    requested: &RunConfig,
    allowed: impl Fn(&str) -> bool,
) -> Option<(String, String, String)> {
    let (a, b) = (flatten(saved), flatten(requested));
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "absent".into());
    let found = keys
        .into_iter()
        .find(|k| a.get(*k) != b.get(*k) && !allowed(k))
        .map(|k| (k.clone(), show(a.get(k)), show(b.get(k))));
    found
}

/// The keys that shape the learning-rate schedule and nothing else.
const SCHEDULE_KEYS: [&str; 6] = [
    "train.schedule",
    "train.lr",
    "train.min_lr",
    "train.warmup_steps",
    "train.decay_frac",
    "train.rewarm_steps",
];

/// Refuses to branch a run with config `requested` from a checkpoint of a run with config
/// `saved` taken after `step` steps in stage `stage`, when the two differ in anything that
/// the checkpoint's steps depend on: the seed, the data, the training settings and the
/// stages up to `stage` must agree, and so must the learning rate of every step before
/// `step` (a cosine schedule over a different `max_steps` does not). Later stages, the
/// policy, `train.max_steps` and `train.checkpoint_every` may differ, and so may the
/// schedule's keys of a branch from stage 0 (no growth yet) when those learning rates
/// agree. `path` is the checkpoint, for the error.
pub fn check_branch(
    saved: &RunConfig,
    requested: &RunConfig,
    step: u64,
    stage: usize,
    path: &std::path::Path,
) -> Result<(), TrainError> {
    let free = |key: &str| {
        key.starts_with("policy.")
            || key == "train.max_steps"
            || key == "train.checkpoint_every"
            // The schedule's keys may differ where the learning rate of every step before
            // the branch agrees (checked below): a wsd decay after the branch point, say.
            || (SCHEDULE_KEYS.contains(&key) && stage == 0)
            || key
                .strip_prefix("stages.")
                .and_then(|k| k.split('.').next()?.parse::<usize>().ok())
                .is_some_and(|k| k > stage)
    };
    let err = |key: String, saved: String, requested: String| TrainError::BranchChanged {
        path: path.to_path_buf(),
        key,
        saved,
        requested,
    };
    if let Some((key, s, r)) = first_difference(saved, requested, free) {
        return Err(err(key, s, r));
    }
    if requested.stages.len() <= stage {
        return Err(err(
            "stages".into(),
            format!("at stage {stage}"),
            format!("{} stages", requested.stages.len()),
        ));
    }
    if let Some(s) = (0..step).find(|&s| saved.train.lr_at(s) != requested.train.lr_at(s)) {
        return Err(err(
            format!("lr at step {s}"),
            saved.train.lr_at(s).to_string(),
            requested.train.lr_at(s).to_string(),
        ));
    }
    Ok(())
}

/// The key path of `key` under `prefix` (`train` + `lr` → `train.lr`; no prefix: `key`), as
/// `--set` and the errors name keys.
pub fn dotted(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Every leaf of a config as `dotted.key → TOML text`.
fn flatten(cfg: &RunConfig) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
        let join = |k: &str| dotted(prefix, k);
        match v {
            toml::Value::Table(t) => t.iter().for_each(|(k, v)| walk(&join(k), v, out)),
            toml::Value::Array(a) if a.iter().all(|v| v.is_table()) && !a.is_empty() => a
                .iter()
                .enumerate()
                .for_each(|(i, v)| walk(&join(&i.to_string()), v, out)),
            v => {
                out.insert(prefix.to_string(), v.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", &toml::Value::Table(cfg.to_table()), &mut out);
    out
}
