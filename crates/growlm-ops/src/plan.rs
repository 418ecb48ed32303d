//! Per-tensor growth plans and their application to host-side tensors.
//!
//! A plan says, for each parameter of the target model, where its values come from: a
//! source tensor read through the width operator's [`AxisMap`] of each of its axes, with
//! the entries no source unit covers freshly initialised or zero. An entry copied from a
//! source unit that feeds a replicated unit (an axis the tensor *reads*: the input rows of
//! a weight, or `ln_f`, which the tied LM head reads) is scaled by `s = 1/count`. The same
//! plan is applied to the parameters and to each AdamW moment (paper §3.5: the optimizer
//! state follows the parameters), where "fresh" means zero and the scale follows the
//! gradient's: the first moment is multiplied by `s`, the second by `s²`.

use growlm_model::{Axis, GptConfig, HostTensor, Role};
use serde::Serialize;

use crate::operator::{AxisMap, LayerOrigin};
use crate::OpsError;
use crate::{check_growth, GrowthConfig};

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
    /// Path of the source parameter read, if any.
    pub source: Option<String>,
    /// Path of the parameter that new units read instead (`aki`: the layer above), if any.
    pub upper: Option<String>,
    /// The kind of each axis (`[rows, cols]`, or `[n]`).
    pub axes: Vec<Axis>,
    /// Which axes the tensor reads (scaled by `1/count`) rather than writes.
    pub reads: Vec<bool>,
    /// What fills the entries no source value covers.
    pub rest: Fill,
}

/// The width operator's maps of every axis kind, with the replication counts.
#[derive(Debug, Clone)]
pub struct WidthMaps {
    maps: [(AxisMap, Vec<usize>); 6],
}

impl WidthMaps {
    /// The maps `op` gives from `source` to `target`.
    pub fn new(source: &GptConfig, target: &GptConfig, op: &GrowthConfig) -> Result<Self, OpsError> {
        let (w, _) = op.operators();
        let with_counts = |m: AxisMap, n: usize| {
            let c = m.counts(n);
            (m, c)
        };
        let hd = source.head_dim();
        Ok(Self {
            maps: [
                with_counts(
                    AxisMap::leading(source.vocab_size, target.vocab_size),
                    source.vocab_size,
                ),
                with_counts(
                    AxisMap::leading(source.context_len, target.context_len),
                    source.context_len,
                ),
                with_counts(w.map("d_model", source.d_model, target.d_model)?, source.d_model),
                with_counts(
                    w.map("n_heads", source.n_heads, target.n_heads)?.expand(hd),
                    source.attn_dim(),
                ),
                with_counts(w.map("ffn_dim", source.ffn_dim(), target.ffn_dim())?, source.ffn_dim()),
                // Llama's key/value heads, mapped as the query heads are: with the group size
                // kept (`check_growth`), a replicated query head reads the replica of its
                // key/value head.
                with_counts(
                    w.map("n_kv_heads", source.kv_heads(), target.kv_heads())?.expand(hd),
                    source.kv_dim(),
                ),
            ],
        })
    }

    fn get(&self, axis: Axis) -> &(AxisMap, Vec<usize>) {
        &self.maps[axis as usize]
    }

    /// The map of one axis kind.
    pub fn map(&self, axis: Axis) -> &AxisMap {
        &self.get(axis).0
    }
}

/// Builds a target tensor following `plan`: every entry all of whose axes map to a source
/// unit is read from `source` (from `upper` instead, when given, for entries on a new
/// unit), scaled by `s^power` where `s` is the product of `1/count` over the axes the
/// tensor reads (`power` 1 for parameters and first moments, 2 for second moments); the
/// rest is `fresh` where the plan says [`Fill::Fresh`] and `fresh` is given, else zero.
pub fn apply(
    shape: &[usize],
    plan: &TensorPlan,
    maps: &WidthMaps,
    fresh: Option<&HostTensor>,
    source: Option<&HostTensor>,
    upper: Option<&HostTensor>,
    power: i32,
) -> HostTensor {
    let mut out = match (plan.rest, fresh) {
        (Fill::Fresh, Some(f)) => f.clone(),
        _ => HostTensor::zeros(shape.to_vec()),
    };
    let Some(src) = source else { return out };
    // Per axis: (source index, scale, is a new unit) of each target index.
    let per_axis: Vec<Vec<Option<(usize, f32, bool)>>> = plan
        .axes
        .iter()
        .zip(&plan.reads)
        .map(|(&axis, &reads)| {
            let (m, counts) = maps.get(axis);
            m.source
                .iter()
                .enumerate()
                .map(|(j, s)| s.map(|i| (i, if reads { 1.0 / counts[i] as f32 } else { 1.0 }, j >= counts.len())))
                .collect()
        })
        .collect();
    match shape.len() {
        1 => {
            for (j, e) in per_axis[0].iter().enumerate() {
                if let Some((i, s, new)) = e {
                    let from = upper.filter(|_| *new).unwrap_or(src);
                    out.values[j] = from.values[*i] * s.powi(power);
                }
            }
        }
        2 => {
            let (cols, scols) = (shape[1], src.shape[1]);
            for (r, er) in per_axis[0].iter().enumerate() {
                let Some((ri, rs, rnew)) = er else { continue };
                for (c, ec) in per_axis[1].iter().enumerate() {
                    if let Some((ci, cs, cnew)) = ec {
                        let from = upper.filter(|_| *rnew || *cnew).unwrap_or(src);
                        out.values[r * cols + c] = from.values[ri * scols + ci] * (rs * cs).powi(power);
                    }
                }
            }
        }
        n => unreachable!("growlm models have only 1-D and 2-D parameters, got rank {n}"),
    }
    out
}

/// The per-tensor plans for growing `source` into `target` with `op`, with the layer
/// origins: one plan per entry of the target's parameter table
/// ([`GptConfig::param_specs`]), the source read through the same path in the layer the
/// depth operator says the target layer comes from.
pub fn plan(
    source: &GptConfig,
    target: &GptConfig,
    op: &GrowthConfig,
) -> Result<(Vec<TensorPlan>, Vec<LayerOrigin>), OpsError> {
    check_growth(source, target, op)?;
    let (width, depth) = op.operators();
    let layers = depth.layers(source, target)?;
    let top = source.n_layers - 1;
    let mut plans: Vec<TensorPlan> = Vec::new();
    for spec in target.param_specs() {
        let plan = |source: Option<String>, rest: Fill| TensorPlan {
            target: spec.path.clone(),
            source,
            upper: None,
            axes: spec.axes.clone(),
            reads: spec.reads.clone(),
            rest,
        };
        let Some(j) = spec.layer else {
            // Embeddings and the final LayerNorm: copied.
            plans.push(plan(Some(spec.path.clone()), Fill::Fresh));
            continue;
        };
        // Which source layer the weights come from, and the fill of LayerNorm and biases
        // when they are not copied.
        let (weights_from, zeroed) = match layers[j] {
            LayerOrigin::Copy(i) => (Some(i), None),
            LayerOrigin::Redundant(i) => (Some(i), Some(Fill::Zero)),
            LayerOrigin::Identity => (None, Some(Fill::Zero)),
            LayerOrigin::Random => (None, None),
            LayerOrigin::Expanded(i) => (Some(i), None),
        };
        let writes_residual = matches!(spec.module, "attn.out" | "mlp.down");
        let src = weights_from.map(|i| format!("blocks.{i}.{}.{}", spec.module, spec.leaf));
        let mut p = match (spec.role, zeroed) {
            // An expanded layer's output projections: zero.
            _ if matches!(layers[j], LayerOrigin::Expanded(_)) && writes_residual => plan(None, Fill::Zero),
            // LayerNorm and biases: copied from a copied layer, else zero or fresh.
            (Role::Norm | Role::Bias, Some(fill)) => plan(None, fill),
            _ => plan(src, Fill::Fresh),
        };
        if let Some(i) = weights_from.filter(|_| width.reads_layer_above()) {
            // New units of layer i read layer i + 1 (the top layer reads itself).
            let (own, above) = (format!("blocks.{i}."), format!("blocks.{}.", (i + 1).min(top)));
            p.upper = p.source.as_ref().map(|s| s.replacen(&own, &above, 1));
        }
        plans.push(p);
    }
    Ok((plans, layers))
}
