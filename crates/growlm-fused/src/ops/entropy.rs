//! The fused softmax cross-entropy as a custom autodiff op on `Autodiff<Flex>`: the
//! backward writes `softmax − onehot` over the saved logits ([`crate::entropy`]).

use burn::tensor::{backend::Backend, DType, Int, Tensor};
use burn_flex::{Flex, FlexTensor};

use super::attention::AdPrimitive;
use super::{record, Saved};
use crate::entropy as kernel;
use crate::{float, from_vec, serves, slice, take_as, wrap, Ad};

/// Saved for the cross-entropy backward step: the logits, the targets and each row's
/// log-sum-exp (no probabilities).
#[derive(Debug, Clone)]
struct EntropyState {
    logits: FlexTensor,
    targets: Vec<i64>,
    lse: Vec<f32>,
    vocab: usize,
}

impl Saved<1> for EntropyState {
    fn backward(self, dy: FlexTensor, wanted: [bool; 1]) -> [Option<FlexTensor>; 1] {
        if !wanted[0] {
            return [None];
        }
        let g = slice(&dy).first().copied().unwrap_or(0.0);
        let shape = self.logits.layout().shape().clone();
        // The gradient overwrites the saved logits: in place when this step holds the only
        // reference, else in a copy.
        let mut values = self.logits.into_data().into_vec::<f32>().unwrap_or_default();
        kernel::backward_in_place(&mut values, self.vocab, &self.targets, &self.lse, g);
        [Some(from_vec(values, shape))]
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
    if kernel::check_targets(&ids, vocab).is_err() {
        return Err((logits, targets));
    }
    let mut slot = Some(logits);
    if let Some(l) = take_as::<_, Tensor<Flex, 2>>(&mut slot) {
        let x = l.into_primitive().tensor().to_contiguous();
        let (loss, _) = kernel::forward(slice(&x), vocab, &ids);
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
    let (loss, lse) = kernel::forward(slice(&x), vocab, &targets);
    let out = from_vec(vec![loss], [1]);
    let state = EntropyState {
        logits: x,
        targets,
        lse,
        vocab,
    };
    record([&logits], state, out)
}
