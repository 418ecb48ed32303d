//! The growth-schedule policy API (DESIGN.md §Policies; paper §3.2 and Appendix A).
//!
//! After every training step the engine hands the policy an [`Observation`] and acts on
//! its [`Decision`]: continue, grow to the next stage, or stop. Policies are built by name
//! from the `[policy]` table of the run config through a [`Registry`]; each validates its
//! own parameters with [`Params`], which refuses unknown keys. A policy's state is saved in
//! checkpoints ([`Policy::state`], [`Policy::load_state`]) so a resumed run decides alike.
//!
//! Writing a policy: a crate that depends on this one, implements [`Policy`] and exposes a
//! `register(&mut Registry)` function; see `policies/README.md`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// One validation-loss measurement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ValPoint {
    /// Steps completed when it was measured.
    pub step: u64,
    /// Mean validation loss (nats per token).
    pub loss: f64,
    /// Stage (index into the run's stages) the model was in.
    pub stage: usize,
}

/// What the engine tells a policy after each step.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    /// Steps completed so far.
    pub step: u64,
    /// Training tokens seen so far.
    pub tokens: u64,
    /// Training FLOPs spent so far.
    pub flops: f64,
    /// Training loss of the step just taken.
    pub train_loss: f64,
    /// Every validation loss measured so far, oldest first.
    pub val_history: &'a [ValPoint],
    /// Whether the last entry of `val_history` was measured at this step.
    pub evaluated: bool,
    /// Current stage index.
    pub stage: usize,
    /// Number of stages in the run.
    pub n_stages: usize,
    /// Training FLOPs per step of the current stage (`Fs` of eq. 3).
    pub flops_per_step: f64,
    /// Training FLOPs per step of the next stage (`Ft`), if there is one.
    pub next_flops_per_step: Option<f64>,
    /// Step at which the current stage began (0 for the first).
    pub stage_start: u64,
}

impl Observation<'_> {
    /// The validation points measured in the current stage.
    pub fn stage_history(&self) -> impl Iterator<Item = &ValPoint> {
        self.val_history.iter().filter(move |p| p.stage == self.stage)
    }

    /// Whether there is a stage to grow into.
    pub fn can_grow(&self) -> bool {
        self.stage + 1 < self.n_stages
    }
}

/// What the policy wants the engine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Keep training the current model.
    Continue,
    /// Grow into the next stage now (ignored on the last stage).
    Grow,
    /// End the run now.
    Stop,
}

/// A growth-schedule policy.
pub trait Policy: Send {
    /// The name it is registered under.
    fn name(&self) -> &str;

    /// Decides what to do after a step.
    fn decide(&mut self, obs: &Observation<'_>) -> Decision;

    /// State to save in checkpoints. Stateless policies keep the default.
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Restores state saved by [`Policy::state`].
    fn load_state(&mut self, state: serde_json::Value) -> Result<(), PolicyError> {
        let _ = state;
        Ok(())
    }

    /// A short line describing the policy's settings, for logs.
    fn describe(&self) -> String {
        self.name().to_string()
    }
}

/// Errors of policies and the registry.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum PolicyError {
    /// No policy with that name is registered.
    #[error("unknown policy `{name}`; registered policies: {known}")]
    Unknown {
        /// The requested name.
        name: String,
        /// Comma-separated registered names.
        known: String,
    },
    /// A parameter the policy does not know.
    #[error("unknown key `policy.{key}` for policy `{policy}`; known keys: {known}")]
    UnknownKey {
        /// Policy name.
        policy: String,
        /// The key.
        key: String,
        /// Keys the policy accepts.
        known: String,
    },
    /// A parameter with a bad value.
    #[error("invalid `policy.{key}` for policy `{policy}`: {reason}")]
    InvalidParam {
        /// Policy name.
        policy: String,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Saved state that cannot be restored.
    #[error("cannot restore the state of policy `{policy}`: {reason}")]
    State {
        /// Policy name.
        policy: String,
        /// What is wrong.
        reason: String,
    },
}

/// Reads a policy's parameters from its `[policy]` table, tracking which keys were used
/// so that [`Params::finish`] can refuse the rest.
pub struct Params<'a> {
    policy: String,
    table: &'a toml::Table,
    used: BTreeSet<String>,
}

impl<'a> Params<'a> {
    /// Parameters of policy `policy` (the `name` key is ignored).
    pub fn new(policy: &str, table: &'a toml::Table) -> Self {
        let mut used = BTreeSet::new();
        used.insert("name".to_string());
        Self {
            policy: policy.to_string(),
            table,
            used,
        }
    }

    fn invalid(&self, key: &str, reason: impl Into<String>) -> PolicyError {
        PolicyError::InvalidParam {
            policy: self.policy.clone(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    fn get(&mut self, key: &str) -> Option<&'a toml::Value> {
        self.used.insert(key.to_string());
        self.table.get(key)
    }

    /// A number (integer or float) or `default`.
    pub fn f64_or(&mut self, key: &str, default: f64) -> Result<f64, PolicyError> {
        match self.get(key) {
            None => Ok(default),
            Some(toml::Value::Float(f)) => Ok(*f),
            Some(toml::Value::Integer(i)) => Ok(*i as f64),
            Some(v) => Err(self.invalid(key, format!("expected a number, got {v}"))),
        }
    }

    /// A positive finite number or `default`.
    pub fn positive_f64_or(&mut self, key: &str, default: f64) -> Result<f64, PolicyError> {
        let v = self.f64_or(key, default)?;
        if v > 0.0 && v.is_finite() {
            Ok(v)
        } else {
            Err(self.invalid(key, format!("must be a positive number, got {v}")))
        }
    }

    /// A positive finite number, or `None` when the key is absent.
    pub fn optional_positive_f64(&mut self, key: &str) -> Result<Option<f64>, PolicyError> {
        match self.table.contains_key(key) {
            true => self.positive_f64_or(key, 1.0).map(Some),
            false => {
                self.used.insert(key.to_string());
                Ok(None)
            }
        }
    }

    /// A non-negative integer or `default`, at least `min`.
    pub fn u64_or(&mut self, key: &str, default: u64, min: u64) -> Result<u64, PolicyError> {
        let v = match self.get(key) {
            None => default,
            Some(toml::Value::Integer(i)) if *i >= 0 => *i as u64,
            Some(v) => return Err(self.invalid(key, format!("expected a non-negative integer, got {v}"))),
        };
        if v < min {
            return Err(self.invalid(key, format!("must be at least {min}, got {v}")));
        }
        Ok(v)
    }

    /// A list of non-negative integers, or `default`.
    pub fn u64_list_or(&mut self, key: &str, default: Vec<u64>) -> Result<Vec<u64>, PolicyError> {
        match self.get(key) {
            None => Ok(default),
            Some(toml::Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    toml::Value::Integer(i) if *i >= 0 => Ok(*i as u64),
                    v => Err(self.invalid(key, format!("expected non-negative integers, got {v}"))),
                })
                .collect(),
            Some(v) => Err(self.invalid(key, format!("expected a list of steps, got {v}"))),
        }
    }

    /// A string or `default`.
    pub fn string_or(&mut self, key: &str, default: Option<&str>) -> Result<Option<String>, PolicyError> {
        match self.get(key) {
            None => Ok(default.map(str::to_string)),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.invalid(key, format!("expected a string, got {v}"))),
        }
    }

    /// Refuses keys that were never read.
    pub fn finish(self) -> Result<(), PolicyError> {
        if let Some(key) = self.table.keys().find(|k| !self.used.contains(*k)) {
            let known: Vec<&str> = self.used.iter().filter(|k| *k != "name").map(String::as_str).collect();
            return Err(PolicyError::UnknownKey {
                policy: self.policy,
                key: key.clone(),
                known: if known.is_empty() {
                    "(none)".into()
                } else {
                    known.join(", ")
                },
            });
        }
        Ok(())
    }

    /// An error for `key` with `reason`, for checks across several parameters.
    pub fn error(&self, key: &str, reason: impl Into<String>) -> PolicyError {
        self.invalid(key, reason)
    }
}

/// Builds a policy from its parameter table.
pub type Builder = fn(&toml::Table) -> Result<Box<dyn Policy>, PolicyError>;

/// One registered policy.
#[derive(Clone)]
pub struct Entry {
    /// Name used in configs and on the command line.
    pub name: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// Constructor.
    pub build: Builder,
}

/// Policies known by name.
#[derive(Clone, Default)]
pub struct Registry {
    entries: Vec<Entry>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a policy.
    pub fn register(&mut self, name: &'static str, summary: &'static str, build: Builder) {
        self.entries.retain(|e| e.name != name);
        self.entries.push(Entry { name, summary, build });
    }

    /// The registered policies in registration order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Builds the policy named by `table["name"]` (or `name` when given) from `table`.
    pub fn build(&self, name: &str, table: &toml::Table) -> Result<Box<dyn Policy>, PolicyError> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| PolicyError::Unknown {
                name: name.to_string(),
                known: self.entries.iter().map(|e| e.name).collect::<Vec<_>>().join(", "),
            })?;
        (entry.build)(table)
    }
}
