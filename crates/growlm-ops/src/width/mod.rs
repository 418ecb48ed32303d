//! Width operators (paper §3.3, §4.1, Table 1). One file each, one line in
//! `operators!` below.

use crate::operator::WidthOp;
use crate::OpsError;

/// Declares each operator's module and lists it in [`ALL`]: adding an operator is one
/// file in this folder and one line here.
macro_rules! operators {
    ($($module:ident::$op:ident),* $(,)?) => {
        $(mod $module;)*

        /// Every width operator, the default first.
        pub static ALL: &[&dyn WidthOp] = &[$(&$module::$op),*];
    };
}

operators! {
    pdg::Pdg,
    direct_copy::DirectCopy,
    fpi::Fpi,
    hypercloning::HyperCloning,
    aki::Aki,
    msg::Msg,
}

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
