//! The burn side of the fused kernels: each kernel as an op on burn-flex and a custom
//! autodiff op on `Autodiff<Flex>`, dispatched from any backend. Every op's backward step is
//! one [`FusedBackward`] over what the op saved ([`Saved`]).

use std::fmt::Debug;
use std::marker::PhantomData;

use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::{Flex, FlexTensor};

use attention::AdPrimitive;

pub(crate) mod attention;
pub(crate) mod entropy;
pub(crate) mod gelu;
pub(crate) mod linear;
pub(crate) mod norm;

/// What a fused op with `N` inputs saves for its backward step, and that step's kernel.
pub(crate) trait Saved<const N: usize>: Clone + Send + Debug + Sized + 'static {
    /// From the output's gradient `dy` (contiguous), the gradient of each input that
    /// autodiff tracks (`wanted`); `None` for the others.
    fn backward(self, dy: FlexTensor, wanted: [bool; N]) -> [Option<FlexTensor>; N];
}

/// The backward step of every fused op: takes the output's gradient, runs the saved
/// state's kernel and registers each tracked input's gradient.
#[derive(Debug)]
pub(crate) struct FusedBackward<S>(PhantomData<S>);

impl<S: Saved<N>, const N: usize> Backward<Flex, N> for FusedBackward<S> {
    type State = S;

    fn backward(self, ops: Ops<S, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let wanted = ops.parents.each_ref().map(Option::is_some);
        let computed = ops.state.backward(dy, wanted);
        for (node, g) in ops.parents.into_iter().zip(computed) {
            if let (Some(node), Some(g)) = (node, g) {
                grads.register::<Flex>(node.id, g);
            }
        }
    }
}

/// Records a fused op's output `out` of `inputs` under autodiff, with `state` for its
/// backward step when an input is tracked (else `state` is dropped).
pub(crate) fn record<S: Saved<N>, const N: usize>(inputs: [&AdPrimitive; N], state: S, out: FlexTensor) -> AdPrimitive {
    let nodes = inputs.map(|t| t.node.clone());
    match FusedBackward::<S>(PhantomData)
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}
