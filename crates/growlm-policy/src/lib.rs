//! The growth-schedule policy API (docs/design.md §Policies; paper §3.2 and Appendix A).
//!
//! After every training step the engine hands the policy an [`Observation`] and acts on
//! its [`Decision`]: continue, grow to the next stage, or stop. Policies are built by name
//! from the `[policy]` table of the run config through a [`Registry`]; each reads its own
//! parameters into a typed struct with [`parse_params`] (unknown keys and wrong types are
//! refused with the key named) and checks their ranges in its `validate()`. A policy's
//! state is a typed serde struct saved in checkpoints ([`Policy::state`],
//! [`Policy::load_state`], [`state_to_json`], [`state_from_json`]) so a resumed run
//! decides alike.
//!
//! Writing a policy: a crate that depends on this one, implements [`Policy`] and exposes a
//! `register(&mut Registry)` function; see `policies/README.md`.

mod registry;
mod testing;

pub use registry::{Builder, Entry, Registry};
pub use testing::{build_from, first_growth, first_growth_of, first_growth_within, refusal, test_noise};

use serde::de::DeserializeOwned;
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
    /// The run's step budget (`train.max_steps`).
    pub max_steps: u64,
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

/// Reads a policy's typed parameters from its `[policy]` table (the `name` key aside).
///
/// `T` is the policy's `#[derive(Deserialize)]` parameter struct, declared with
/// `#[serde(deny_unknown_fields)]` so that a typo is an error naming the key; a wrong type
/// names the key too. Range checks across values belong in the struct's own `validate()`.
pub fn parse_params<T: DeserializeOwned>(policy: &str, table: &toml::Table) -> Result<T, PolicyError> {
    let mut table = table.clone();
    table.remove("name");
    from_table(table).map_err(|(key, reason)| PolicyError::InvalidParam {
        policy: policy.to_string(),
        key,
        reason,
    })
}

/// Deserialises a TOML table into `T`; on failure returns the dotted key at fault
/// (`train.lr`, `stages.1.model.d_model`; a missing key is named itself, not its parent)
/// and serde's reason. Run configs and policy parameters share it.
pub fn from_table<T: DeserializeOwned>(table: toml::Table) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        // `stages.1.model`, not serde_path_to_error's `stages[1].model`: keys are named as
        // `--set` writes them.
        use serde_path_to_error::Segment;
        let segments: Vec<String> = e
            .path()
            .iter()
            .map(|s| match s {
                Segment::Seq { index } => index.to_string(),
                Segment::Map { key } => key.clone(),
                Segment::Enum { variant } => variant.clone(),
                Segment::Unknown => "?".into(),
            })
            .collect();
        let path = if segments.is_empty() {
            ".".to_string()
        } else {
            segments.join(".")
        };
        let reason = e.into_inner().message().to_string();
        let missing = reason.strip_prefix("missing field `").and_then(|r| r.split('`').next());
        let key = match (path.as_str(), missing) {
            (".", Some(m)) => m.to_string(),
            (p, Some(m)) => format!("{p}.{m}"),
            (p, None) => p.to_string(),
        };
        (key, reason)
    })
}

/// Serialises a policy's typed state for [`Policy::state`].
pub fn state_to_json<T: Serialize>(state: &T) -> serde_json::Value {
    serde_json::to_value(state).unwrap_or(serde_json::Value::Null)
}

/// Implements [`Policy::state`] and [`Policy::load_state`], inside a policy's
/// `impl Policy` block, for a policy whose decisions depend on the typed serde field
/// `self.FIELD`, saved under the policy name `NAME` (so that a run resumed from a
/// checkpoint decides as the uninterrupted run would): `typed_state!(NAME, state);`.
#[macro_export]
macro_rules! typed_state {
    ($name:expr, $field:ident) => {
        fn state(&self) -> $crate::serde_json::Value {
            $crate::state_to_json(&self.$field)
        }

        fn load_state(&mut self, state: $crate::serde_json::Value) -> Result<(), $crate::PolicyError> {
            self.$field = $crate::state_from_json($name, state)?;
            Ok(())
        }
    };
}

#[doc(hidden)]
pub use serde_json;

/// Restores a policy's typed state saved by [`state_to_json`], for [`Policy::load_state`].
pub fn state_from_json<T: DeserializeOwned>(policy: &str, state: serde_json::Value) -> Result<T, PolicyError> {
    serde_json::from_value(state).map_err(|e| PolicyError::State {
        policy: policy.to_string(),
        reason: e.to_string(),
    })
}

/// An error for parameter `key` of `policy`, for the checks of a parameter struct's
/// `validate()`.
pub fn invalid(policy: &str, key: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError::InvalidParam {
        policy: policy.to_string(),
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// Refuses `value` of `key` below `min`: "must be at least MIN, got VALUE".
pub fn at_least<T: PartialOrd + std::fmt::Display>(
    policy: &str,
    key: &str,
    value: T,
    min: T,
) -> Result<(), PolicyError> {
    if value >= min {
        Ok(())
    } else {
        Err(invalid(policy, key, format!("must be at least {min}, got {value}")))
    }
}

/// Refuses `value` of `key` unless it is a positive finite number.
pub fn positive(policy: &str, key: &str, value: f64) -> Result<(), PolicyError> {
    if value > 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(invalid(policy, key, format!("must be a positive number, got {value}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Demo {
        #[serde(default)]
        window: usize,
        steps: Vec<u64>,
    }

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn parameters_are_typed_and_errors_name_the_key() {
        let ok: Demo = parse_params("demo", &table("name = \"demo\"\nsteps = [1, 2]")).unwrap();
        assert_eq!(
            ok,
            Demo {
                window: 0,
                steps: vec![1, 2]
            }
        );
        let e = parse_params::<Demo>("demo", &table("steps = []\nwindw = 3"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("policy.windw") && e.contains("window"), "{e}");
        let e = parse_params::<Demo>("demo", &table("steps = [1]\nwindow = \"x\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("policy.window") && e.contains("string"), "{e}");
        let e = parse_params::<Demo>("demo", &table("steps = [-1]"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("policy.steps"), "{e}");
        let e = parse_params::<Demo>("demo", &table("")).unwrap_err().to_string();
        assert!(e.contains("policy.steps") && e.contains("missing"), "{e}");
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct State {
        flat: u64,
    }

    #[test]
    fn typed_state_round_trips_and_bad_state_is_refused() {
        let json = state_to_json(&State { flat: 3 });
        assert_eq!(json, serde_json::json!({"flat": 3}));
        assert_eq!(state_from_json::<State>("demo", json).unwrap(), State { flat: 3 });
        let e = state_from_json::<State>("demo", serde_json::json!({"x": 1})).unwrap_err();
        assert!(matches!(e, PolicyError::State { .. }), "{e}");
    }

    struct Always;
    impl Policy for Always {
        fn name(&self) -> &str {
            "always"
        }
        fn decide(&mut self, _obs: &Observation<'_>) -> Decision {
            Decision::Grow
        }
    }

    #[test]
    fn the_registry_builds_by_name_and_lists_what_it_knows() {
        let mut r = Registry::new();
        r.register("always", "grows", |_| Ok(Box::new(Always)));
        assert_eq!(r.build("always", &toml::Table::new()).unwrap().name(), "always");
        let e = r.build("nope", &toml::Table::new()).err().unwrap().to_string();
        assert!(e.contains("unknown policy `nope`") && e.contains("always"), "{e}");
        r.register("always", "replaced", |_| Ok(Box::new(Always)));
        assert_eq!(r.entries().len(), 1);
        assert_eq!(r.entries()[0].summary, "replaced");
    }
}
