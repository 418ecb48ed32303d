//! Fused CPU kernels for growlm's default backend, burn-flex: causal self-attention and
//! softmax cross-entropy, each one kernel forward and one backward, as custom autodiff ops
//! (burn's backend-extension route: a forward on the inner backend and a [`Backward`] step
//! on `Autodiff<Flex>`).
//!
//! The model calls [`attention`] and [`cross_entropy`] for any backend; they return the
//! inputs back (`Err`) when the backend is not burn-flex (plain or under autodiff) or the
//! dtype is not f32, and the model then takes its decomposed path. So CUDA, ndarray and
//! mixed precision compute exactly as before.
//!
//! Paper: the attention of eq. 4 and the loss of §3.2's training objective; DESIGN.md
//! §Backends.

#![warn(missing_docs)]

pub mod attention;
pub mod entropy;
pub mod norm;
pub mod simd;

use std::any::{Any, TypeId};

use burn::tensor::ops::FloatTensor;
use burn::tensor::{backend::Backend, DType, Int, Shape, Tensor, TensorData, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

pub use attention::{AttentionPattern, AttentionShape};

/// The autodiff backend the fused ops differentiate.
type Ad = Autodiff<Flex>;

/// Moves `slot`'s value out as a `T` when its type is `T`; leaves it otherwise.
fn take_as<S: 'static, T: 'static>(slot: &mut Option<S>) -> Option<T> {
    (slot as &mut dyn Any).downcast_mut::<Option<T>>().and_then(Option::take)
}

fn is<B: 'static, T: 'static>() -> bool {
    TypeId::of::<B>() == TypeId::of::<T>()
}

/// Whether the fused kernels serve backend `B`: burn-flex, plain or under autodiff, unless
/// they are switched off ([`enabled`]).
pub fn serves<B: Backend>() -> bool {
    (is::<B, Flex>() || is::<B, Ad>()) && enabled()
}

/// The environment variable that switches the fused kernels off (`GROWLM_FUSED=off`):
/// every backend then takes the decomposed path, for a side-by-side comparison or to rule
/// the kernels out when chasing a difference. Read once per process.
pub const SWITCH: &str = "GROWLM_FUSED";

thread_local! {
    static OFF_HERE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the fused kernels off on this thread: every op `f` calls takes the
/// decomposed path (for comparing the two paths in one process).
pub fn decomposed<R>(f: impl FnOnce() -> R) -> R {
    let before = OFF_HERE.with(|c| c.replace(true));
    let out = f();
    OFF_HERE.with(|c| c.set(before));
    out
}

/// Whether the fused kernels are on: unless [`SWITCH`] is `off`, `0` or `false`, or this
/// thread is inside [`decomposed`].
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    !OFF_HERE.with(|c| c.get()) && *ON.get_or_init(|| {
        !std::env::var(SWITCH).is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "off" | "0" | "false"))
    })
}

fn from_vec(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}

/// A contiguous copy when needed; `None` when the tensor is not f32.
fn contiguous(t: &FlexTensor) -> Option<FlexTensor> {
    (t.dtype() == DType::F32).then(|| t.to_contiguous())
}

fn slice(t: &FlexTensor) -> &[f32] {
    // `contiguous` made every tensor reaching here a dense f32 buffer.
    t.as_slice::<f32>().unwrap_or(&[])
}

fn float<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

fn wrap<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

// ---------------------------------------------------------------------------------------
// Attention

/// Saved for the attention backward step: the inputs and each row's log-sum-exp.
#[derive(Debug, Clone)]
struct AttentionState {
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
    lse: FlexTensor,
    shape: AttentionShape,
    pattern: AttentionPattern,
}

#[derive(Debug)]
struct AttentionBackward;

impl Backward<Flex, 3> for AttentionBackward {
    type State = AttentionState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let s = ops.state;
        let dy = grads.consume::<Flex>(&ops.node);
        let dy = dy.to_contiguous();
        let n = s.shape.len();
        let (mut dq, mut dk, mut dv) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
        attention::backward(
            slice(&s.q),
            slice(&s.k),
            slice(&s.v),
            slice(&dy),
            slice(&s.lse),
            s.shape,
            s.pattern,
            [&mut dq, &mut dk, &mut dv],
        );
        let dims = [s.shape.batch, s.shape.seq, s.shape.heads * s.shape.head_dim];
        let [nq, nk, nv] = ops.parents;
        for (node, g) in [(nq, dq), (nk, dk), (nv, dv)] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, from_vec(g, dims));
            }
        }
    }
}

/// The forward kernel on burn-flex tensors: the output and the log-sum-exp.
fn attention_flex(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    shape: AttentionShape,
    pattern: AttentionPattern,
) -> (FlexTensor, FlexTensor) {
    let mut out = vec![0.0f32; shape.len()];
    let mut lse = vec![0.0f32; shape.rows()];
    attention::forward(slice(q), slice(k), slice(v), shape, pattern, &mut out, &mut lse);
    (
        from_vec(out, [shape.batch, shape.seq, shape.heads * shape.head_dim]),
        from_vec(lse, [shape.batch, shape.heads, shape.seq]),
    )
}

/// Causal multi-head self-attention of `q, k, v: [batch, seq, heads·head_dim]` (heads
/// side by side in the last dim, as the projections give them) → `[batch, seq,
/// heads·head_dim]`, fused, with its own backward under autodiff.
///
/// `Err` gives the inputs back when the backend is not served ([`serves`]), a tensor is not
/// f32, the shapes disagree or `heads` does not divide the last dim: the caller then takes
/// the decomposed path.
#[allow(clippy::type_complexity)]
pub fn attention<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    heads: usize,
    pattern: AttentionPattern,
) -> Result<Tensor<B, 3>, (Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 3>)> {
    let [b, t, a] = q.dims();
    let fits = serves::<B>()
        && heads > 0
        && a % heads == 0
        && k.dims() == [b, t, a]
        && v.dims() == [b, t, a]
        && [&q, &k, &v].iter().all(|x| x.dtype() == DType::F32);
    if !fits {
        return Err((q, k, v));
    }
    let shape = AttentionShape {
        batch: b,
        seq: t,
        heads,
        head_dim: a / heads,
    };
    let (mut sq, mut sk, mut sv) = (Some(q), Some(k), Some(v));
    if let (Some(q), Some(k), Some(v)) = (
        take_as::<_, Tensor<Flex, 3>>(&mut sq),
        take_as::<_, Tensor<Flex, 3>>(&mut sk),
        take_as::<_, Tensor<Flex, 3>>(&mut sv),
    ) {
        let [q, k, v] = [q, k, v].map(|x| contiguous(&float(x)));
        if let (Some(q), Some(k), Some(v)) = (q, k, v) {
            let out = wrap::<Flex, 3>(attention_flex(&q, &k, &v, shape, pattern).0);
            return Ok(take_as(&mut Some(out)).expect("B is Flex"));
        }
    }
    if let (Some(q), Some(k), Some(v)) = (
        take_as::<_, Tensor<Ad, 3>>(&mut sq),
        take_as::<_, Tensor<Ad, 3>>(&mut sk),
        take_as::<_, Tensor<Ad, 3>>(&mut sv),
    ) {
        let out = wrap::<Ad, 3>(attention_autodiff(float(q), float(k), float(v), shape, pattern));
        return Ok(take_as(&mut Some(out)).expect("B is Autodiff<Flex>"));
    }
    match (sq, sk, sv) {
        (Some(q), Some(k), Some(v)) => Err((q, k, v)),
        // `serves::<B>()` held, so one of the two branches above took all three.
        _ => unreachable!("fused attention: inputs taken but not served"),
    }
}

type AdPrimitive = FloatTensor<Ad>;

fn attention_autodiff(
    q: AdPrimitive,
    k: AdPrimitive,
    v: AdPrimitive,
    shape: AttentionShape,
    pattern: AttentionPattern,
) -> AdPrimitive {
    let (cq, ck, cv) = (q.primitive.to_contiguous(), k.primitive.to_contiguous(), v.primitive.to_contiguous());
    match AttentionBackward
        .prepare::<NoCheckpointing>([q.node.clone(), k.node.clone(), v.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (out, lse) = attention_flex(&cq, &ck, &cv, shape, pattern);
            let state = AttentionState {
                q: cq,
                k: ck,
                v: cv,
                lse,
                shape,
                pattern,
            };
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(attention_flex(&cq, &ck, &cv, shape, pattern).0),
    }
}

// ---------------------------------------------------------------------------------------
// GELU

/// Elements per rayon task of an element-wise kernel.
const ELEMENTS_PER_TASK: usize = 1 << 14;

fn gelu_values(x: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    y.par_chunks_mut(ELEMENTS_PER_TASK)
        .zip(x.par_chunks(ELEMENTS_PER_TASK))
        .for_each(|(y, x)| simd::gelu(x, y));
    y
}

#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let Some(node) = &ops.parents[0] else { return };
        let shape = x.layout().shape().clone();
        let mut g = dy.into_data().into_vec::<f32>().unwrap_or_default();
        g.par_chunks_mut(ELEMENTS_PER_TASK)
            .zip(slice(&x).par_chunks(ELEMENTS_PER_TASK))
            .for_each(|(g, x)| simd::gelu_backward(x, g));
        grads.register::<Flex>(node.id, from_vec(g, shape));
    }
}

/// GPT-Neo's tanh GELU (`gelu_new`), element-wise, fused into one pass forward and one
/// backward, with its own backward under autodiff. `Err` gives the input back when the
/// backend is not served ([`serves`]) or the tensor is not f32.
pub fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Result<Tensor<B, D>, Tensor<B, D>> {
    if !serves::<B>() || x.dtype() != DType::F32 {
        return Err(x);
    }
    let dims = x.dims();
    let mut slot = Some(x);
    if let Some(x) = take_as::<_, Tensor<Flex, D>>(&mut slot) {
        let x = float(x).to_contiguous();
        let out = wrap::<Flex, D>(from_vec(gelu_values(slice(&x)), dims));
        return Ok(take_as(&mut Some(out)).expect("B is Flex"));
    }
    if let Some(x) = take_as::<_, Tensor<Ad, D>>(&mut slot) {
        let x = float(x);
        let c = x.primitive.to_contiguous();
        let out = from_vec(gelu_values(slice(&c)), dims);
        let out = match GeluBackward.prepare::<NoCheckpointing>([x.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(c, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        return Ok(take_as(&mut Some(wrap::<Ad, D>(out))).expect("B is Autodiff<Flex>"));
    }
    match slot {
        Some(x) => Err(x),
        None => unreachable!("fused GELU: input taken but not served"),
    }
}

// ---------------------------------------------------------------------------------------
// LayerNorm

/// Saved for the LayerNorm backward step: the input, the scale and each row's statistics.
#[derive(Debug, Clone)]
struct NormState {
    x: FlexTensor,
    gamma: FlexTensor,
    mean: Vec<f32>,
    rstd: Vec<f32>,
}

#[derive(Debug)]
struct NormBackward;

impl Backward<Flex, 3> for NormBackward {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let s = ops.state;
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let shape = s.x.layout().shape().clone();
        let d = s.gamma.layout().shape().num_elements();
        let mut dx = dy.into_data().into_vec::<f32>().unwrap_or_default();
        let (dgamma, dbeta) = norm::backward(slice(&s.x), slice(&s.gamma), &s.mean, &s.rstd, &mut dx);
        let [nx, ng, nb] = ops.parents;
        if let Some(node) = nx {
            grads.register::<Flex>(node.id, from_vec(dx, shape));
        }
        if let Some(node) = ng {
            grads.register::<Flex>(node.id, from_vec(dgamma, [d]));
        }
        if let Some(node) = nb {
            grads.register::<Flex>(node.id, from_vec(dbeta, [d]));
        }
    }
}

fn norm_flex(x: &FlexTensor, gamma: &FlexTensor, beta: &FlexTensor, eps: f32) -> (FlexTensor, Vec<f32>, Vec<f32>) {
    let mut y = vec![0.0f32; x.layout().shape().num_elements()];
    let (mean, rstd) = norm::forward(slice(x), slice(gamma), slice(beta), eps, &mut y);
    (from_vec(y, x.layout().shape().clone()), mean, rstd)
}

/// LayerNorm of `x: [..., d]` over its last dim with scale `gamma: [d]` and shift
/// `beta: [d]` (biased variance, `eps` inside the root), fused, with its own backward
/// under autodiff. `Err` gives the inputs back when the backend is not served
/// ([`serves`]), a tensor is not f32 or the shapes disagree.
#[allow(clippy::type_complexity)]
pub fn layer_norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    eps: f64,
) -> Result<Tensor<B, D>, (Tensor<B, D>, Tensor<B, 1>, Tensor<B, 1>)> {
    let d = x.dims()[D - 1];
    let fits = serves::<B>()
        && d > 0
        && gamma.dims() == [d]
        && beta.dims() == [d]
        && [x.dtype(), gamma.dtype(), beta.dtype()].iter().all(|t| *t == DType::F32);
    if !fits {
        return Err((x, gamma, beta));
    }
    let eps = eps as f32;
    let (mut sx, mut sg, mut sb) = (Some(x), Some(gamma), Some(beta));
    if let (Some(x), Some(g), Some(b)) = (
        take_as::<_, Tensor<Flex, D>>(&mut sx),
        take_as::<_, Tensor<Flex, 1>>(&mut sg),
        take_as::<_, Tensor<Flex, 1>>(&mut sb),
    ) {
        let (x, g, b) = (float(x).to_contiguous(), float(g).to_contiguous(), float(b).to_contiguous());
        let out = wrap::<Flex, D>(norm_flex(&x, &g, &b, eps).0);
        return Ok(take_as(&mut Some(out)).expect("B is Flex"));
    }
    if let (Some(x), Some(g), Some(b)) = (
        take_as::<_, Tensor<Ad, D>>(&mut sx),
        take_as::<_, Tensor<Ad, 1>>(&mut sg),
        take_as::<_, Tensor<Ad, 1>>(&mut sb),
    ) {
        let (x, g, b) = (float(x), float(g), float(b));
        let (cx, cg, cb) = (x.primitive.to_contiguous(), g.primitive.to_contiguous(), b.primitive.to_contiguous());
        let (y, mean, rstd) = norm_flex(&cx, &cg, &cb, eps);
        let out = match NormBackward
            .prepare::<NoCheckpointing>([x.node.clone(), g.node.clone(), b.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(NormState { x: cx, gamma: cg, mean, rstd }, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        return Ok(take_as(&mut Some(wrap::<Ad, D>(out))).expect("B is Autodiff<Flex>"));
    }
    match (sx, sg, sb) {
        (Some(x), Some(g), Some(b)) => Err((x, g, b)),
        _ => unreachable!("fused LayerNorm: inputs taken but not served"),
    }
}

// ---------------------------------------------------------------------------------------
// Cross-entropy

/// Saved for the cross-entropy backward step: the logits, the targets and each row's
/// log-sum-exp (no probabilities).
#[derive(Debug, Clone)]
struct EntropyState {
    logits: FlexTensor,
    targets: Vec<i64>,
    lse: Vec<f32>,
    vocab: usize,
}

#[derive(Debug)]
struct EntropyBackward;

impl Backward<Flex, 1> for EntropyBackward {
    type State = EntropyState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let EntropyState {
            logits,
            targets,
            lse,
            vocab,
        } = ops.state;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let g = slice(&grad).first().copied().unwrap_or(0.0);
        let Some(node) = &ops.parents[0] else { return };
        let shape = logits.layout().shape().clone();
        // The gradient overwrites the saved logits: in place when this step holds the only
        // reference, else in a copy.
        let mut values = logits.into_data().into_vec::<f32>().unwrap_or_default();
        entropy::backward_in_place(&mut values, vocab, &targets, &lse, g);
        grads.register::<Flex>(node.id, from_vec(values, shape));
    }
}

/// Mean next-token cross-entropy of `logits: [rows, vocab]` against `targets: [rows]` →
/// `[1]`, fused, with its own backward under autodiff.
///
/// `Err` gives the inputs back when the backend is not served ([`serves`]), the logits are
/// not f32, the shapes disagree, or a target is outside the vocabulary (the decomposed
/// path then reports it as it always has).
#[allow(clippy::type_complexity)]
pub fn cross_entropy<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
) -> Result<Tensor<B, 1>, (Tensor<B, 2>, Tensor<B, 1, Int>)> {
    let [rows, vocab] = logits.dims();
    if !serves::<B>() || logits.dtype() != DType::F32 || targets.dims() != [rows] || rows == 0 {
        return Err((logits, targets));
    }
    let ids: Vec<i64> = targets.to_data().iter::<i64>().collect();
    if entropy::check_targets(&ids, vocab).is_err() {
        return Err((logits, targets));
    }
    let mut slot = Some(logits);
    if let Some(l) = take_as::<_, Tensor<Flex, 2>>(&mut slot) {
        let x = l.into_primitive().tensor().to_contiguous();
        let (loss, _) = entropy::forward(slice(&x), vocab, &ids);
        let out = wrap::<Flex, 1>(from_vec(vec![loss], [1]));
        return Ok(take_as(&mut Some(out)).expect("B is Flex"));
    }
    if let Some(l) = take_as::<_, Tensor<Ad, 2>>(&mut slot) {
        let out = wrap::<Ad, 1>(entropy_autodiff(float(l), ids, vocab));
        return Ok(take_as(&mut Some(out)).expect("B is Autodiff<Flex>"));
    }
    match slot {
        Some(l) => Err((l, targets)),
        None => unreachable!("fused cross-entropy: logits taken but not served"),
    }
}

fn entropy_autodiff(logits: AdPrimitive, targets: Vec<i64>, vocab: usize) -> AdPrimitive {
    let x = logits.primitive.to_contiguous();
    let (loss, lse) = entropy::forward(slice(&x), vocab, &targets);
    let out = from_vec(vec![loss], [1]);
    match EntropyBackward
        .prepare::<NoCheckpointing>([logits.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(
            EntropyState {
                logits: x,
                targets,
                lse,
                vocab,
            },
            out,
        ),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}
