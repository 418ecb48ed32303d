//! The growth operator: redundant layers for depth (paper §3.4) and copy-into-leading-block
//! for width (§3.3, with the mask ramp of [`crate::Ramp`]), both at once (§3.5), applied to
//! the parameters and to AdamW's moments.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::record::AdaptorRecord;
use burn::optim::AdaptiveMomentumState;
use burn::optim::{AdamW, AdamWState, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use growlm_model::{Gpt, GptConfig};
use serde::{Deserialize, Serialize};

use crate::plan::{apply, Fill, HostTensor, TensorPlan};
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

/// A parameter read off a model: its id and host value, by path.
pub type NamedParams = HashMap<String, (ParamId, HostTensor)>;

struct Collect {
    path: Vec<String>,
    out: NamedParams,
}

impl<B: Backend> ModuleVisitor<B> for Collect {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.out.insert(self.path.join("."), (param.id, to_host(param.val())));
    }
}

/// Reads every float parameter of `module` with its path.
pub fn named_params<B: Backend, M: Module<B>>(module: &M) -> NamedParams {
    let mut c = Collect {
        path: Vec::new(),
        out: HashMap::new(),
    };
    module.visit(&mut c);
    c.out
}

struct Assign<'a> {
    path: Vec<String>,
    values: &'a HashMap<String, HostTensor>,
}

impl<B: Backend> ModuleMapper<B> for Assign<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let Some(v) = self.values.get(&self.path.join(".")) else {
            return param;
        };
        let (id, tensor, _) = param.consume();
        let device = tensor.device();
        let t = Tensor::<B, D>::from_data(TensorData::new(v.values.clone(), v.shape.clone()), &device);
        Param::initialized(id, t.require_grad())
    }
}

/// Replaces the values of `module`'s parameters named in `values`, keeping their ids.
pub fn assign_params<B: Backend, M: Module<B>>(module: M, values: &HashMap<String, HostTensor>) -> M {
    module.map(&mut Assign {
        path: Vec::new(),
        values,
    })
}

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
    /// What happened.
    pub report: GrowthReport,
}

/// Grows `model` (config `source`) into `target` with `op`, mapping the optimizer state
/// by the same per-tensor plan. New parameters are drawn from a target model initialised
/// with `seed`; new moment entries are zero; the step count carries over.
pub fn grow<B: AutodiffBackend>(
    source: &GptConfig,
    model: &Gpt<B>,
    optim: &OptimizerAdaptor<AdamW, Gpt<B>, B>,
    fresh_optim: OptimizerAdaptor<AdamW, Gpt<B>, B>,
    target: &GptConfig,
    op: &GrowthConfig,
    seed: u64,
) -> Result<Grown<B>, OpsError> {
    let plans = plan(source, target, op)?;
    let device = model.wte.val().device();
    let src = named_params::<B, _>(model);
    let fresh_model = target.init::<B>(seed, &device).map_err(OpsError::Model)?;
    let fresh = named_params::<B, _>(&fresh_model);
    let lookup = |map: &NamedParams, path: &str| {
        map.get(path)
            .cloned()
            .ok_or_else(|| OpsError::Incompatible(format!("model has no parameter `{path}`")))
    };
    let mut values = HashMap::new();
    for p in &plans {
        let (_, f) = lookup(&fresh, &p.target)?;
        let s = match &p.source {
            Some(path) => Some(lookup(&src, path)?.1),
            None => None,
        };
        values.insert(p.target.clone(), apply(&f.shape, p, Some(&f), s.as_ref()));
    }
    let grown = assign_params::<B, _>(fresh_model, &values);

    // The optimizer state follows the parameters.
    let record = optim.to_record();
    let time = src
        .get("wte")
        .and_then(|(id, _)| record.get(id))
        .map(|r| moment_time::<B>(r.clone()))
        .unwrap_or(0);
    let mut new_record = fresh_optim.to_record();
    for p in &plans {
        let (new_id, f) = lookup(&fresh, &p.target)?;
        let src_state = p
            .source
            .as_ref()
            .and_then(|path| src.get(path))
            .and_then(|(id, _)| record.get(id).cloned());
        let moments = src_state.map(|r| host_moments::<B>(r, f.shape.len()));
        let zero_plan = TensorPlan {
            rest: Fill::Zero,
            ..p.clone()
        };
        let m1 = apply(&f.shape, &zero_plan, None, moments.as_ref().map(|m| &m.0));
        let m2 = apply(&f.shape, &zero_plan, None, moments.as_ref().map(|m| &m.1));
        new_record.insert(new_id, adaptor_record::<B>(m1, m2, time, &device));
    }
    let optim = fresh_optim.load_record(new_record);
    Ok(Grown {
        model: grown,
        optim,
        report: GrowthReport {
            params_before: source.num_params(),
            params_after: target.num_params(),
            layers: layer_map(source.n_layers, target.n_layers, op.depth),
            operator: op.describe(),
        },
    })
}

type Record<B> = AdaptorRecord<AdamW, B>;

/// Step count of a rank-2 parameter's AdamW state.
fn moment_time<B: AutodiffBackend>(r: Record<B>) -> usize {
    let s: AdamWState<B::InnerBackend, 2> = r.into_state();
    s.momentum.time
}

fn to_host<B: Backend, const D: usize>(t: Tensor<B, D>) -> HostTensor {
    let shape = t.dims().to_vec();
    HostTensor {
        shape,
        values: t.into_data().convert::<f32>().to_vec::<f32>().expect("f32 data"),
    }
}

/// Reads AdamW's first and second moments from an optimizer record entry.
pub fn host_moments<B: AutodiffBackend>(r: Record<B>, rank: usize) -> (HostTensor, HostTensor) {
    if rank == 1 {
        let s: AdamWState<B::InnerBackend, 1> = r.into_state();
        (to_host(s.momentum.moment_1), to_host(s.momentum.moment_2))
    } else {
        let s: AdamWState<B::InnerBackend, 2> = r.into_state();
        (to_host(s.momentum.moment_1), to_host(s.momentum.moment_2))
    }
}

fn adaptor_record<B: AutodiffBackend>(m1: HostTensor, m2: HostTensor, time: usize, device: &B::Device) -> Record<B> {
    fn state<B: Backend, const D: usize>(
        m1: HostTensor,
        m2: HostTensor,
        time: usize,
        device: &B::Device,
    ) -> AdamWState<B, D> {
        let t = |h: HostTensor| Tensor::<B, D>::from_data(TensorData::new(h.values, h.shape), device);
        AdamWState {
            momentum: AdaptiveMomentumState {
                time,
                moment_1: t(m1),
                moment_2: t(m2),
                max_moment_2: None,
            },
        }
    }
    if m1.shape.len() == 1 {
        AdaptorRecord::from_state(state::<B::InnerBackend, 1>(m1, m2, time, device))
    } else {
        AdaptorRecord::from_state(state::<B::InnerBackend, 2>(m1, m2, time, device))
    }
}
