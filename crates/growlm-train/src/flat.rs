//! One all-reduce per step (docs/training.md §Data parallelism): a peer's gradients are
//! laid end to end in one buffer, in the order the model visits its parameters (its field
//! order, the same in every process), reduced with one call of burn-collective's
//! `all_reduce`, and cut back into the parameters.
//!
//! burn's own `GradientsParams::all_reduce` runs one round per parameter and pairs the
//! peers' parameters by sorting their `ParamId`s, which are random per process: across
//! processes it would reduce different parameters into each other. The buffer's order
//! depends on the model's structure alone.

use burn::collective::{self, PeerId, ReduceOperation};
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use growlm_model::Gpt;

/// Takes the gradients out of `grads`, in visiting order, as flat pieces.
struct Gather<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    pieces: Vec<Tensor<B::InnerBackend, 1>>,
    shapes: Vec<(ParamId, Vec<usize>)>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Gather<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            let dims = g.dims().to_vec();
            let n = dims.iter().product::<usize>();
            self.pieces.push(g.reshape([n]));
            self.shapes.push((param.id, dims));
        }
    }
}

/// Puts the reduced pieces back, in the same order.
struct Scatter<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    flat: Tensor<B::InnerBackend, 1>,
    shapes: std::slice::Iter<'a, (ParamId, Vec<usize>)>,
    at: usize,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scatter<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let Some((id, dims)) = self.shapes.as_slice().first() else {
            return;
        };
        if *id != param.id {
            return;
        }
        self.shapes.next();
        let n = dims.iter().product::<usize>();
        let piece = self.flat.clone().slice(self.at..self.at + n);
        self.at += n;
        let shape: [usize; D] = dims
            .as_slice()
            .try_into()
            .expect("the rank the parameter was gathered with");
        self.grads
            .register::<B::InnerBackend, D>(param.id, piece.reshape(shape));
    }
}

/// The gradients of `model` in `grads` laid end to end, in the model's visiting order,
/// with what [`unflatten`] needs to put them back.
pub(crate) fn flatten<B: AutodiffBackend>(
    model: &Gpt<B>,
    mut grads: GradientsParams,
) -> (Tensor<B::InnerBackend, 1>, Vec<(ParamId, Vec<usize>)>) {
    let mut gather = Gather::<B> {
        grads: &mut grads,
        pieces: Vec::new(),
        shapes: Vec::new(),
    };
    model.visit(&mut gather);
    let Gather { pieces, shapes, .. } = gather;
    (Tensor::cat(pieces, 0), shapes)
}

/// The gradients of `flat` put back on `model`'s parameters.
pub(crate) fn unflatten<B: AutodiffBackend>(
    model: &Gpt<B>,
    flat: Tensor<B::InnerBackend, 1>,
    shapes: &[(ParamId, Vec<usize>)],
) -> GradientsParams {
    let mut grads = GradientsParams::new();
    let mut scatter = Scatter::<B> {
        grads: &mut grads,
        flat,
        shapes: shapes.iter(),
        at: 0,
    };
    model.visit(&mut scatter);
    grads
}

/// `grads` averaged over the collective's peers with one all-reduce of one buffer, and
/// the mean of `extra` (values each peer adds, such as its loss) over the peers.
pub(crate) fn all_reduce_mean<B: AutodiffBackend>(
    model: &Gpt<B>,
    grads: GradientsParams,
    extra: &[f32],
    peer: PeerId,
) -> Result<(GradientsParams, Vec<f32>), collective::CollectiveError> {
    let (flat, shapes) = flatten(model, grads);
    let n = flat.dims()[0];
    let device = flat.device();
    let tail = Tensor::<B::InnerBackend, 1>::from_floats(extra, &device);
    let buffer = Tensor::cat(vec![flat, tail], 0);
    let reduced =
        collective::all_reduce::<B::InnerBackend>(peer, buffer.into_primitive().tensor(), ReduceOperation::Mean)?;
    let reduced = Tensor::<B::InnerBackend, 1>::from_primitive(burn::tensor::TensorPrimitive::Float(reduced));
    let means = reduced
        .clone()
        .slice(n..n + extra.len())
        .into_data()
        .to_vec::<f32>()
        .unwrap_or_default();
    Ok((unflatten(model, reduced.slice(0..n), &shapes), means))
}

/// SHA-256 of every parameter's values in the model's order: processes of one run compare
/// it at the start (the same seed gives the same initialisation).
pub(crate) fn param_hash<B: AutodiffBackend>(model: &Gpt<B>) -> String {
    use sha2::Digest;
    struct Hash(sha2::Sha256);
    impl<B: AutodiffBackend> ModuleVisitor<B> for Hash {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let data = param.val().into_data();
            self.0.update(data.as_bytes());
        }
    }
    let mut h = Hash(sha2::Sha256::new());
    model.visit(&mut h);
    hex::encode(h.0.finalize())
}
