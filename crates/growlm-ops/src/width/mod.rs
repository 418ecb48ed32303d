//! Width operators (paper §3.3, §4.1, Table 1). One file each; register it in [`ALL`].

use crate::operator::WidthOp;
use crate::OpsError;

mod aki;
mod direct_copy;
mod fpi;
mod hypercloning;
mod msg;
mod pdg;

/// Every width operator, the default first.
pub static ALL: &[&dyn WidthOp] = &[
    &pdg::Pdg,
    &direct_copy::DirectCopy,
    &fpi::Fpi,
    &hypercloning::HyperCloning,
    &aki::Aki,
    &msg::Msg,
];

/// The width operator named `name`.
pub fn find(name: &str) -> Result<&'static dyn WidthOp, OpsError> {
    ALL.iter()
        .copied()
        .find(|o| o.name() == name)
        .ok_or_else(|| OpsError::UnknownOperator {
            kind: "width",
            name: name.to_string(),
            known: ALL.iter().map(|o| o.name()).collect::<Vec<_>>().join(", "),
        })
}
