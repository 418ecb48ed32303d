//! The growth itself (paper §3.3–3.5): build the target, fill it by the per-tensor plan,
//! move the optimizer state by the same plan, and hand back the width ramp.

use std::collections::HashMap;

use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::AdamW;
use burn::tensor::backend::AutodiffBackend;
use growlm_model::{ActiveWidth, Gpt, GptConfig};
use serde::Serialize;

use crate::moments::map_optimizer;
use crate::operator::{GrowthConfig, LayerOrigin};
use crate::plan::{apply, plan, WidthMaps};
use crate::{OpsError, Ramp};
use growlm_model::{assign_params, named_params, HostTensor, NamedParams};

/// What a growth did, for logs and events.
#[derive(Debug, Clone, Serialize)]
pub struct GrowthReport {
    /// Parameters before.
    pub params_before: usize,
    /// Parameters after.
    pub params_after: usize,
    /// Origin of each target layer.
    pub layers: Vec<LayerOrigin>,
    /// The operator, e.g. `pdg(ramp=100)+redundant`.
    pub operator: String,
}

/// A grown model with its optimizer.
pub struct Grown<B: AutodiffBackend> {
    /// The target model (its new width still to be masked by the ramp).
    pub model: Gpt<B>,
    /// AdamW with the moments mapped by the same plan.
    pub optim: OptimizerAdaptor<AdamW, Gpt<B>, B>,
    /// The width ramp to mask the new width with from `Gb` on (eq. 5–7).
    pub ramp: Ramp,
    /// What happened.
    pub report: GrowthReport,
}

/// Grows `model` (config `source`) into `target` with `op`, mapping the optimizer state
/// by the same per-tensor plan. New parameters are drawn from a target model initialised
/// with `seed`; new moment entries are zero; the step count carries over. `step` is `Gb`,
/// the steps completed when it grows; the returned ramp starts there, from `active`: the
/// source's active width if it is itself mid-ramp (`None`: all of it), so that a growth
/// during a ramp still preserves the function.
#[allow(clippy::too_many_arguments)]
pub fn grow<B: AutodiffBackend>(
    source: &GptConfig,
    model: &Gpt<B>,
    optim: &OptimizerAdaptor<AdamW, Gpt<B>, B>,
    fresh_optim: OptimizerAdaptor<AdamW, Gpt<B>, B>,
    target: &GptConfig,
    op: &GrowthConfig,
    seed: u64,
    step: u64,
    active: Option<ActiveWidth>,
) -> Result<Grown<B>, OpsError> {
    let (plans, layers) = plan(source, target, op)?;
    let maps = WidthMaps::new(source, target, op)?;
    let device = model.wte.val().device();
    let src = named_params::<B, _>(model);
    let fresh_model = target.init::<B>(seed, &device).map_err(OpsError::Model)?;
    let fresh = named_params::<B, _>(&fresh_model);
    fn lookup<'m>(map: &'m NamedParams, path: &str) -> Result<&'m HostTensor, OpsError> {
        map.get(path)
            .map(|(_, t)| t)
            .ok_or_else(|| OpsError::Incompatible(format!("model has no parameter `{path}`")))
    }
    let mut values = HashMap::new();
    for p in &plans {
        let f = lookup(&fresh, &p.target)?;
        let read = |path: &Option<String>| path.as_deref().map(|p| lookup(&src, p)).transpose();
        let (s, up) = (read(&p.source)?, read(&p.upper)?);
        values.insert(p.target.clone(), apply(&f.shape, p, &maps, Some(f), s, up, 1));
    }
    let grown = assign_params::<B, _>(fresh_model, &values);

    // The optimizer state follows the parameters, by the same plans.
    let optim = map_optimizer::<B>(&plans, &maps, &src, &fresh, optim, fresh_optim, &device)?;
    let mut ramp = Ramp::from_active(
        active.unwrap_or_else(|| ActiveWidth::full(source)),
        target,
        step,
        op.effective_ramp(),
    );
    let (w, d) = op.operators();
    ramp.op = Some(op.width);
    let ramp = w.start_ramp(ramp, &layers, &*d);
    Ok(Grown {
        model: grown,
        optim,
        ramp,
        report: GrowthReport {
            params_before: source.num_params(),
            params_after: target.num_params(),
            layers,
            operator: op.describe(),
        },
    })
}
