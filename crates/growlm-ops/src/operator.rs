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
use serde::Serialize;

use crate::{OpsError, Ramp, RampState};

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
