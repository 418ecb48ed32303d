//! Per-tensor growth plans and their application to host-side tensors.
//!
//! A plan says, for each parameter of the target model, where its values come from: a
//! source tensor copied into the leading block, with the rest freshly initialised or
//! zero, or the whole tensor zero or fresh. The same plan is applied to the parameters
//! and to each optimizer moment (paper §3.5: the optimizer state follows the parameters),
//! where "fresh" means zero.

use growlm_model::GptConfig;
use serde::Serialize;

use crate::operator::{check_growth, layer_map, GrowthConfig, LayerOrigin};
use crate::OpsError;

/// What fills the entries of a target tensor that no source value covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Fill {
    /// As a freshly initialised target model has them.
    Fresh,
    /// Zero.
    Zero,
}

/// Where one target tensor's values come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorPlan {
    /// Path of the target parameter (e.g. `blocks.3.attn.query.weight`).
    pub target: String,
    /// Path of the source parameter copied into the leading block, if any.
    pub source: Option<String>,
    /// What fills the remaining entries.
    pub rest: Fill,
}

/// A dense row-major tensor on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

impl HostTensor {
    /// A tensor of zeros.
    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Self {
            shape,
            values: vec![0.0; n],
        }
    }

    /// Copies `src` into the leading block of `self` (`src.shape[i] ≤ self.shape[i]`).
    pub fn embed(&mut self, src: &HostTensor) {
        assert_eq!(self.shape.len(), src.shape.len(), "rank mismatch");
        match self.shape.len() {
            1 => self.values[..src.shape[0]].copy_from_slice(&src.values),
            2 => {
                let (cols, scols) = (self.shape[1], src.shape[1]);
                for r in 0..src.shape[0] {
                    self.values[r * cols..r * cols + scols].copy_from_slice(&src.values[r * scols..(r + 1) * scols]);
                }
            }
            n => unreachable!("growlm models have only 1-D and 2-D parameters, got rank {n}"),
        }
    }
}

/// Builds a target tensor following `plan`.
///
/// `fresh` is the freshly initialised value (used where the plan says [`Fill::Fresh`]);
/// pass `None` to fill those entries with zero (as for optimizer moments). `source` is the
/// source tensor named by the plan, if present.
pub fn apply(
    shape: &[usize],
    plan: &TensorPlan,
    fresh: Option<&HostTensor>,
    source: Option<&HostTensor>,
) -> HostTensor {
    let mut out = match (plan.rest, fresh) {
        (Fill::Fresh, Some(f)) => f.clone(),
        _ => HostTensor::zeros(shape.to_vec()),
    };
    if let Some(src) = source {
        out.embed(src);
    }
    out
}

/// The per-tensor plan for growing `source` into `target` with `op`. Target paths follow
/// the model's field names (`wte`, `blocks.3.attn.query.weight`, …).
pub fn plan(source: &GptConfig, target: &GptConfig, op: &GrowthConfig) -> Result<Vec<TensorPlan>, OpsError> {
    check_growth(source, target)?;
    let copy = |path: &str| TensorPlan {
        target: path.to_string(),
        source: Some(path.to_string()),
        rest: Fill::Fresh,
    };
    let mut plans = vec![copy("wte"), copy("wpe"), copy("ln_f.gamma"), copy("ln_f.beta")];
    const WEIGHTS: [&str; 6] = ["attn.query", "attn.key", "attn.value", "attn.out", "mlp.up", "mlp.down"];
    for (j, origin) in layer_map(source.n_layers, target.n_layers, op.depth)
        .into_iter()
        .enumerate()
    {
        let mut push = |suffix: &str, source: Option<String>, rest: Fill| {
            plans.push(TensorPlan {
                target: format!("blocks.{j}.{suffix}"),
                source,
                rest,
            })
        };
        for ln in ["ln_attn", "ln_mlp"] {
            for p in ["gamma", "beta"] {
                match origin {
                    LayerOrigin::Copy(i) => {
                        push(&format!("{ln}.{p}"), Some(format!("blocks.{i}.{ln}.{p}")), Fill::Fresh)
                    }
                    LayerOrigin::Redundant(_) => push(&format!("{ln}.{p}"), None, Fill::Zero),
                    LayerOrigin::Random => push(&format!("{ln}.{p}"), None, Fill::Fresh),
                }
            }
        }
        for w in WEIGHTS {
            match origin {
                LayerOrigin::Copy(i) => {
                    push(
                        &format!("{w}.weight"),
                        Some(format!("blocks.{i}.{w}.weight")),
                        Fill::Fresh,
                    );
                    push(&format!("{w}.bias"), Some(format!("blocks.{i}.{w}.bias")), Fill::Fresh);
                }
                LayerOrigin::Redundant(i) => {
                    push(
                        &format!("{w}.weight"),
                        Some(format!("blocks.{i}.{w}.weight")),
                        Fill::Fresh,
                    );
                    push(&format!("{w}.bias"), None, Fill::Zero);
                }
                LayerOrigin::Random => {
                    push(&format!("{w}.weight"), None, Fill::Fresh);
                    push(&format!("{w}.bias"), None, Fill::Fresh);
                }
            }
        }
    }
    Ok(plans)
}
