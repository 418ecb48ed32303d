//! The fused element-wise activations as custom autodiff ops on `Autodiff<Flex>`: GPT-Neo's
//! GELU (`gelu_new`) and Llama's SwiGLU.

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

/// The SwiGLU of each row of `gu: [rows, 2f]` (gate then up) into `[rows, f]`.
fn swiglu_values(gu: &[f32], f: usize) -> Vec<f32> {
    let rows = gu.len() / (2 * f);
    let mut y = vec![0.0f32; rows * f];
    let per_task = (ELEMENTS_PER_TASK / (2 * f)).max(1);
    y.par_chunks_mut(per_task * f)
        .zip(gu.par_chunks(per_task * 2 * f))
        .for_each(|(y, gu)| {
            for (y, gu) in y.chunks_exact_mut(f).zip(gu.chunks_exact(2 * f)) {
                simd::swiglu(gu, y);
            }
        });
    y
}

/// Saved for the SwiGLU backward step: its input, gate and up side by side.
#[derive(Debug, Clone)]
struct SwigluState(FlexTensor, usize);

impl Saved<1> for SwigluState {
    fn backward(self, dy: FlexTensor, wanted: [bool; 1]) -> [Option<FlexTensor>; 1] {
        if !wanted[0] {
            return [None];
        }
        let (shape, f) = (self.0.layout().shape().clone(), self.1);
        // The saved input is needed no more: its buffer becomes the gradient.
        let mut gu = self.0.into_data().into_vec::<f32>().unwrap_or_default();
        let per_task = (ELEMENTS_PER_TASK / (2 * f)).max(1);
        gu.par_chunks_mut(per_task * 2 * f)
            .zip(slice(&dy).par_chunks(per_task * f))
            .for_each(|(gu, dy)| {
                for (gu, dy) in gu.chunks_exact_mut(2 * f).zip(dy.chunks_exact(f)) {
                    simd::swiglu_backward(gu, dy);
                }
            });
        [Some(from_vec(gu, shape))]
    }
}

/// Llama's SwiGLU on the gate and up projections side by side: `gu: [..., 2f]` (the gate's
/// `f` values, then the up projection's) → `silu(gate)·up: [..., f]`, one pass forward and
/// one backward, with its own backward under autodiff. `Err` gives the input back when the
/// backend is not served ([`serves`]), the tensor is not f32 or its last dim is odd.
pub fn swiglu<B: Backend, const D: usize>(gu: Tensor<B, D>) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let mut dims = gu.dims();
    let two_f = dims[D - 1];
    if !serves::<B>() || gu.dtype() != DType::F32 || two_f == 0 || two_f % 2 != 0 {
        return Err(gu);
    }
    let f = two_f / 2;
    dims[D - 1] = f;
    let mut slot = Some(gu);
    if let Some(x) = take_as::<_, Tensor<Flex, D>>(&mut slot) {
        let x = float(x).to_contiguous();
        let out = wrap::<Flex, D>(from_vec(swiglu_values(slice(&x), f), dims));
        return Ok(take_as(&mut Some(out)).expect("B is Flex"));
    }
    if let Some(x) = take_as::<_, Tensor<Ad, D>>(&mut slot) {
        let x = float(x);
        let c = x.primitive.to_contiguous();
        let out = from_vec(swiglu_values(slice(&c), f), dims);
        let out = record([&x], SwigluState(c, f), out);
        return Ok(take_as(&mut Some(wrap::<Ad, D>(out))).expect("B is Autodiff<Flex>"));
    }
    match slot {
        Some(x) => Err(x),
        None => unreachable!("fused SwiGLU: input taken but not served"),
    }
}
