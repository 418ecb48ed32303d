//! The operator API (paper §3.3–3.5, §4.1, Table 1): a growth is a width operator plus a
//! depth operator, each chosen by name in the stage's `[stages.growth]` table
//! (`width = "pdg"`, `depth = "redundant"`, `ramp_steps = 100`).
//!
//! A width operator says, for each width axis (hidden dims, attention heads, FFN units),
//! which source unit each target unit copies ([`AxisMap`]); a depth operator says where
//! each target layer comes from ([`LayerOrigin`]). `plan.rs` turns both into per-tensor
//! plans applied alike to the parameters and to AdamW's moments. Adding an operator is one
//! file under `width/` or `depth/` and one line in that folder's `mod.rs`.

use growlm_model::GptConfig;
use serde::{Deserialize, Serialize};

use crate::{depth, width, Depth, OpsError, Ramp, RampState, Width};

/// Which source unit each target unit of one width axis copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AxisMap {
    /// For each target unit, the source unit it copies, or `None` for a new unit filled
    /// as the operator says (fresh values, or zero for optimizer moments).
    pub source: Vec<Option<usize>>,
}

impl AxisMap {
    /// The leading `source` units copied, the rest new.
    pub fn leading(source: usize, target: usize) -> Self {
        Self {
            source: (0..target).map(|j| (j < source).then_some(j)).collect(),
        }
    }

    /// Target unit `j` copies source unit `j mod source` (uniform replication when
    /// `target` is a multiple of `source`).
    pub fn cyclic(source: usize, target: usize) -> Self {
        Self {
            source: (0..target).map(|j| Some(j % source)).collect(),
        }
    }

    /// How many target units copy each source unit (`n` source units).
    pub fn counts(&self, n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        self.source.iter().flatten().for_each(|&i| c[i] += 1);
        c
    }

    /// Expands a map over heads to one over their `group` dims each (head-major layout).
    pub fn expand(&self, group: usize) -> Self {
        Self {
            source: self
                .source
                .iter()
                .flat_map(|s| (0..group).map(move |k| s.map(|i| i * group + k)))
                .collect(),
        }
    }
}

/// A width operator.
pub trait WidthOp: Sync {
    /// The map of one width axis (`what` is `d_model`, `n_heads` or `ffn_dim`, for
    /// errors) from `source` to `target` units. By default the source units go into the
    /// leading block and the rest are new (the paper's §3.3 layout).
    fn map(&self, _what: &'static str, source: usize, target: usize) -> Result<AxisMap, OpsError> {
        Ok(AxisMap::leading(source, target))
    }
    /// Whether new width is switched on by the PDG ramp (eq. 5–7); otherwise it is all on
    /// at once.
    fn ramps(&self) -> bool {
        false
    }
    /// Whether new units take their values from the layer above rather than from the
    /// same layer (bert2BERT's advanced knowledge initialisation).
    fn reads_layer_above(&self) -> bool {
        false
    }
    /// Whether its ramp scales new units and blocks instead of masking them off (MSG's);
    /// a depth operator that gates new layers needs such a width operator.
    fn scales_softly(&self) -> bool {
        false
    }
    /// What a ramp this operator started does for the training of `step`. The default is
    /// PDG's (paper eq. 5–7): the leading [`Ramp::active_at`] units on, the rest masked off
    /// and held.
    fn ramp_at(&self, ramp: &Ramp, step: u64) -> RampState {
        let active = ramp.active_at(step);
        if active == ramp.end {
            RampState::Done
        } else {
            RampState::Masked { active, hold: true }
        }
    }
    /// `Ge`, the last step at which its ramp can still mask: `Gb + ramp_steps` by default.
    fn ramp_end(&self, ramp: &Ramp) -> u64 {
        ramp.begin + ramp.steps
    }
    /// Sets up the ramp of a growth whose target layers come from `layers` (by `depth`).
    /// The default: an operator that [scales softly](Self::scales_softly) gates the target
    /// blocks that are not copies when the depth operator gates new layers (MSG's rule);
    /// any other ramp is left as it is.
    fn start_ramp(&self, mut ramp: Ramp, layers: &[LayerOrigin], depth: &dyn DepthOp) -> Ramp {
        if self.scales_softly() {
            let new_layers = layers
                .iter()
                .enumerate()
                .filter(|(_, o)| depth.gates_new_layers() && !matches!(o, LayerOrigin::Copy(_)))
                .fold(0u64, |bits, (i, _)| bits | 1 << i);
            ramp.msg = Some(crate::MsgRamp { new_layers });
        }
        ramp
    }
    /// Whether another growth may start while its ramp runs (PDG's ramps compose: a
    /// growth starts from the width active then).
    fn composes(&self) -> bool {
        true
    }
}

/// Where a layer of the grown model comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LayerOrigin {
    /// Source layer `i`, copied whole.
    Copy(usize),
    /// Source layer `i`'s attention and MLP weights, with LayerNorm weights and every bias
    /// zero: an identity at `Gb` (redundant layers, §3.4).
    Redundant(usize),
    /// Fresh attention and MLP weights with LayerNorm weights and every bias zero: an
    /// identity at `Gb` (Shen et al. 2022).
    Identity,
    /// A freshly initialised layer.
    Random,
    /// Source layer `i` copied whole, with the projections that write into the residual
    /// stream (`attn.out`, `mlp.down`, weights and biases) zero: an identity at `Gb` whose
    /// norms stay on (LLaMA-Pro's block expansion, Wu et al. 2024).
    Expanded(usize),
}

/// A depth operator.
pub trait DepthOp: Sync {
    /// The origin of each of `target`'s layers.
    fn layers(&self, source: &GptConfig, target: &GptConfig) -> Result<Vec<LayerOrigin>, OpsError>;
    /// Whether MSG's ramp scales the new layers' residual branches from 0 to 1 (needs a
    /// width operator that [scales softly](WidthOp::scales_softly)).
    fn gates_new_layers(&self) -> bool {
        false
    }
}

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

/// The depth operator a Llama-family model grows with when none is named: `expand`.
/// `redundant` zeroes the new block's norms, and a SwiGLU MLP behind a zero RMSNorm gets
/// no gradient at all, ever (tests/llama.rs; docs/operators.md).
pub const LLAMA_DEFAULT_DEPTH: &str = "expand";

/// The name of the depth operator `model` grows with when none is named: `redundant` for
/// GPT-Neo (the paper's), [`LLAMA_DEFAULT_DEPTH`] for Llama.
pub fn default_depth_for(model: &GptConfig) -> &'static str {
    match model.is_llama() {
        true => LLAMA_DEFAULT_DEPTH,
        false => depth::ALL[0].name,
    }
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
    if source.is_llama() {
        let same = |what: &str, s: String, t: String| {
            if s == t {
                Ok(())
            } else {
                Err(OpsError::Incompatible(format!(
                    "{what} changes ({s} → {t}) between Llama stages; keep it"
                )))
            }
        };
        same("rope_theta", source.theta().to_string(), target.theta().to_string())?;
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
