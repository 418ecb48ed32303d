//! The growth itself (paper §3.3–3.5): build the target, fill it by the per-tensor plan,
//! move the optimizer state by the same plan, and hand back the width ramp.

use std::collections::HashMap;

use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::AdamW;
use burn::tensor::backend::AutodiffBackend;
use growlm_model::{ActiveWidth, Gpt, GptConfig};
use serde::Serialize;

use crate::moments::map_optimizer;
use crate::operator::LayerOrigin;
use crate::plan::{apply, plan, WidthMaps};
use crate::GrowthConfig;
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

/// One growth (paper §3.3–3.4): `source` into `target` by the operators `op`, new
/// parameters drawn from a target model initialised with `seed`, at step `step` (`Gb`, the
/// steps completed when it grows), from the source's active width `active` (`None`: all of
/// it; set when the source is itself mid-ramp, so that the growth still preserves the
/// function).
#[derive(Debug, Clone, Copy)]
pub struct Growth<'a> {
    /// The model's config now.
    pub source: &'a GptConfig,
    /// The config to grow into.
    pub target: &'a GptConfig,
    /// The width and depth operators and the ramp.
    pub op: &'a GrowthConfig,
    /// Seed of the new parameters.
    pub seed: u64,
    /// Steps completed when it grows; the returned ramp starts there.
    pub step: u64,
    /// The source's active width, if it is mid-ramp.
    pub active: Option<ActiveWidth>,
}

impl<'a> Growth<'a> {
    /// A growth at step 0 of a model with all of its width active (offline, as `cargo
    /// xtask grow` does, or in a test).
    pub fn new(source: &'a GptConfig, target: &'a GptConfig, op: &'a GrowthConfig, seed: u64) -> Self {
        Self {
            source,
            target,
            op,
            seed,
            step: 0,
            active: None,
        }
    }

    /// Grows `model` and maps `optim`'s state into `fresh_optim` by the same per-tensor
    /// plan: new moment entries are zero and the step count carries over.
    pub fn apply<B: AutodiffBackend>(
        &self,
        model: &Gpt<B>,
        optim: &OptimizerAdaptor<AdamW, Gpt<B>, B>,
        fresh_optim: OptimizerAdaptor<AdamW, Gpt<B>, B>,
    ) -> Result<Grown<B>, OpsError> {
        let Growth {
            source,
            target,
            op,
            seed,
            step,
            active,
        } = *self;
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
}
