//! Width operators (paper §3.3, §4.1, Table 1). One file each, one line in
//! `registry!` below.

use crate::registry::registry;

registry! {
    "width", WidthOp,
    pdg::Pdg = "pdg": "progressive dimensionality growth: copy into the leading block, mask ramped in (Wang et al. 2024, §3.3)",
    direct_copy::DirectCopy = "direct-copy": "copy into the leading block, fresh rest, no mask (the paper's Direct Copy baseline)",
    fpi::Fpi = "fpi": "function-preserving init: new units replicate old ones, readers divided by the count (Net2Net; bert2BERT FPI)",
    hypercloning::HyperCloning = "hypercloning": "HyperCloning: integer-multiple clones of every unit, function-preserving (Samragh et al. 2024)",
    aki::Aki = "aki": "advanced knowledge init: new units from the layer above, readers divided by the count (bert2BERT)",
    msg::Msg = "msg": "copy into the leading block, fresh rest scaled by masks rising 0 → 1 (Masked Structural Growth, Yao et al. 2023)",
}
