//! The fused GELU (`gelu_new`) as a custom autodiff op on `Autodiff<Flex>`.

use burn::tensor::{backend::Backend, DType, Tensor};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use crate::simd;
use crate::{float, from_vec, serves, slice, take_as, wrap, Ad};

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
        let out = match GeluBackward
            .prepare::<NoCheckpointing>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
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
