//! Depth operators (paper §3.4, §4.1, Table 1). One file each, one line in
//! `operators!` below.

use crate::operator::DepthOp;
use crate::OpsError;

/// Declares each operator's module and lists it in [`ALL`]: adding an operator is one
/// file in this folder and one line here.
macro_rules! operators {
    ($($module:ident::$op:ident),* $(,)?) => {
        $(mod $module;)*

        /// Every depth operator, the default first.
        pub static ALL: &[&dyn DepthOp] = &[$(&$module::$op),*];
    };
}

operators! {
    redundant::Redundant,
    random::Random,
    identity::Identity,
    stack::Stack,
    msg::Msg,
    expand::Expand,
}

/// The depth operator named `name`.
pub fn find(name: &str) -> Result<&'static dyn DepthOp, OpsError> {
    ALL.iter()
        .copied()
        .find(|o| o.name() == name)
        .ok_or_else(|| OpsError::UnknownOperator {
            kind: "depth",
            name: name.to_string(),
            known: ALL.iter().map(|o| o.name()).collect::<Vec<_>>().join(", "),
        })
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
