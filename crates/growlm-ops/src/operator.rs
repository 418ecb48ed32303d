//! Growth operator definitions: the `[stages.growth]` table, where each target layer comes
//! from (redundant layers, paper §3.4), and which source/target pairs can grow at all
//! (§3.5: any factor in width and depth, with the head size kept).

use growlm_model::GptConfig;
use serde::{Deserialize, Serialize};

use crate::OpsError;

/// How new layers are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DepthOp {
    /// Redundant layers (§3.4): copy the adjacent layer's attention and MLP weights, with
    /// LayerNorm weights and every bias zero, so the new layer is an identity at `Gb`.
    #[default]
    Redundant,
    /// Freshly initialised layers (the paper's "w/o RL" ablation; not function-preserving).
    Random,
}

/// Settings of the growth into a stage (the `[stages.growth]` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrowthConfig {
    /// How new layers are made.
    #[serde(default)]
    pub depth: DepthOp,
    /// `Ge − Gb`: steps over which new width is switched on (eq. 5); 0 switches it on at
    /// once (the paper's "w/o PDG" ablation).
    #[serde(default = "default_ramp")]
    pub ramp_steps: u64,
}

fn default_ramp() -> u64 {
    100
}

impl Default for GrowthConfig {
    fn default() -> Self {
        Self {
            depth: DepthOp::Redundant,
            ramp_steps: default_ramp(),
        }
    }
}

impl GrowthConfig {
    /// A short name for logs and `events.jsonl`, e.g. `pdg(ramp=100)+redundant`.
    pub fn describe(&self) -> String {
        let depth = match self.depth {
            DepthOp::Redundant => "redundant",
            DepthOp::Random => "random-layers",
        };
        format!("pdg(ramp={})+{depth}", self.ramp_steps)
    }
}

/// Where a layer of the grown model comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LayerOrigin {
    /// Source layer `i`, copied.
    Copy(usize),
    /// A redundant layer built from source layer `i`.
    Redundant(usize),
    /// A freshly initialised layer.
    Random,
}

/// Places `lt − ls` new layers evenly among `ls` old ones: after source layer `i` come
/// `⌊(i+1)·n/ls⌋ − ⌊i·n/ls⌋` new layers, each built from layer `i`, its neighbour.
pub fn layer_map(ls: usize, lt: usize, depth: DepthOp) -> Vec<LayerOrigin> {
    let n = lt - ls;
    let mut out = Vec::with_capacity(lt);
    for i in 0..ls {
        out.push(LayerOrigin::Copy(i));
        for _ in 0..((i + 1) * n / ls - i * n / ls) {
            out.push(match depth {
                DepthOp::Redundant => LayerOrigin::Redundant(i),
                DepthOp::Random => LayerOrigin::Random,
            });
        }
    }
    out
}

/// Checks that `source` can grow into `target` preserving its function.
pub fn check_growth(source: &GptConfig, target: &GptConfig) -> Result<(), OpsError> {
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
    for (j, origin) in layer_map(source.n_layers, target.n_layers, DepthOp::Redundant)
        .iter()
        .enumerate()
    {
        if let LayerOrigin::Copy(i) = origin {
            if source.window(*i) != target.window(j) {
                return Err(OpsError::Incompatible(format!(
                    "source layer {i} (window {:?}) would land at target layer {j} (window {:?}); with alternating local attention, use a global pattern or a depth factor that keeps each layer's kind",
                    source.window(*i),
                    target.window(j)
                )));
            }
        }
    }
    Ok(())
}
