//! The fused GELU (`gelu_new`) as a custom autodiff op on `Autodiff<Flex>`.

use burn::tensor::{backend::Backend, DType, Tensor};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use super::{record, Saved};
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

/// Saved for the GELU backward step: its input.
#[derive(Debug, Clone)]
struct GeluState(FlexTensor);

impl Saved<1> for GeluState {
    fn backward(self, dy: FlexTensor, wanted: [bool; 1]) -> [Option<FlexTensor>; 1] {
        if !wanted[0] {
            return [None];
        }
        let shape = self.0.layout().shape().clone();
        let mut g = dy.into_data().into_vec::<f32>().unwrap_or_default();
        g.par_chunks_mut(ELEMENTS_PER_TASK)
            .zip(slice(&self.0).par_chunks(ELEMENTS_PER_TASK))
            .for_each(|(g, x)| simd::gelu_backward(x, g));
        [Some(from_vec(g, shape))]
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
        let out = record([&x], GeluState(c), out);
        return Ok(take_as(&mut Some(wrap::<Ad, D>(out))).expect("B is Autodiff<Flex>"));
    }
    match slot {
        Some(x) => Err(x),
        None => unreachable!("fused GELU: input taken but not served"),
    }
}
