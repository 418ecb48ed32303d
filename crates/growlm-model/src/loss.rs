//! The training loss (docs/design.md §Training engine): mean next-token cross-entropy, fused on
//! burn-flex.

use burn::tensor::activation::log_softmax;
use burn::tensor::{backend::Backend, Int, Tensor};

/// Mean cross-entropy of `logits: [batch, seq, vocab]` against `targets: [batch, seq]`.
///
/// On burn-flex in f32 this is one fused kernel with its own backward that keeps no
/// probability tensor ([`growlm_fused::cross_entropy`]); elsewhere a log-softmax and a
/// gather.
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>) -> Tensor<B, 1> {
    let [b, t, v] = logits.dims();
    match growlm_fused::cross_entropy(logits.reshape([b * t, v]), targets.reshape([b * t])) {
        Ok(loss) => loss,
        Err((logits, targets)) => {
            let logp = log_softmax(logits, 1);
            let picked = logp.gather(1, targets.reshape([b * t, 1]));
            picked.mean().neg()
        }
    }
}
