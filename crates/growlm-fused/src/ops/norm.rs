//! The fused LayerNorm as a custom autodiff op on `Autodiff<Flex>`: input, scale and shift
//! gradients from one backward kernel ([`crate::norm`]).

use burn::tensor::{backend::Backend, DType, Tensor};
use burn_flex::{Flex, FlexTensor};

use super::{record, Saved};
use crate::norm as kernel;
use crate::{float, from_vec, serves, slice, take_as, wrap, Ad};

/// Saved for the LayerNorm backward step: the input, the scale and each row's statistics.
#[derive(Debug, Clone)]
struct NormState {
    x: FlexTensor,
    gamma: FlexTensor,
    mean: Vec<f32>,
    rstd: Vec<f32>,
}

impl Saved<3> for NormState {
    fn backward(self, dy: FlexTensor, wanted: [bool; 3]) -> [Option<FlexTensor>; 3] {
        let shape = self.x.layout().shape().clone();
        let d = self.gamma.layout().shape().num_elements();
        let mut dx = dy.into_data().into_vec::<f32>().unwrap_or_default();
        let (dgamma, dbeta) = kernel::backward(slice(&self.x), slice(&self.gamma), &self.mean, &self.rstd, &mut dx);
        let [wx, wg, wb] = wanted;
        [
            wx.then(|| from_vec(dx, shape)),
            wg.then(|| from_vec(dgamma, [d])),
            wb.then(|| from_vec(dbeta, [d])),
        ]
    }
}

fn norm_flex(x: &FlexTensor, gamma: &FlexTensor, beta: &FlexTensor, eps: f32) -> (FlexTensor, Vec<f32>, Vec<f32>) {
    let mut y = vec![0.0f32; x.layout().shape().num_elements()];
    let (mean, rstd) = kernel::forward(slice(x), slice(gamma), slice(beta), eps, &mut y);
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
        && [x.dtype(), gamma.dtype(), beta.dtype()]
            .iter()
            .all(|t| *t == DType::F32);
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
        let (x, g, b) = (
            float(x).to_contiguous(),
            float(g).to_contiguous(),
            float(b).to_contiguous(),
        );
        let out = wrap::<Flex, D>(norm_flex(&x, &g, &b, eps).0);
        return Ok(take_as(&mut Some(out)).expect("B is Flex"));
    }
    if let (Some(x), Some(g), Some(b)) = (
        take_as::<_, Tensor<Ad, D>>(&mut sx),
        take_as::<_, Tensor<Ad, 1>>(&mut sg),
        take_as::<_, Tensor<Ad, 1>>(&mut sb),
    ) {
        let (x, g, b) = (float(x), float(g), float(b));
        let (cx, cg, cb) = (
            x.primitive.to_contiguous(),
            g.primitive.to_contiguous(),
            b.primitive.to_contiguous(),
        );
        let (y, mean, rstd) = norm_flex(&cx, &cg, &cb, eps);
        let state = NormState {
            x: cx,
            gamma: cg,
            mean,
            rstd,
        };
        let out = record([&x, &g, &b], state, y);
        return Ok(take_as(&mut Some(wrap::<Ad, D>(out))).expect("B is Autodiff<Flex>"));
    }
    match (sx, sg, sb) {
        (Some(x), Some(g), Some(b)) => Err((x, g, b)),
        _ => unreachable!("fused LayerNorm: inputs taken but not served"),
    }
}

/// Saved for the RMSNorm backward step: the input, the scale and each row's `1/rms`.
#[derive(Debug, Clone)]
struct RmsState {
    x: FlexTensor,
    gamma: FlexTensor,
    rstd: Vec<f32>,
}

impl Saved<2> for RmsState {
    fn backward(self, dy: FlexTensor, wanted: [bool; 2]) -> [Option<FlexTensor>; 2] {
        let shape = self.x.layout().shape().clone();
        let d = self.gamma.layout().shape().num_elements();
        let mut dx = dy.into_data().into_vec::<f32>().unwrap_or_default();
        let dgamma = kernel::rms_backward(slice(&self.x), slice(&self.gamma), &self.rstd, &mut dx);
        let [wx, wg] = wanted;
        [wx.then(|| from_vec(dx, shape)), wg.then(|| from_vec(dgamma, [d]))]
    }
}

fn rms_flex(x: &FlexTensor, gamma: &FlexTensor, eps: f32) -> (FlexTensor, Vec<f32>) {
    let mut y = vec![0.0f32; x.layout().shape().num_elements()];
    let rstd = kernel::rms_forward(slice(x), slice(gamma), eps, &mut y);
    (from_vec(y, x.layout().shape().clone()), rstd)
}

/// RMSNorm (Llama) of `x: [..., d]` over its last dim with scale `gamma: [d]`:
/// `x/√(mean(x²) + eps)·gamma`, fused, with its own backward under autodiff. `Err` gives
/// the inputs back when the backend is not served ([`serves`]), a tensor is not f32 or the
/// shapes disagree.
#[allow(clippy::type_complexity)]
pub fn rms_norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    gamma: Tensor<B, 1>,
    eps: f64,
) -> Result<Tensor<B, D>, (Tensor<B, D>, Tensor<B, 1>)> {
    let d = x.dims()[D - 1];
    let fits = serves::<B>() && d > 0 && gamma.dims() == [d] && x.dtype() == DType::F32 && gamma.dtype() == DType::F32;
    if !fits {
        return Err((x, gamma));
    }
    let eps = eps as f32;
    let (mut sx, mut sg) = (Some(x), Some(gamma));
    if let (Some(x), Some(g)) = (
        take_as::<_, Tensor<Flex, D>>(&mut sx),
        take_as::<_, Tensor<Flex, 1>>(&mut sg),
    ) {
        let (x, g) = (float(x).to_contiguous(), float(g).to_contiguous());
        let out = wrap::<Flex, D>(rms_flex(&x, &g, eps).0);
        return Ok(take_as(&mut Some(out)).expect("B is Flex"));
    }
    if let (Some(x), Some(g)) = (
        take_as::<_, Tensor<Ad, D>>(&mut sx),
        take_as::<_, Tensor<Ad, 1>>(&mut sg),
    ) {
        let (x, g) = (float(x), float(g));
        let (cx, cg) = (x.primitive.to_contiguous(), g.primitive.to_contiguous());
        let (y, rstd) = rms_flex(&cx, &cg, eps);
        let out = record([&x, &g], RmsState { x: cx, gamma: cg, rstd }, y);
        return Ok(take_as(&mut Some(wrap::<Ad, D>(out))).expect("B is Autodiff<Flex>"));
    }
    match (sx, sg) {
        (Some(x), Some(g)) => Err((x, g)),
        _ => unreachable!("fused RMSNorm: inputs taken but not served"),
    }
}
