//! The operator registries (paper Table 1's operators, one file each under `width/` and
//! `depth/`): each operator is registered once with its name and a one-line reference
//! (`handle.rs` resolves a config's names to them).

/// One operator of a registry ([`crate::width::ALL`], [`crate::depth::ALL`]): the name `[stages.growth]`
/// gives it, one line on what it does and where it comes from, and its behaviour.
pub struct Registered<Op: ?Sized + 'static> {
    /// The name used in `[stages.growth]`.
    pub name: &'static str,
    /// One line: what it does and where it comes from (`cargo xtask operators`).
    pub reference: &'static str,
    /// What it does.
    pub op: &'static Op,
}

/// Declares each operator's module and lists it in `ALL` (the default first) with its
/// name and reference, and defines `find` by name: adding an operator is one file in the
/// folder and one line in its `registry!`.
macro_rules! registry {
    ($kind:literal, $op:ident, $($module:ident::$ty:ident = $name:literal: $reference:literal),* $(,)?) => {
        $(mod $module;)*

        use crate::operator::$op;
        use crate::registry::Registered;
        use crate::OpsError;

        #[doc = concat!("Every ", $kind, " operator, the default first.")]
        pub static ALL: &[Registered<dyn $op>] =
            &[$(Registered { name: $name, reference: $reference, op: &$module::$ty }),*];

        #[doc = concat!("The ", $kind, " operator named `name`.")]
        pub fn find(name: &str) -> Result<&'static Registered<dyn $op>, OpsError> {
            ALL.iter().find(|o| o.name == name).ok_or_else(|| OpsError::UnknownOperator {
                kind: $kind,
                name: name.to_string(),
                known: ALL.iter().map(|o| o.name).collect::<Vec<_>>().join(", "),
            })
        }
    };
}
pub(crate) use registry;
