//! The growth into a stage (paper §4.1): the `[stages.growth]` table (`width = "pdg"`,
//! `depth = "redundant"`, `ramp_steps = 100`) with its operators resolved by name, the
//! defaults of each model family, and the check that one model can grow into another.

use growlm_model::GptConfig;
use serde::{Deserialize, Serialize};

use crate::{depth, width, Depth, LayerOrigin, OpsError, Width};

/// Settings of the growth into a stage (the `[stages.growth]` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrowthConfig {
    /// The width operator (`cargo xtask operators` lists them).
    #[serde(default = "default_width")]
    pub width: Width,
    /// The depth operator.
    #[serde(default = "default_depth")]
    pub depth: Depth,
    /// `Ge − Gb`: steps over which new width is switched on (eq. 5) by a ramping width
    /// operator; 0 switches it on at once (the paper's "w/o PDG" ablation).
    #[serde(default = "default_ramp")]
    pub ramp_steps: u64,
}

fn default_width() -> Width {
    Width(&width::ALL[0])
}
fn default_depth() -> Depth {
    Depth(&depth::ALL[0])
}

/// The name of the depth operator `model` grows with when none is named: its family's
/// ([`growlm_model::FamilyDesc::default_depth`]): `redundant` for GPT-Neo (the paper's),
/// `expand` for Llama and Qwen2, where a SwiGLU MLP behind a zeroed norm never learns
/// (tests/llama.rs; docs/operators.md).
pub fn default_depth_for(model: &GptConfig) -> &'static str {
    model.describe().default_depth
}
fn default_ramp() -> u64 {
    100
}

impl Default for GrowthConfig {
    fn default() -> Self {
        Self {
            width: default_width(),
            depth: default_depth(),
            ramp_steps: default_ramp(),
        }
    }
}

impl GrowthConfig {
    /// The operators named `width` and `depth`, with `ramp_steps`.
    pub fn named(width: &str, depth: &str, ramp_steps: u64) -> Result<Self, OpsError> {
        Ok(Self {
            width: Width::named(width)?,
            depth: Depth::named(depth)?,
            ramp_steps,
        })
    }

    /// The two operators.
    pub fn operators(&self) -> (Width, Depth) {
        (self.width, self.depth)
    }

    /// Steps of the width ramp: `ramp_steps` for a ramping width operator, else 0.
    pub fn effective_ramp(&self) -> u64 {
        if self.width.ramps() {
            self.ramp_steps
        } else {
            0
        }
    }

    /// A short name for logs and `events.jsonl`, e.g. `pdg(ramp=100)+redundant`.
    pub fn describe(&self) -> String {
        if self.width.ramps() {
            format!("{}(ramp={})+{}", self.width, self.ramp_steps, self.depth)
        } else {
            format!("{}+{}", self.width, self.depth)
        }
    }
}

/// Checks that `source` can grow into `target` with `op`.
pub fn check_growth(source: &GptConfig, target: &GptConfig, op: &GrowthConfig) -> Result<(), OpsError> {
    let pairs = [
        ("d_model", source.d_model, target.d_model),
        ("n_layers", source.n_layers, target.n_layers),
        ("n_heads", source.n_heads, target.n_heads),
        ("ffn_dim", source.ffn_dim(), target.ffn_dim()),
        ("context_len", source.context_len, target.context_len),
    ];
    for (what, s, t) in pairs {
        if t < s {
            return Err(OpsError::Shrink {
                what,
                from: s,
                target: t,
            });
        }
    }
    if source.vocab_size != target.vocab_size {
        return Err(OpsError::Incompatible(format!(
            "vocab_size differs ({} → {}); stages must share the tokenizer",
            source.vocab_size, target.vocab_size
        )));
    }
    if source.head_dim() != target.head_dim() {
        return Err(OpsError::Incompatible(format!(
            "head_dim changes from {} to {}; the attention scale and the head layout would change, so the function cannot be preserved. Grow the number of heads instead (keep d_model / n_heads, or set head_dim, equal)",
            source.head_dim(),
            target.head_dim()
        )));
    }
    if (source.layer_norm_eps - target.layer_norm_eps).abs() > 0.0 {
        return Err(OpsError::Incompatible("layer_norm_eps differs between stages".into()));
    }
    if source.family != target.family {
        return Err(OpsError::Incompatible(format!(
            "the stages are of different families ({:?} → {:?}); grow within one family",
            source.family, target.family
        )));
    }
    if source.components() != target.components() {
        return Err(OpsError::Incompatible(format!(
            "the stages are built from different parts ({:?} → {:?}); swap the same parts in every stage",
            source.swaps(),
            target.swaps()
        )));
    }
    let family = source.describe();
    {
        let same = |what: &str, s: String, t: String| {
            if s == t {
                Ok(())
            } else {
                Err(OpsError::Incompatible(format!(
                    "{what} changes ({s} → {t}) between {} stages; keep it",
                    family.name
                )))
            }
        };
        if family.parts.positions == growlm_model::Positions::Rotary {
            same("rope_theta", source.theta().to_string(), target.theta().to_string())?;
        }
        same("tie_embeddings", source.tied().to_string(), target.tied().to_string())?;
        let group = |c: &GptConfig| c.n_heads / c.kv_heads();
        same(
            "n_heads / n_kv_heads",
            group(source).to_string(),
            group(target).to_string(),
        )?;
    }
    let (w, d) = op.operators();
    if d.gates_new_layers() && !(w.ramps() && w.scales_softly()) {
        return Err(OpsError::Incompatible(format!(
            "depth `{}` gates new layers with MSG's ramp; use it with width `msg`",
            d.name()
        )));
    }
    if d.gates_new_layers() && target.n_layers > 64 {
        return Err(OpsError::Incompatible(format!(
            "depth `{}` gates at most 64 layers; the target has {}",
            d.name(),
            target.n_layers
        )));
    }
    w.map("d_model", source.d_model, target.d_model)?;
    w.map("n_heads", source.n_heads, target.n_heads)?;
    w.map("ffn_dim", source.ffn_dim(), target.ffn_dim())?;
    for (j, origin) in d.layers(source, target)?.iter().enumerate() {
        if let LayerOrigin::Copy(i) = origin {
            if source.window(*i) != target.window(j) {
                return Err(OpsError::Incompatible(format!(
                    "depth `{}` puts source layer {i} (window {:?}) at target layer {j} (window {:?}); the attention pattern would change",
                    d.name(),
                    source.window(*i),
                    target.window(j)
                )));
            }
        }
    }
    Ok(())
}
