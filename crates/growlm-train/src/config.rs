//! Run configuration: the TOML file `cargo xtask train --config` reads.

use std::path::Path;

use growlm_data::{CorpusSource, Split, TokenizerKind};
use growlm_model::GptConfig;
use growlm_ops::GrowthConfig;
use serde::{Deserialize, Serialize};

use crate::{Edit, Schedule, TrainError};

/// A whole run: seed, data, optimisation, stages and the growth policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Seed of initialisation and batch order.
    #[serde(default)]
    pub seed: u64,
    /// Data settings.
    #[serde(default)]
    pub data: DataConfig,
    /// Optimisation settings.
    pub train: TrainConfig,
    /// Model stages, smallest first; growth goes from each to the next.
    pub stages: Vec<StageConfig>,
    /// The growth-schedule policy: `name` plus its own parameters.
    #[serde(default = "default_policy")]
    pub policy: toml::Table,
}

fn default_policy() -> toml::Table {
    let mut t = toml::Table::new();
    t.insert("name".into(), toml::Value::String("never".into()));
    t
}

/// Where the text comes from and how it is evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `"sotu"` (the default corpus) or a path to a text file or directory.
    #[serde(default)]
    pub source: CorpusSource,
    /// Batches in the fixed validation set.
    #[serde(default = "default_valid_batches")]
    pub valid_batches: usize,
    /// `"byte"` (the default), `"gpt2"` or `{ bpe = { vocab_size = N } }` (trained on the
    /// training split); each stage's `model.vocab_size` follows it when absent and must
    /// agree with it when given.
    #[serde(default)]
    pub tokenizer: TokenizerKind,
    /// How validation is held out: `"tail"` (text files: the last tenth of the text) or
    /// `"documents"` (by a hash of each document, through the token store). Absent: text
    /// files split by tail, JSONL, Parquet and globs by document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
    /// The fraction of documents held out when splitting by document.
    #[serde(default = "default_valid_fraction")]
    pub valid_fraction: f64,
    /// The JSON key or Parquet column that holds a document's text.
    #[serde(default = "default_text_key")]
    pub text_key: String,
    /// Skip (and count, in the store's manifest) malformed JSONL lines and records instead
    /// of stopping at the first.
    #[serde(default)]
    pub skip_bad_lines: bool,
}

fn default_valid_fraction() -> f64 {
    0.1
}

fn default_text_key() -> String {
    "text".into()
}

fn default_valid_batches() -> usize {
    8
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            source: CorpusSource::Sotu,
            valid_batches: default_valid_batches(),
            tokenizer: TokenizerKind::Byte,
            split: None,
            valid_fraction: default_valid_fraction(),
            text_key: default_text_key(),
            skip_bad_lines: false,
        }
    }
}

/// Sets `stages.N.model.vocab_size` to the vocabulary of `data.tokenizer` in every stage
/// that does not give it, so the model follows the tokenizer. An unknown tokenizer name is
/// left for the typed parse to refuse.
fn fill_vocab_size(table: &mut toml::Table) {
    let tokenizer = table
        .get("data")
        .and_then(|d| d.get("tokenizer"))
        .and_then(|t| TokenizerKind::deserialize(t.clone()).ok())
        .unwrap_or_default();
    let Some(toml::Value::Array(stages)) = table.get_mut("stages") else {
        return;
    };
    for stage in stages {
        if let Some(toml::Value::Table(model)) = stage.get_mut("model") {
            model
                .entry("vocab_size")
                .or_insert(toml::Value::Integer(tokenizer.vocab_size() as i64));
        }
    }
}

/// Gives every stage after the first a growth depth operator, when it names none and its
/// family's default ([`growlm_model::FamilyDesc::default_depth`]) is not the operators'
/// own default: `expand` for Llama and Qwen2.
fn fill_family_depth(table: &mut toml::Table) {
    let Some(toml::Value::Array(stages)) = table.get_mut("stages") else {
        return;
    };
    for stage in stages.iter_mut().skip(1) {
        let Some(stage) = stage.as_table_mut() else { continue };
        let family = stage
            .get("model")
            .and_then(|m| m.get("family"))
            .and_then(|f| f.as_str())
            .and_then(growlm_model::Family::from_key);
        let Some(depth) = family.map(|f| f.describe().default_depth) else {
            continue;
        };
        if depth == growlm_ops::depth::ALL[0].name {
            continue;
        }
        let growth = stage
            .entry("growth")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let Some(g) = growth.as_table_mut() {
            g.entry("depth").or_insert_with(|| toml::Value::String(depth.into()));
        }
    }
}

/// What a step with a non-finite loss or gradient norm does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnNonFinite {
    /// Stop the run, naming the step and the last good checkpoint.
    #[default]
    Stop,
    /// Skip that batch's update (counted in `metrics.jsonl` and `summary.json`); stop after
    /// `train.max_skips_in_row` skipped steps in a row.
    Skip,
}

/// The float type a training step computes in (`train.precision`).
///
/// `bf16` and `f16` are mixed precision as burn 0.21 allows it generically: the master
/// weights and the AdamW state stay f32; each step casts the model to the low precision
/// inside the autodiff graph (`Gpt::cast`), so the forward and backward passes compute in
/// it, the loss is taken in f32, and the gradients arrive in f32 on the master weights.
/// Evaluation and growth use the f32 master weights. Loss scaling is not applied (bf16
/// needs none; f16 may underflow small gradients).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// Forward and backward in bfloat16.
    Bf16,
    /// Forward and backward in float16.
    F16,
}

impl Precision {
    /// The float type steps compute in, `None` for f32.
    pub fn low(self) -> Option<burn::tensor::FloatDType> {
        match self {
            Precision::F32 => None,
            Precision::Bf16 => Some(burn::tensor::FloatDType::BF16),
            Precision::F16 => Some(burn::tensor::FloatDType::F16),
        }
    }

    fn is_f32(&self) -> bool {
        *self == Precision::F32
    }
}

/// Optimisation settings (AdamW).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Sequences per step.
    pub batch_size: usize,
    /// Tokens per sequence (at most every stage's `context_len`).
    pub seq_len: usize,
    /// Steps of the whole run.
    pub max_steps: u64,
    /// Peak learning rate.
    pub lr: f64,
    /// Final learning rate of the cosine and wsd schedules.
    #[serde(default)]
    pub min_lr: f64,
    /// Linear warmup steps.
    #[serde(default)]
    pub warmup_steps: u64,
    /// Schedule shape.
    #[serde(default)]
    pub schedule: Schedule,
    /// `wsd` schedule: the fraction of `max_steps` over which the learning rate decays, at
    /// the end of the run [default 0.2].
    #[serde(default = "default_decay_frac")]
    pub decay_frac: f64,
    /// After each growth the learning rate warms up again, linearly from 0 to the
    /// schedule's value over this many steps [default 0: no re-warm-up].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rewarm_steps: u64,
    /// AdamW decoupled weight decay.
    #[serde(default = "default_wd")]
    pub weight_decay: f64,
    /// AdamW β₁.
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    /// AdamW β₂.
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    /// Clip the global gradient norm to this value; 0 disables clipping.
    #[serde(default = "default_clip")]
    pub grad_clip: f64,
    /// Evaluate on the validation set every this many steps (and at the end).
    pub eval_every: u64,
    /// Write a checkpoint every this many steps (and at the end).
    pub checkpoint_every: u64,
    /// A step with a non-finite loss or gradient norm: `stop` (default) or `skip`.
    #[serde(default)]
    pub on_nonfinite: OnNonFinite,
    /// With `skip`: stop after this many skipped steps in a row.
    #[serde(default = "default_max_skips")]
    pub max_skips_in_row: u64,
    /// The float type of forward and backward passes: `f32` (default), `bf16` or `f16`
    /// (mixed precision with f32 master weights, see [`Precision`]).
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
}

fn default_decay_frac() -> f64 {
    0.2
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn default_max_skips() -> u64 {
    10
}

fn default_wd() -> f64 {
    0.01
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.95
}
fn default_clip() -> f64 {
    1.0
}

/// One model stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// Name for logs.
    #[serde(default)]
    pub name: Option<String>,
    /// The model.
    pub model: GptConfig,
    /// How the previous stage grows into this one (ignored for the first stage).
    #[serde(default)]
    pub growth: Option<GrowthConfig>,
}

fn invalid(key: &str, reason: impl Into<String>) -> TrainError {
    TrainError::config(key, reason)
}

impl RunConfig {
    /// Parses and validates a TOML config; errors name the offending key.
    pub fn from_toml(text: &str) -> Result<Self, TrainError> {
        Self::from_table(parse_table(text)?)
    }

    /// Builds and validates a config from a parsed TOML table; an unknown key or a value
    /// of the wrong type is an error naming the key (`train.nope`, `stages.1.model.d_model`).
    pub fn from_table(mut table: toml::Table) -> Result<Self, TrainError> {
        fill_vocab_size(&mut table);
        fill_family_depth(&mut table);
        let cfg: RunConfig = growlm_policy::from_table(table).map_err(|(key, reason)| invalid(&key, reason))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads a config file, applies `sets` (`KEY=VALUE`, see [`crate::apply_set`]) and
    /// validates the result once, so their order does not matter (`--set
    /// train.max_steps=2 --set train.warmup_steps=0` works). An error names the file, or
    /// the first override after which the config is invalid, and the key.
    pub fn load(path: &Path, sets: &[String]) -> Result<Self, TrainError> {
        let edits: Vec<Edit> = sets.iter().cloned().map(Edit::Set).collect();
        Self::load_edited(path, &edits)
    }

    /// As [`load`](Self::load), with the policy replaced by `policy` (when given and not
    /// the file's own) before `sets` apply, so that `--policy solver --set
    /// policy.reference=…` sets the new policy's parameters.
    pub fn load_with_policy(path: &Path, policy: Option<&str>, sets: &[String]) -> Result<Self, TrainError> {
        let edits: Vec<Edit> = policy
            .map(|n| Edit::PolicyName(n.into()))
            .into_iter()
            .chain(sets.iter().cloned().map(Edit::Set))
            .collect();
        Self::load_edited(path, &edits)
    }

    /// Reads and validates a config file.
    pub fn from_file(path: &Path) -> Result<Self, TrainError> {
        Self::load(path, &[])
    }

    /// The config as a TOML table (the form `--set` edits).
    pub fn to_table(&self) -> toml::Table {
        toml::Table::try_from(self).expect("a config serialises to a TOML table")
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a config serialises to TOML")
    }

    /// The policy name (`policy.name`).
    pub fn policy_name(&self) -> Result<&str, TrainError> {
        match self.policy.get("name") {
            Some(toml::Value::String(s)) => Ok(s),
            Some(v) => Err(invalid("policy.name", format!("expected a string, got {v}"))),
            None => Err(invalid(
                "policy.name",
                "missing; name a policy, e.g. `name = \"convergence\"`",
            )),
        }
    }

    /// Replaces the policy by `name`, keeping the config's parameters if it already names it.
    pub fn set_policy(&mut self, name: &str) {
        if self.policy_name().ok() != Some(name) {
            self.policy = toml::Table::new();
            self.policy.insert("name".into(), toml::Value::String(name.into()));
        }
    }
}

pub(crate) fn parse_table(text: &str) -> Result<toml::Table, TrainError> {
    toml::from_str(text).map_err(|source| TrainError::Parse { source })
}
