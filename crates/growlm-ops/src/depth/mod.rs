//! Depth operators (paper §3.4, §4.1, Table 1). One file each, one line in
//! `registry!` below.

use crate::registry::registry;

registry! {
    "depth", DepthOp,
    redundant::Redundant = "redundant": "redundant layers: copy the neighbour's weights, LayerNorm and biases zero (Wang et al. 2024, §3.4)",
    random::Random = "random": "freshly initialised new layers (the paper's w/o RL ablation)",
    identity::Identity = "identity": "identity layers: fresh weights, LayerNorm and biases zero (Shen et al. 2022)",
    stack::Stack = "stack": "stacking: the source stack repeated on top, cut to depth (StackBERT; G_stack)",
    msg::Msg = "msg": "fresh new layers whose residual branches are scaled 0 → 1 (Masked Structural Growth, Yao et al. 2023)",
    expand::Expand = "expand": "block expansion: copy the neighbour whole, zero its output projections (Wu et al. 2024, LLaMA-Pro)",
}

/// Places `lt − ls` new layers among `ls` old ones as evenly as the attention pattern
/// allows: source layer `i` goes to target position `⌊i·lt/ls⌋`, moved later if needed to
/// the first free position of its own kind (global or local window), so that
/// alternating GPT-Neo layers grow by any factor; `new(i)` makes each new layer from the
/// source layer copied just before it.
pub fn interleave(
    source: &growlm_model::GptConfig,
    target: &growlm_model::GptConfig,
    new: impl Fn(usize) -> crate::LayerOrigin,
) -> Result<Vec<crate::LayerOrigin>, OpsError> {
    let (ls, lt) = (source.n_layers, target.n_layers);
    let mut out: Vec<Option<crate::LayerOrigin>> = vec![None; lt];
    let mut next = 0;
    for i in 0..ls {
        let mut j = (i * lt / ls).max(next);
        while j < lt && target.window(j) != source.window(i) {
            j += 1;
        }
        if j >= lt || lt - j < ls - i {
            return Err(OpsError::Incompatible(format!(
                "cannot place {ls} source layers among {lt} keeping each layer's attention kind; choose a depth whose global/local pattern fits"
            )));
        }
        out[j] = Some(crate::LayerOrigin::Copy(i));
        next = j + 1;
    }
    let mut last = 0;
    Ok(out
        .into_iter()
        .map(|o| match o {
            Some(crate::LayerOrigin::Copy(i)) => {
                last = i;
                crate::LayerOrigin::Copy(i)
            }
            _ => new(last),
        })
        .collect())
}
