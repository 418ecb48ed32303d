//! The fused linear layer as a custom autodiff op on `Autodiff<Flex>` ([`crate::linear`]).

use burn::tensor::{backend::Backend, DType, Tensor};
use burn_flex::{Flex, FlexTensor};

use super::{record, Saved};
use crate::linear::{self as kernel, Weight};
use crate::{float, from_vec, serves, slice, take_as, wrap, Ad};

/// Saved for the linear backward step: the input and the weight.
#[derive(Debug, Clone)]
struct LinearState {
    x: FlexTensor,
    w: FlexTensor,
    layout: Weight,
    dims: (usize, usize, usize),
}

impl LinearState {
    fn grads(self, dy: FlexTensor, wanted: [bool; 3]) -> [Option<FlexTensor>; 3] {
        let (rows, k, n) = self.dims;
        let (dx, dw, db) = kernel::backward(
            slice(&self.x),
            (slice(&self.w), self.layout),
            slice(&dy),
            self.dims,
            wanted,
        );
        let w_dims = match self.layout {
            Weight::InOut => [k, n],
            Weight::OutIn => [n, k],
        };
        [
            dx.map(|g| from_vec(g, [rows, k])),
            dw.map(|g| from_vec(g, w_dims)),
            db.map(|g| from_vec(g, [n])),
        ]
    }
}

/// With a bias: inputs `x`, `w`, `b`.
impl Saved<3> for LinearState {
    fn backward(self, dy: FlexTensor, wanted: [bool; 3]) -> [Option<FlexTensor>; 3] {
        self.grads(dy, wanted)
    }
}

/// Without one: inputs `x`, `w`.
impl Saved<2> for LinearState {
    fn backward(self, dy: FlexTensor, [wx, ww]: [bool; 2]) -> [Option<FlexTensor>; 2] {
        let [dx, dw, _] = self.grads(dy, [wx, ww, false]);
        [dx, dw]
    }
}

/// The inputs handed back when the fused op does not serve them.
pub type LinearInputs<B> = (Tensor<B, 2>, Tensor<B, 2>, Option<Tensor<B, 1>>);

/// `x·W + b` for `x: [rows, k]`, the weight `w` stored as `layout` says (`[k, n]`, or
/// `[n, k]` for `x·wᵀ`) and an optional `b: [n]`, fused (the bias accumulated in the
/// product's output), with its own backward under autodiff. `Err` gives the inputs back
/// when the backend is not served ([`serves`]), a tensor is not f32 or the shapes disagree.
pub fn linear<B: Backend>(
    x: Tensor<B, 2>,
    w: Tensor<B, 2>,
    b: Option<Tensor<B, 1>>,
    layout: Weight,
) -> Result<Tensor<B, 2>, LinearInputs<B>> {
    let [rows, k] = x.dims();
    let [k2, n] = match (layout, w.dims()) {
        (Weight::InOut, d) => d,
        (Weight::OutIn, [n, k]) => [k, n],
    };
    let fits = serves::<B>()
        && k == k2
        && b.as_ref().is_none_or(|b| b.dims() == [n] && b.dtype() == DType::F32)
        && x.dtype() == DType::F32
        && w.dtype() == DType::F32;
    if !fits {
        return Err((x, w, b));
    }
    let dims = (rows, k, n);
    let (mut sx, mut sw, mut sb) = (Some(x), Some(w), b);
    if let (Some(x), Some(w)) = (
        take_as::<_, Tensor<Flex, 2>>(&mut sx),
        take_as::<_, Tensor<Flex, 2>>(&mut sw),
    ) {
        let b = take_as::<_, Tensor<Flex, 1>>(&mut sb).map(|b| float(b).to_contiguous());
        let (x, w) = (float(x).to_contiguous(), float(w).to_contiguous());
        let y = kernel::forward(slice(&x), (slice(&w), layout), b.as_ref().map(slice), dims);
        let out = wrap::<Flex, 2>(from_vec(y, [rows, n]));
        return Ok(take_as(&mut Some(out)).expect("B is Flex"));
    }
    if let (Some(x), Some(w)) = (
        take_as::<_, Tensor<Ad, 2>>(&mut sx),
        take_as::<_, Tensor<Ad, 2>>(&mut sw),
    ) {
        let b = take_as::<_, Tensor<Ad, 1>>(&mut sb).map(float);
        let (x, w) = (float(x), float(w));
        let (cx, cw) = (x.primitive.to_contiguous(), w.primitive.to_contiguous());
        let cb = b.as_ref().map(|b| b.primitive.to_contiguous());
        let y = from_vec(
            kernel::forward(slice(&cx), (slice(&cw), layout), cb.as_ref().map(slice), dims),
            [rows, n],
        );
        let state = LinearState {
            x: cx,
            w: cw,
            layout,
            dims,
        };
        let out = match &b {
            Some(b) => record([&x, &w, b], state, y),
            None => record([&x, &w], state, y),
        };
        return Ok(take_as(&mut Some(wrap::<Ad, 2>(out))).expect("B is Autodiff<Flex>"));
    }
    match (sx, sw) {
        (Some(x), Some(w)) => Err((x, w, sb)),
        _ => unreachable!("fused linear: inputs taken but not served"),
    }
}
