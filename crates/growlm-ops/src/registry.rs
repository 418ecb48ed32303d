//! The operator registries (paper Table 1's operators, one file each under `width/` and
//! `depth/`): each operator is registered once with its name and a one-line reference, and
//! a config's operator names resolve once, when it is read, to [`Width`] and [`Depth`]
//! handles.

use serde::{Deserialize, Serialize};

use crate::operator::{DepthOp, WidthOp};
use crate::{depth, width, OpsError};

/// One operator of a registry ([`width::ALL`], [`depth::ALL`]): the name `[stages.growth]`
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

/// Defines a handle type for one kind of operator: resolved from its name once, when the
/// config is read (an unknown name is refused there, naming the key), and written back by
/// name.
macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $op:ident, $module:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub struct $name(pub &'static Registered<dyn $op>);

        impl $name {
            /// The operator registered as `name`.
            pub fn named(name: &str) -> Result<Self, OpsError> {
                $module::find(name).map($name)
            }
            /// Its name in `[stages.growth]`.
            pub fn name(&self) -> &'static str {
                self.0.name
            }
        }

        impl std::ops::Deref for $name {
            type Target = dyn $op;
            fn deref(&self) -> &Self::Target {
                self.0.op
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.name == other.0.name
            }
        }

        impl Eq for $name {}

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0.name)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0.name)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.0.name)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = String::deserialize(d)?;
                Self::named(&name).map_err(serde::de::Error::custom)
            }
        }
    };
}

handle!(
    /// A width operator (`width = "pdg"`).
    Width,
    WidthOp,
    width
);
handle!(
    /// A depth operator (`depth = "redundant"`).
    Depth,
    DepthOp,
    depth
);
